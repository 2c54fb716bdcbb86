/* user_heap.c - first-class heaps: qm_heap_new, allocation from a named heap, qm_heap_destroy
 * (which frees every block of the heap at once), and what happens to such a heap when its thread
 * exits.
 *
 * A first-class heap is an ordinary qm_heap_t (types.h) taken from the heap pool and owned by the
 * thread that created it, but not installed as that thread's heap: malloc never allocates from it,
 * only the qm_heap_* functions do. Everything else is shared with thread heaps:
 *   - allocation runs the thread heap's paths with the heap passed in: a direct-page fast path as in
 *     alloc-inl.h, then _qm_malloc_generic / _qm_large_alloc; huge blocks are also listed in the
 *     heap (huge.c), since they have no segment of their own to be found by;
 *   - frees need nothing new: the owner frees onto the page (the fast path compares the segment's
 *     owner_thread, which is this heap's thread), other threads push onto the heap's inbox, which the
 *     heap drains on its slow paths;
 *   - destruction releases every segment whatever it holds (_qm_segment_discard), unmaps the huge
 *     blocks, and puts the struct back into the pool.
 * A first-class heap never adopts an abandoned segment (segment.c) and never abandons one, so that
 * its segments hold its own blocks only and can be released whole.
 *
 *   qm_heap_new -> owned (thread_id = creator) --------- qm_heap_destroy (owner) ---> heap pool
 *                        | the owner exits, or calls qm_thread_done                ^
 *                        v                                                         |
 *                  orphaned (thread_id 0, owner_thread 0 on its segments):         |
 *                  blocks stay valid, every free goes to the inbox, no allocation --+ qm_heap_destroy
 *                                                                                  (any one thread)
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>

/* ---------------------------------------------------------------------------------------------
 * Ownership checks: one compare on the fast path, a message naming the heap otherwise.
 * ------------------------------------------------------------------------------------------- */

static qm_cold qm_noreturn void misuse(qm_heap_t *h, const char *function) {
  if (!qm_heap_is_user(h))
    _qm_fatal("%s: %p is not a live heap (destroyed already, or not from qm_heap_new)", function, (void *)h);
  if (h->thread_id == 0)
    _qm_fatal("%s: heap %p has no owner thread any more (its thread exited): it can only be destroyed",
              function, (void *)h);
  _qm_fatal("%s: heap %p belongs to another thread (a heap allocates only on the thread that created it)",
            function, (void *)h);
}

static inline void check_owner(qm_heap_t *h, const char *function) {
  if (qm_unlikely(!qm_heap_is_user(h) || h->thread_id != _qm_thread_id()))
    misuse(h, function);
}

/* ---------------------------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------------------------- */

static void *heap_alloc_generic(qm_heap_t *h, size_t size, bool zero) {
  check_owner(h, zero ? "qm_heap_calloc" : "qm_heap_malloc");
  if (size > QM_LARGE_MAX)
    return _qm_huge_alloc_listed(h, size, 0, zero);
  return _qm_malloc_generic(size, h, zero);
}

/* The fast path of qm_malloc_inline with the heap passed in; the owner test is the extra compare. */
void *qm_heap_malloc(qm_heap_t *h, size_t size) {
  if (qm_likely(size <= QM_DIRECT_MAX && h->thread_id == _qm_thread_id())) {
    qm_page_t *page = h->direct[(size + 15) >> 4];
    qm_block_t *block = page->free;
    if (qm_likely(block != NULL)) {
      page->free = qm_block_next(page, block);
      page->used++;
      qm_track_malloc(block, page->block_size, false);
      return block;
    }
  }
  return heap_alloc_generic(h, size, false);
}

void *qm_heap_calloc(qm_heap_t *h, size_t count, size_t size) {
  size_t total;
  if (qm_unlikely(__builtin_mul_overflow(count, size, &total))) {
    check_owner(h, "qm_heap_calloc");
    errno = ENOMEM;
    return NULL;
  }
  if (qm_likely(total <= QM_DIRECT_MAX && h->thread_id == _qm_thread_id())) {
    qm_page_t *page = h->direct[(total + 15) >> 4];
    qm_block_t *block = page->free;
    if (qm_likely(block != NULL)) {
      page->free = qm_block_next(page, block);
      page->used++;
      qm_track_malloc(block, page->block_size, true);
      if (page->flags & QM_PAGE_FREE_ZERO)
        block->next = NULL; /* fresh blocks are zero but for the link */
      else
        memset(block, 0, total);
      return block;
    }
  }
  return heap_alloc_generic(h, total, true);
}

/* _qm_malloc_aligned with the heap passed in: the same three cases. */
static void *heap_alloc_aligned(qm_heap_t *h, size_t alignment, size_t size, bool zero) {
  if (alignment <= QM_ALIGNMENT)
    return heap_alloc_generic(h, size, zero);
  check_owner(h, "qm_heap_aligned_alloc");
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment <= QM_SLICE_SIZE && size <= QM_SMALL_MAX)
    return _qm_malloc_small_aligned(h, alignment, size, zero);
  /* What _qm_large_alloc needs; where that cannot fit a segment it would map an unlisted huge block. */
  size_t slices = (size + QM_SLICE_SIZE - 1) / QM_SLICE_SIZE;
  if (alignment > QM_SLICE_SIZE)
    slices += alignment / QM_SLICE_SIZE - 1;
  if (size <= QM_LARGE_MAX && slices <= QM_SEGMENT_USABLE_SLICES)
    return _qm_large_alloc(h, size == 0 ? 1 : size, alignment, zero);
  return _qm_huge_alloc_listed(h, size, alignment, zero);
}

void *qm_heap_aligned_alloc(qm_heap_t *h, size_t alignment, size_t size) {
  if (!qm_is_power_of_two(alignment)) {
    check_owner(h, "qm_heap_aligned_alloc");
    errno = EINVAL;
    return NULL;
  }
  return heap_alloc_aligned(h, alignment, size, false);
}

/* The usable size of a block that realloc may move; aborts on what is not a block. */
static size_t realloc_usable(void *p) {
  unsigned state = qm_map_state(p);
  if (state == QM_MAP_HUGE) {
    qm_segment_t *segment = qm_segment_of(p);
    if (segment->magic != QM_SEGMENT_MAGIC || p != (uint8_t *)segment + segment->block_offset)
      _qm_fatal("invalid realloc: %p is not the start of a huge block", p);
    return segment->block_size;
  }
  if (state != QM_MAP_NORMAL)
    _qm_fatal("invalid realloc: %p was not allocated by qmalloc", p);
  qm_page_t *page = qm_page_of(qm_segment_of_normal(p), p);
  if (page->kind == QM_SPAN_LARGE && p != qm_page_start(page))
    _qm_fatal("invalid realloc: %p points inside a large block", p);
  if (page->kind != QM_SPAN_SMALL && page->kind != QM_SPAN_LARGE)
    _qm_fatal("invalid realloc: %p is not in an allocated block (freed already?)", p);
  return page->block_size;
}

void *qm_heap_realloc(qm_heap_t *h, void *p, size_t size) {
  if (p == NULL)
    return qm_heap_malloc(h, size);
  check_owner(h, "qm_heap_realloc");
  if (size == 0) {
    qm_free_inline(p);
    return NULL;
  }
  if (size > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable = realloc_usable(p);
  if (qm_map_state(p) == QM_MAP_HUGE) {
    qm_segment_t *segment = qm_segment_of(p);
    if (segment->huge_owner == h && size > QM_LARGE_MAX) {
      void *q = _qm_huge_realloc(segment, p, size); /* stays listed in h, wherever it moves */
      if (q != NULL && q == p) {
        qm_track_huge_resize(p, usable, segment->block_size);
      } else if (q != NULL) {
        qm_track_free(p, 0);
        qm_track_huge_malloc(q, qm_segment_of(q)->block_size);
      }
      return q;
    }
  } else {
    qm_segment_t *segment = qm_segment_of_normal(p);
    qm_page_t *page = qm_page_of(segment, p);
    /* Only h's own blocks stay in place; the others move into h. */
    if (atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == h) {
      if (page->kind == QM_SPAN_SMALL && size <= usable && size >= usable / 2)
        return p;
      if (page->kind == QM_SPAN_LARGE && size <= QM_LARGE_MAX && _qm_large_resize_in_place(h, page, size)) {
        qm_track_resize(p, usable, page->block_size);
        return p;
      }
    }
  }
  void *q = qm_heap_malloc(h, size);
  if (q == NULL)
    return NULL;
  memcpy(q, p, usable < size ? usable : size);
  qm_free_inline(p);
  return q;
}

/* ---------------------------------------------------------------------------------------------
 * Creation, destruction, orphaning
 * ------------------------------------------------------------------------------------------- */

qm_heap_t *qm_heap_new(void) {
  /* The thread heap lists the thread's first-class heaps, so that its exit can orphan them. */
  qm_heap_t *thread_heap = _qm_heap_get_or_init();
  qm_heap_t *h = thread_heap ? _qm_heap_pool_take() : NULL;
  if (h == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  h->thread_id = _qm_thread_id();
  h->user_magic = QM_USER_HEAP_MAGIC;
  h->user_prev = NULL;
  h->user_next = thread_heap->user_heaps;
  if (thread_heap->user_heaps)
    thread_heap->user_heaps->user_prev = h;
  thread_heap->user_heaps = h;
  /* Blocks may have arrived while the struct sat in the pool: send them where they belong. */
  _qm_heap_collect_inbox(h);
  return h;
}

/* Memory tools: the blocks still live in h's segments die with them, so they are freed one by one
 * before the segments are discarded (memcheck would otherwise keep them as live and see new blocks
 * overlap them when the memory is reused). */
static void track_discard(qm_heap_t *h) {
#if QM_VALGRIND || QM_ASAN_POISON
  /* Blocks in the inbox were freed already: back onto their pages, so they count as free. */
  _qm_heap_collect_inbox(h);
  for (qm_segment_t *segment = h->segments; segment != NULL; segment = segment->next) {
    for (size_t i = QM_SEGMENT_FIRST_SLICE; i < QM_SLICES_PER_SEGMENT;) {
      qm_page_t *span = &segment->slices[i];
      uint8_t *start = qm_page_start(span);
      if (span->kind == QM_SPAN_LARGE && span->used != 0) {
        qm_track_free(start, span->block_size);
      } else if (span->kind == QM_SPAN_SMALL && span->used != 0) {
        uint64_t free_bits[QM_PAGE_BLOCKS_MAX / 64];
        _qm_page_free_bits(span, free_bits);
        for (size_t b = 0; b < span->capacity; b++)
          if (!((free_bits[b / 64] >> (b % 64)) & 1))
            qm_track_free(start + b * span->block_size, span->block_size);
      }
      i += span->slice_count > 0 ? span->slice_count : 1;
    }
  }
#else
  (void)h;
#endif
}

void qm_heap_destroy(qm_heap_t *h) {
  if (h == NULL)
    return;
  if (!qm_heap_is_user(h))
    misuse(h, "qm_heap_destroy");
  if (h->thread_id == _qm_thread_id()) {
    /* Owned by this thread: it is on the list of this thread's heap. */
    qm_heap_t *thread_heap = _qm_tls_heap;
    if (h->user_prev)
      h->user_prev->user_next = h->user_next;
    else
      thread_heap->user_heaps = h->user_next;
    if (h->user_next)
      h->user_next->user_prev = h->user_prev;
  } else if (h->thread_id != 0) {
    _qm_fatal("qm_heap_destroy: heap %p is in use by another thread (only the thread that created it may "
              "destroy it while that thread lives)",
              (void *)h);
  }
  /* From here on any call naming h is reported. Blocks waiting in the inbox die with their pages. */
  h->user_magic = 0;
  track_discard(h);
  atomic_store_explicit(&h->inbox, NULL, memory_order_relaxed);
  h->inbox_collected = atomic_load_explicit(&h->inbox_pushed, memory_order_relaxed); /* none left */
  _qm_heap_unlist(h); /* no other thread may look at its spans once they are discarded */
  qm_span_lock_enter(h);
  while (h->segments != NULL)
    _qm_segment_discard(h, h->segments);
  qm_span_lock_leave(h);
  _qm_huge_release_listed(h);
  _qm_heap_reset(h); /* unlisted: nobody else looks at it */
  _qm_heap_pool_give(h);
}

void _qm_user_heaps_orphan(qm_heap_t *thread_heap) {
  qm_heap_t *h = thread_heap->user_heaps;
  thread_heap->user_heaps = NULL;
  while (h != NULL) {
    qm_heap_t *next = h->user_next;
    /* Take back what other threads freed, and give back what is empty now, while this thread
     * still owns the heap; afterwards nobody drains it until it is destroyed. */
    qm_span_lock_enter(h);
    _qm_heap_collect_inbox(h);
    _qm_heap_sweep_pages(h, false);
    for (qm_segment_t *segment = h->segments, *after; segment != NULL; segment = after) {
      after = segment->next;
      if (segment->used_slices == 0)
        _qm_segment_release(h, segment);
    }
    qm_span_lock_leave(h);
    /* No thread matches owner_thread 0: every free from now on goes through the inbox, even from a
     * new thread that happens to get this thread's thread pointer. */
    for (qm_segment_t *segment = h->segments; segment != NULL; segment = segment->next)
      atomic_store_explicit(&segment->owner_thread, 0, memory_order_release);
    h->thread_id = 0;
    h->user_next = h->user_prev = NULL;
    h = next;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------------------------- */

bool qm_heap_check(qm_heap_t *h) {
  if (!qm_heap_is_user(h) || (h->thread_id != 0 && h->thread_id != _qm_thread_id()))
    misuse(h, "qm_heap_check");
  bool valid = _qm_heap_is_valid(h);
  for (qm_segment_t *segment = h->segments; segment != NULL; segment = segment->next) {
    if (atomic_load_explicit(&segment->owner_thread, memory_order_relaxed) != h->thread_id) {
      _qm_message("heap validation: segment %p of heap %p has the wrong owner thread", (void *)segment,
                  (void *)h);
      valid = false;
    }
  }
  _qm_lock(&h->huge_lock);
  qm_segment_t *prev = NULL;
  for (qm_segment_t *segment = h->huge_blocks; segment != NULL; segment = segment->next) {
    if (segment->magic != QM_SEGMENT_MAGIC || segment->kind != QM_SEGMENT_HUGE || segment->huge_owner != h ||
        segment->prev != prev || qm_map_state((uint8_t *)segment + 1) != QM_MAP_HUGE) {
      _qm_message("heap validation: huge block list of heap %p is broken at %p", (void *)h, (void *)segment);
      valid = false;
      break;
    }
    prev = segment;
  }
  _qm_unlock(&h->huge_lock);
  return valid;
}
