/* free.c - freeing: the qm_free entry point, and the generic route for every free the fast path
 * does not take.
 *
 * Where a block goes, decided from its address alone:
 *   - segment map says "not ours" or "already released"     -> report and abort;
 *   - a huge block                                           -> unmapped, by any thread;
 *   - its segment is owned by the calling thread's heap      -> pushed on its page (free list);
 *   - owned by another live heap                             -> pushed on that heap's inbox (one
 *                                                               compare-and-swap; the owner drains
 *                                                               the whole inbox at once later);
 *   - abandoned (its thread exited)                          -> kept on the segment's list until a
 *                                                               thread adopts the segment.
 */
#include "alloc-inl.h"
#include "qmalloc.h"

void qm_free(void *p) { qm_free_inline(p); }

/* The size promise is checked only in builds with internal checks: it costs a lookup. */
static void check_sized(void *p, size_t alignment, size_t size) {
  if (QM_DEBUG >= 1 && p != NULL) {
    size_t usable = qm_usable_size(p);
    if (size > usable)
      _qm_fatal("free_sized: %p was freed with size %zu, but its block holds only %zu bytes", p, size,
                usable);
    if (alignment != 0 && ((uintptr_t)p & (alignment - 1)) != 0)
      _qm_fatal("free_aligned_sized: %p is not aligned to %zu", p, alignment);
  }
}

void qm_free_sized(void *p, size_t size) {
  check_sized(p, 0, size);
  qm_free_inline(p);
}

void qm_free_aligned_sized(void *p, size_t alignment, size_t size) {
  check_sized(p, alignment, size);
  qm_free_inline(p);
}

void _qm_free_local(qm_heap_t *heap, qm_segment_t *segment, void *p) {
  qm_page_t *page = qm_page_of(segment, p);
  qm_block_t *block = (qm_block_t *)p;
  if (qm_likely(page->flags == 0)) {
    if (qm_unlikely(qm_block_is_free(page, block)))
      _qm_fatal("double free: block %p (size %u) is already free", p, page->block_size);
    qm_block_set_next(page, block, page->free);
    page->free = block;
    qm_stats_small_free(heap, page);
    if (--page->used == 0)
      _qm_page_release_if_idle(heap, page);
    return;
  }
  _qm_page_free_flagged(heap, page, block);
}

static void inbox_push(qm_heap_t *owner, qm_block_t *block) {
  qm_block_t *head = atomic_load_explicit(&owner->inbox, memory_order_relaxed);
  do {
    qm_link_set(block, head);
  } while (!atomic_compare_exchange_weak_explicit(&owner->inbox, &head, block, memory_order_release,
                                                  memory_order_relaxed));
}

/* Checks what can be checked without touching another thread's mutable state. */
static qm_segment_t *checked_segment(void *p) {
  qm_segment_t *segment = qm_segment_of_normal(p);
  switch (qm_map_state(p)) {
  case QM_MAP_NORMAL:
    break;
  case QM_MAP_HUGE:
    return qm_segment_of(p);
  case QM_MAP_FREED:
    _qm_fatal("double free or invalid free: %p lies in memory qmalloc has already released", p);
  default:
    _qm_fatal("invalid free: %p was not allocated by qmalloc", p);
  }
  if (segment->magic != QM_SEGMENT_MAGIC || segment->kind != QM_SEGMENT_NORMAL ||
      (uintptr_t)p - (uintptr_t)segment < QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE)
    _qm_fatal("invalid free: %p is not a block (it lies in allocator metadata)", p);
  qm_page_t *page = qm_page_of(segment, p);
  if (page->kind != QM_SPAN_SMALL && page->kind != QM_SPAN_LARGE)
    _qm_fatal("double free or invalid free: %p is not in an allocated block", p);
  return segment;
}

/* For memory tools: the block at p is given back (p passed checked_segment). Sizes as qm_usable_size
 * has them; an interior pointer of a large block is left to the checks that report it. */
static void track_free(qm_segment_t *segment, void *p) {
#if QM_VALGRIND || QM_ASAN_POISON
  if (segment->kind == QM_SEGMENT_HUGE) {
    qm_track_free(p, 0); /* unmapped at once: there is nothing to poison */
    return;
  }
  qm_page_t *page = qm_page_of(segment, p);
  if (page->kind == QM_SPAN_SMALL || (void *)qm_page_start(page) == p)
    qm_track_free(p, page->block_size);
#else
  (void)segment, (void)p;
#endif
}

static void free_route(qm_segment_t *segment, void *p);

void _qm_free_generic(void *p) {
  if (p == NULL)
    return;
  qm_segment_t *segment = checked_segment(p);
  track_free(segment, p);
  free_route(segment, p);
}

void _qm_free_collected(void *p) { free_route(checked_segment(p), p); }

/* Sends a checked block to the heap that owns it (or unmaps it). */
static void free_route(qm_segment_t *segment, void *p) {
  if (segment->kind == QM_SEGMENT_HUGE) {
    _qm_huge_free(segment, p);
    return;
  }
  for (;;) {
    qm_heap_t *owner = atomic_load_explicit(&segment->owner_heap, memory_order_acquire);
    qm_heap_t *heap = _qm_tls_heap;
    if (owner == heap) {
      _qm_free_local(heap, segment, p);
      return;
    }
    /* A first-class heap of this thread: its owner may free locally, as the fast path does. The
     * owner_thread compare is the fast path's own test: only this thread can make a segment stop
     * being owned by one of its heaps, so owner_heap, read before it, is still the owner. */
    if (owner != NULL &&
        atomic_load_explicit(&segment->owner_thread, memory_order_relaxed) == _qm_thread_id()) {
      _qm_free_local(owner, segment, p);
      return;
    }
    if (owner != NULL) {
      inbox_push(owner, (qm_block_t *)p);
      return;
    }
    /* Abandoned: the block waits in the segment for the thread that adopts it. */
    int done = _qm_segment_free_abandoned(segment, (qm_block_t *)p);
    if (done > 0)
      return;
    if (done < 0)
      _qm_fatal("invalid free: %p lies in a segment that no heap owns", p);
    /* a thread adopted it meanwhile: route the block to that owner */
  }
}
