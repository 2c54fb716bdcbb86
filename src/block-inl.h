/* block-inl.h - the link word of a free block (and the prefetch hint in the word behind it, at the
 * end): the only code that reads or writes them.
 *
 * A free small block's first word links it into a list: its page's free list (qm_block_next /
 * qm_block_set_next), or a list of blocks from any page: a heap's inbox, an abandoned segment's
 * parked frees (qm_link_get / qm_link_set). Everything else treats block memory as the user's.
 *
 * Default build: the word is the plain pointer, and these compile to one load or store.
 * Memory tools (track.h): the word is opened for the one access and closed again, so memcheck and
 * ASan report a program that touches a free block, never the allocator.
 * Secure build (QM_SECURE): the word holds the pointer encoded as
 *
 *     stored = next ^ page_key(page) ^ (address of the word >> 4)
 *     page_key(page) = (secret ^ address of page's descriptor) * 0x9E3779B97F4A7C15
 *
 * where `secret` is drawn once per process (secure.c). A link overwritten after a free (a use
 * after free, an overflow from the block before) decodes to a pointer that is, with overwhelming
 * likelihood, not a carved block of the same page; decoding checks exactly that and reports
 * "corrupted free list" instead of handing out memory the attacker chose. Lists that mix pages are
 * encoded with the secret alone and checked against the segment map.
 */
#ifndef QM_BLOCK_INL_H
#define QM_BLOCK_INL_H

#include "internal.h"
#include "track.h"

/* The stored word, as it is, with the memory tools told of the access. */
static inline uintptr_t qm_link_load(const qm_block_t *block) {
  qm_track_link_open(block, false);
  uintptr_t stored = (uintptr_t)block->next;
  qm_track_link_close(block);
  return stored;
}
static inline void qm_link_store(qm_block_t *block, uintptr_t stored) {
  qm_track_link_open(block, true);
  block->next = (qm_block_t *)stored;
  qm_track_link_close(block);
}

#if QM_SECURE
static inline uintptr_t qm_page_key(const qm_page_t *page) {
  return (_qm_secure_secret ^ (uintptr_t)page) * 0x9E3779B97F4A7C15ull;
}
static inline uintptr_t qm_link_key(const qm_page_t *page, const void *block) {
  return qm_page_key(page) ^ ((uintptr_t)block >> 4);
}

/* next must be NULL or a carved block of page: inside its first capacity blocks, on a boundary. */
static inline void qm_link_check(const qm_page_t *page, const void *block, uintptr_t next) {
  if (next == 0)
    return;
  uintptr_t offset = next - (uintptr_t)qm_page_start(page);
  if (qm_unlikely(offset >= (uintptr_t)page->capacity * page->block_size || offset % page->block_size != 0))
    _qm_secure_bad_link(page, block, next);
}
#endif

/* The next block on page's free list after block (which is on it). */
static inline qm_block_t *qm_block_next(const qm_page_t *page, const qm_block_t *block) {
  uintptr_t stored = qm_link_load(block);
#if QM_SECURE
  uintptr_t next = stored ^ qm_link_key(page, block);
  qm_link_check(page, block, next);
  return (qm_block_t *)next;
#else
  (void)page;
  return (qm_block_t *)stored;
#endif
}

static inline void qm_block_set_next(const qm_page_t *page, qm_block_t *block, qm_block_t *next) {
#if QM_SECURE
  qm_link_store(block, (uintptr_t)next ^ qm_link_key(page, block));
#else
  (void)page;
  qm_link_store(block, (uintptr_t)next);
#endif
}

/* Pops the first block of page's free list (which must not be empty). */
static inline qm_block_t *qm_page_pop(qm_page_t *page) {
  qm_block_t *block = page->free;
  page->free = qm_block_next(page, block);
  return block;
}

/* Whether block is already on page's free list, as far as a free cares to look: the first block
 * (every build: one compare on the fast path), or one of the first QM_SECURE_FREE_WALK (secure). */
static inline bool qm_block_is_free(const qm_page_t *page, const qm_block_t *block) {
  const qm_block_t *b = page->free;
  if (b == block)
    return true;
#if QM_SECURE
  /* The walk checks only that each link stays inside the page's carved blocks (so it never reads
   * outside the page), without the boundary test of qm_block_next: a few instructions a step. */
  uintptr_t start = (uintptr_t)qm_page_start(page);
  uintptr_t carved = (uintptr_t)page->capacity * page->block_size;
  uintptr_t key = qm_page_key(page);
  for (int i = 1; b != NULL && i < QM_SECURE_FREE_WALK; i++) {
    uintptr_t next = qm_link_load(b) ^ key ^ ((uintptr_t)b >> 4);
    if (qm_unlikely(next - start >= carved) && next != 0)
      _qm_secure_bad_link(page, b, next);
    b = (const qm_block_t *)next;
    if (b == block)
      return true;
  }
#endif
  return false;
}

/* Links of lists that mix pages (inboxes, parked frees of abandoned segments). */
static inline qm_block_t *qm_link_get(const qm_block_t *block) {
  uintptr_t stored = qm_link_load(block);
#if QM_SECURE
  uintptr_t next = stored ^ _qm_secure_secret ^ ((uintptr_t)block >> 4);
  if (qm_unlikely(next != 0 &&
                  ((next & (QM_ALIGNMENT - 1)) != 0 || qm_map_state((void *)next) != QM_MAP_NORMAL)))
    _qm_secure_bad_link(NULL, block, next);
  return (qm_block_t *)next;
#else
  return (qm_block_t *)stored;
#endif
}

static inline void qm_link_set(qm_block_t *block, qm_block_t *next) {
#if QM_SECURE
  qm_link_store(block, (uintptr_t)next ^ _qm_secure_secret ^ ((uintptr_t)block >> 4));
#else
  qm_link_store(block, (uintptr_t)next);
#endif
}

/* The ahead hint: the second word of a block that another thread freed into a remote batch holds
 * the block pushed QM_AHEAD pushes before it (QM_AHEAD places further down the chain), or NULL.
 * The owner draining its inbox prefetches that block for writing before it handles this one, so
 * that QM_AHEAD cross-core cache misses are in flight at once instead of one after another.
 * A hint is never read through, only prefetched (which cannot fault), so a stale one (the word of
 * a block pushed on the inbox without a hint holds user bytes) costs nothing but a wasted fetch.
 * The secure build skips it: it keeps no raw pointer in a free block beyond its encoded link. */
static inline void qm_ahead_set(qm_block_t *block, qm_block_t *ahead) {
#if QM_SECURE
  (void)block, (void)ahead;
#else
  qm_block_t **word = &block->next + 1;
  qm_track_link_open(word, true);
  *word = ahead;
  qm_track_link_close(word);
#endif
}

static inline void qm_ahead_prefetch(const qm_block_t *block) {
#if QM_SECURE
  (void)block;
#else
  const qm_block_t *const *word = (const qm_block_t *const *)&block->next + 1;
  qm_track_link_open(word, false);
  const qm_block_t *ahead = *word;
  qm_track_link_close(word);
  if (ahead != NULL)
    __builtin_prefetch(ahead, 1);
#endif
}

#endif /* QM_BLOCK_INL_H */
