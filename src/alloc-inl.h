/* alloc-inl.h - the fast paths of malloc, calloc and free, inlined into both the qm_ entry points
 * (alloc.c, free.c) and the standard names (override.c), so neither pays an extra call.
 *
 * Each fast path handles the common case with no lock, no atomic read-modify-write and no call,
 * and leaves everything else to one out-of-line function reached by a tail call.
 * Size (x86-64, gcc 12 -O2, docs/DESIGN.md lists them): malloc 16 instructions, free 27. The
 * qm_stats_* hooks are empty unless the library is built with QM_STATS 2 (types.h), and
 * qm_profile_due is false unless it is the profiling variant (QM_VARIANT_PROFILE), where a due
 * sample leaves the fast path by a tail call, so the fast path needs no stack frame for it.
 */
#ifndef QM_ALLOC_INL_H
#define QM_ALLOC_INL_H

#include "block-inl.h"

/* malloc for sizes up to QM_DIRECT_MAX: one TLS load, two loads, a pop. */
static inline void *qm_malloc_inline(size_t size) {
  if (qm_profile_due(size)) /* the profiling variant only: nothing in other builds */
    return _qm_malloc_sampled(size, false);
  qm_heap_t *heap = _qm_tls_heap;
  if (qm_likely(size <= QM_DIRECT_MAX)) {
    qm_page_t *page = heap->direct[(size + 15) >> 4];
    qm_block_t *block = page->free;
    if (qm_likely(block != NULL)) {
      qm_block_t *next = qm_block_next(page, block);
      page->free = next;
      /* The next malloc of the class loads next's link: fetching its line now keeps a run of
       * mallocs from waiting on one cache miss after another when freed blocks are cold (a NULL
       * or stale prefetch is harmless). */
      __builtin_prefetch(next);
      page->used++;
      qm_stats_small_fast(heap, page, size);
      qm_track_malloc(block, page->block_size, false);
      return block;
    }
  }
  return _qm_malloc_generic(size, heap, false);
}

static inline void *qm_calloc_inline(size_t count, size_t size) {
  size_t total;
  if (qm_unlikely(__builtin_mul_overflow(count, size, &total)))
    return _qm_malloc_generic(SIZE_MAX, _qm_tls_heap, true);
  if (qm_profile_due(total))
    return _qm_malloc_sampled(total, true);
  qm_heap_t *heap = _qm_tls_heap;
  if (qm_likely(total <= QM_DIRECT_MAX)) {
    qm_page_t *page = heap->direct[(total + 15) >> 4];
    qm_block_t *block = page->free;
    if (qm_likely(block != NULL)) {
      page->free = qm_block_next(page, block);
      page->used++;
      qm_stats_small_fast(heap, page, total);
      qm_track_malloc(block, page->block_size, true);
      /* Fresh blocks are zero but for the free-list link. */
      if (page->flags & QM_PAGE_FREE_ZERO)
        block->next = NULL;
      else
        memset(block, 0, total);
      return block;
    }
  }
  return _qm_malloc_generic(total, heap, true);
}

/* free by the owning thread of a block in a page with no flag set: a push onto the page's list.
 * The segment map's byte for p says whether the segment belongs to this thread's heap (the byte is
 * the heap's own, internal.h), so the fast path reads no segment header to learn it. A block in a
 * segment of another thread goes to _qm_free_foreign; full pages, large blocks and segments of
 * this thread without its heap's byte to _qm_free_owned_slow; everything else (NULL, huge blocks,
 * pointers that are not ours) to _qm_free_generic. The map is consulted before anything else is
 * read, so a foreign pointer is reported instead of faulting, and the check covers NULL too.
 * Freeing the block that is already first on the list is reported as a double free: it costs one
 * compare, and catches the most common double free (the secure build looks one link further).
 * Links go through block-inl.h, which encodes them in the secure build; the qm_track_* hooks tell
 * memory tools about the block (track.h); both compile to the plain code otherwise. */
static inline void qm_free_inline(void *p) {
  unsigned state = qm_map_byte(p);
  if (qm_likely(state == _qm_tls_map_owner)) {
    qm_segment_t *segment = qm_segment_of_normal(p);
    qm_page_t *page = qm_page_of(segment, p);
    qm_block_t *block = (qm_block_t *)p;
    if (qm_likely(page->flags == 0 && !qm_block_is_free(page, block))) {
      qm_track_free(block, page->block_size);
      qm_block_set_next(page, block, page->free);
      page->free = block;
      qm_stats_small_free(_qm_tls_heap, page);
      /* One instruction (a branch on the flags of the decrement) keeps the sweeps precise. */
      if (qm_unlikely(--page->used == 0))
        _qm_page_emptied(segment, page);
      return;
    }
    _qm_free_owned_slow(segment, p);
    return;
  }
  if (qm_likely(state >= QM_MAP_OWNED_MIN || state == QM_MAP_NORMAL)) {
    /* Another thread's segment (the cross-thread free), or one of this thread's without its heap's
     * byte (a first-class heap's), or one that has no owner. */
    qm_segment_t *segment = qm_segment_of_normal(p);
    if (atomic_load_explicit(&segment->owner_thread, memory_order_relaxed) == _qm_thread_id())
      _qm_free_owned_slow(segment, p);
    else
      _qm_free_foreign(segment, p);
    return;
  }
  _qm_free_generic(p);
}

#endif /* QM_ALLOC_INL_H */
