/* block-inl.h - the link word of a free block, and the words of a parcel of remote frees (at the
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

/* A free by the heap that owns p's segment, outside the fast path: the owner's slow paths, and
 * the inbox drain, which inlines it (free.c has it out of line as _qm_free_local). */
static inline void qm_free_local(qm_heap_t *heap, qm_segment_t *segment, void *p) {
  qm_page_t *page = qm_page_of(segment, p);
  qm_block_t *block = (qm_block_t *)p;
  if (qm_likely(page->flags == 0)) {
    if (qm_unlikely(qm_block_is_free(page, block)))
      _qm_fatal("double free: block %p (size %u) is already free", p, page->block_size);
    qm_block_set_next(page, block, page->free);
    page->free = block;
    qm_stats_small_free(heap, page);
    /* One test for both: the page empties, or it had no used block, so the block was free already
     * (a double free the head check misses, or one that looped an inbox's chain: this ends what
     * would go round the loop for good). */
    uint32_t used = page->used;
    page->used = used - 1;
    if (qm_unlikely(used <= 1))
      _qm_page_free_emptied(heap, page, block);
    return;
  }
  _qm_page_free_flagged(heap, page, block);
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

/* A parcel: a free block that carries other free blocks of the same owner from the thread that
 * freed them to the owner's inbox (free.c, heap.c). Its words:
 *
 *     [0] link to the next parcel (qm_link_set)    [1 ..] entries, then NULL unless it is full
 *
 * How many entries a parcel holds at most follows from the parcel's address alone
 * (qm_parcel_capacity_of), so the freeing thread and the owner agree on it without a word that a
 * write after free could change, and the owner never reads past the parcel's block. While the
 * freeing thread still adds entries, the link word holds the parcel's own address, so that the word
 * before the next free slot is always the block added last (qm_parcel_is_latest). Entries are
 * block addresses, stored as links are (encoded in the secure build, and checked against the
 * segment map when read), so the owner trusts no more than the segment map already says. A block
 * pushed alone is a parcel with no entries. */
static inline qm_block_t **qm_parcel_slot(qm_block_t *parcel, size_t index) {
  return (qm_block_t **)parcel + 1 + index;
}

/* The size of the blocks of the small page under p when p is the first byte of one of them, else 0
 * (p in a large block, under no block, or inside a block). Only the segment's maps are read, never
 * the page descriptor, which its owner keeps writing: other threads may ask. */
static inline size_t qm_small_block_start_size(qm_segment_t *segment, const void *p) {
  unsigned cls = qm_slice_class_of(segment, p);
  if (cls >= QM_CLASS_COUNT)
    return 0;
  size_t block_size = qm_class_size(cls);
  size_t offset = (size_t)((const uint8_t *)p - qm_page_start(qm_page_of(segment, p)));
  return offset % block_size == 0 ? block_size : 0;
}

/* Entries the parcel `block` can hold: none unless it is the first byte of a small block, else as
 * many as its block has words after the link, at most QM_REMOTE_BATCH - 1. A 16-byte block (class
 * 0) holds none either: a parcel of one entry would send every other free of such blocks to the
 * slow path that opens parcels, while a parcel of none is one store (free.c, _qm_free_foreign).
 * The test against the block boundary keeps a stray interior pointer from spilling entries into
 * the next block. Memory tools open a free block's words one at a time: parcels stay empty there. */
static inline size_t qm_parcel_capacity_of(const qm_block_t *block) {
  if (QM_VALGRIND || QM_ASAN_POISON)
    return 0;
  size_t block_size = qm_small_block_start_size(qm_segment_of_normal(block), block);
  if (block_size <= QM_CLASS_SIZE(0)) /* not a block start, or class 0 (above) */
    return 0;
  size_t words = block_size / sizeof(void *) - 1;
  return words < QM_REMOTE_BATCH - 1 ? words : QM_REMOTE_BATCH - 1;
}

static inline void qm_parcel_put(qm_block_t **slot, qm_block_t *block) {
  qm_link_set((qm_block_t *)slot, block);
}

static inline qm_block_t *qm_parcel_get(qm_block_t **slot) { return qm_link_get((qm_block_t *)slot); }

/* The entries of a closed parcel that holds at most capacity. */
static inline size_t qm_parcel_length(qm_block_t *parcel, size_t capacity) {
  size_t length = 0;
  while (length < capacity && qm_parcel_get(qm_parcel_slot(parcel, length)) != NULL)
    length++;
  return length;
}

/* Whether the entry at slot names a block (false: the NULL that ends a parcel's entries), and if so
 * prefetches that block for writing (qm_prefetch_for_write), from the raw word (the secure build
 * decodes and checks it, and skips the prefetch). */
static inline bool qm_parcel_prefetch(qm_block_t **slot, bool cpu_prefetchw) {
#if QM_SECURE
  (void)cpu_prefetchw;
  return qm_parcel_get(slot) != NULL;
#else
  const void *block = (const void *)qm_link_load((qm_block_t *)slot);
  if (block == NULL)
    return false;
  qm_prefetch_for_write(block, cpu_prefetchw);
  return true;
#endif
}

/* Whether block is the one written into the word before `slot`: the previous entry, or the parcel
 * itself, whose link word holds its own address while it is open (qm_parcel_open). */
static inline bool qm_parcel_is_latest(qm_block_t **slot, const qm_block_t *block) {
  return qm_parcel_get(slot - 1) == block;
}

/* Makes block a parcel open for entries. */
static inline void qm_parcel_open(qm_block_t *block) { qm_link_set(block, block); }

/* Closes a parcel that holds `length` of its `room + length` entries, linking it to next. */
static inline void qm_parcel_close(qm_block_t *parcel, size_t length, size_t room, qm_block_t *next) {
  qm_link_set(parcel, next);
  if (room != 0)
    qm_parcel_put(qm_parcel_slot(parcel, length), NULL);
}

#endif /* QM_BLOCK_INL_H */
