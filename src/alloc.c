/* alloc.c - the qm_ allocation entry points: malloc, calloc, realloc, the aligned family and
 * usable_size, with their exact standard semantics, and the generic (not inlined) allocation path.
 *
 * Semantics chosen where the standards leave room (as glibc does):
 *   malloc(0)       a unique 16-byte block.
 *   realloc(p, 0)   frees p and returns NULL; realloc(NULL, n) is malloc(n).
 *   memalign        rounds a non-power-of-two alignment up to a power of two.
 *   aligned_alloc   NULL with EINVAL for a non-power-of-two alignment; any size.
 * Every failure returns NULL with errno == ENOMEM and leaves the caller's blocks as they were.
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>

#if QM_VARIANT_DEBUG
#include "debug.h"
#endif

/* ---------------------------------------------------------------------------------------------
 * The generic path: sizes above QM_DIRECT_MAX, empty pages, first use by a thread, calloc.
 * ------------------------------------------------------------------------------------------- */

/* A large block from the heap's spans, after taking back what other threads freed into the heap
 * (their blocks may free whole spans) and running the decay pass when it is due. */
static void *large_alloc(qm_heap_t *heap, size_t size, bool zero) {
  if (qm_heap_has_inbox_work(heap))
    _qm_heap_collect_inbox(heap);
  qm_heap_decay_tick(heap);
  return _qm_large_alloc(heap, size, 0, zero);
}

/* A block of class cls: the pop of the fast path, else the slow path. */
static inline void *small_alloc(qm_heap_t *heap, size_t cls, bool zero, bool may_borrow) {
  qm_page_t *page = heap->class_page[cls];
  qm_block_t *block = page->free;
  if (block != NULL && !zero) {
    qm_block_t *next = qm_block_next(page, block);
    page->free = next;
    __builtin_prefetch(next); /* as in qm_malloc_inline */
    page->used++;
    page->purge_mark |= QM_PURGE_ALLOCATED; /* the class is not idle (purge.c) */
    qm_stats_small_alloc(heap, page);
    qm_track_malloc(block, page->block_size, false);
    return block;
  }
  return _qm_small_alloc_slow(heap, cls, zero, may_borrow);
}

/* What _qm_malloc_generic does not do inline: large and huge blocks, and the first call of a thread
 * whose heap is not made yet when statistics count requests. Out of line, so that the pop of a small
 * block runs without a stack frame. */
static __attribute__((noinline)) void *malloc_large_or_first(size_t size, qm_heap_t *heap, bool zero) {
  if (qm_unlikely(heap == &_qm_empty_heap)) {
    heap = _qm_heap_get_or_init();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  if (size <= QM_SMALL_MAX) /* only a first request, in QMALLOC_STATS=2 builds: now with its heap */
    return _qm_malloc_generic(size, heap, zero);
  if (size <= QM_LARGE_MAX)
    return large_alloc(heap, size, zero);
  return _qm_huge_alloc(size, 0, zero);
}

void *_qm_malloc_generic(size_t size, qm_heap_t *heap, bool zero) {
  /* A thread's first small malloc meets the empty heap, whose pages have no free block: the slow
   * path takes the thread's heap (_qm_small_alloc_slow), so the pop needs no test for it. Only the
   * request counters of QMALLOC_STATS=2 builds must not be written into the shared empty heap. */
  if (qm_likely(size <= QM_SMALL_MAX) && (QM_STATS < 2 || heap != &_qm_empty_heap)) {
    size_t cls = qm_size_class(size);
    qm_stats_small_request(heap, cls, size);
    return small_alloc(heap, cls, zero, true);
  }
  return malloc_large_or_first(size, heap, zero);
}

/* Pages start on slice boundaries, so a block whose size is a multiple of the alignment is aligned:
 * the class of the size if its block size is such a multiple, else the power of two above (at most
 * doubles the size). Never a block borrowed from a bigger class, whose size need not be a multiple. */
void *_qm_malloc_small_aligned(qm_heap_t *heap, size_t alignment, size_t size, bool zero) {
  qm_assert(qm_is_power_of_two(alignment) && alignment <= QM_SLICE_SIZE && size <= QM_SMALL_MAX);
  size_t n = size < alignment ? alignment : size;
  if (qm_class_size(qm_size_class(n)) % alignment != 0)
    n = qm_next_power_of_two(n);
  size_t cls = qm_size_class(n);
  qm_stats_small_request(heap, cls, qm_class_size(cls));
  void *p = small_alloc(heap, cls, zero, false);
  qm_assert_internal(p == NULL || ((uintptr_t)p & (alignment - 1)) == 0);
  return p;
}

void *_qm_malloc_aligned(size_t alignment, size_t size, bool zero) {
  qm_assert(qm_is_power_of_two(alignment));
  if (alignment <= QM_ALIGNMENT)
    return zero ? qm_calloc_inline(1, size) : qm_malloc_inline(size);
  qm_profile_alloc(size);
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  qm_heap_t *heap = _qm_heap_get_or_init();
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment <= QM_SLICE_SIZE && size <= QM_SMALL_MAX)
    return _qm_malloc_small_aligned(heap, alignment, size, zero);
  if (size <= QM_LARGE_MAX)
    return _qm_large_alloc(heap, size == 0 ? 1 : size, alignment, zero);
  return _qm_huge_alloc(size, alignment, zero);
}

/* ---------------------------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------------------------- */

/* In the debug variant (QM_VARIANT_DEBUG), each entry point hands its call to the debug layer
 * (debug.c) while QMALLOC_DEBUG is on; in every other build the #if blocks are empty. */

void *qm_malloc(size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active())
    return _qm_debug_alloc(QM_ALIGNMENT, size, false);
#endif
  return qm_malloc_inline(size);
}

void *qm_calloc(size_t count, size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active())
    return _qm_debug_calloc(count, size);
#endif
  return qm_calloc_inline(count, size);
}

/* Every aligned entry point allocates here, once its arguments are checked. */
static void *aligned_entry(size_t alignment, size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active())
    return _qm_debug_alloc(alignment, size, false);
#endif
  return _qm_malloc_aligned(alignment, size, false);
}

void *qm_aligned_alloc(size_t alignment, size_t size) {
  if (!qm_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_entry(alignment, size);
}

int qm_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!qm_is_power_of_two(alignment) || alignment % sizeof(void *) != 0)
    return EINVAL;
  int saved_errno = errno;
  void *p = aligned_entry(alignment, size);
  errno = saved_errno;
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

void *qm_memalign(size_t alignment, size_t size) {
  if (alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (!qm_is_power_of_two(alignment))
    alignment = qm_next_power_of_two(alignment);
  return aligned_entry(alignment, size);
}

void *qm_valloc(size_t size) { return aligned_entry(_qm_os_page_size(), size); }

void *qm_pvalloc(size_t size) {
  size_t page = _qm_os_page_size();
  if (size > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = size == 0 ? page : qm_align_up(size, page);
  return aligned_entry(page, rounded);
}

void *qm_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return qm_realloc(p, total);
}

size_t qm_usable_size(const void *p) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active())
    return _qm_debug_usable_size(p);
#endif
  return _qm_usable_size(p);
}

size_t _qm_usable_size(const void *p) {
  if (p == NULL)
    return 0;
  unsigned state = qm_map_state(p);
  qm_segment_t *segment = state == QM_MAP_HUGE ? qm_segment_of(p) : qm_segment_of_normal(p);
  if (state == QM_MAP_HUGE)
    return segment->block_size - ((uintptr_t)p - (uintptr_t)segment - segment->block_offset);
  if (state != QM_MAP_NORMAL)
    _qm_fatal("invalid pointer: %p passed to malloc_usable_size was not allocated by qmalloc", p);
  qm_page_t *page = qm_page_of(segment, p);
  if (page->kind == QM_SPAN_LARGE)
    return page->block_size - (size_t)((const uint8_t *)p - qm_page_start(page));
  if (page->kind != QM_SPAN_SMALL)
    _qm_fatal("invalid pointer: %p passed to malloc_usable_size is not in a block", p);
  return page->block_size;
}

/* A huge block moved or resized by mremap keeps its contents: for memory tools, the old block is
 * freed and the new one handed out with defined contents. */
static void track_huge_realloc(void *p, size_t old_usable, void *q, size_t new_usable) {
  if (q == p) {
    qm_track_huge_resize(p, old_usable, new_usable);
  } else {
    qm_track_free(p, 0);
    qm_track_huge_malloc(q, new_usable);
  }
}

/* Whether a block that realloc must move to grow goes to a span of its own (a large block, whole
 * slices) rather than a class page, whatever its new size: the next growth can then take slices
 * from a free neighbour in place, and when it must move after all, the span it leaves merges with
 * its neighbours and is reused. Through class pages, a buffer that grows step by step moves at
 * every class boundary (8 per doubling) and leaves a block behind in every class it passes.
 * Above QM_REALLOC_SPAN_MIN every growth qualifies; from QM_REALLOC_STEP_MIN, a growth by at most
 * half the block (an append, a vector's 1.125x or 1.5x), which is what comes back for more. A
 * block that doubles reaches its size in a few moves through the classes and keeps their tighter
 * rounding. The bound of QM_REALLOC_STEP_MIN: a span's rounding costs at most one OS page of
 * resident memory beyond the block's own pages, which below 4 KiB would be more than the block. */
static bool realloc_grows_into_span(size_t old_usable, size_t size) {
  if (size <= old_usable || size > QM_LARGE_MAX)
    return false;
  return size > QM_REALLOC_SPAN_MIN || (size > QM_REALLOC_STEP_MIN && size - old_usable <= old_usable / 2);
}

/* realloc by moving: the old block stays intact if the new one cannot be had.
 *
 * A block that moves into a span to grow by less than a quarter (an append, an array grown one
 * element at a time) gets a quarter of its old size more than it asked for, as a vector doubles its
 * capacity: the steps after it stay in place (qm_large_keeps) even when the slices after the block
 * are taken, and a buffer that grows from 64 KiB to 256 KiB copies its contents a few times instead
 * of once per growth that finds its neighbour in use. The headroom costs no resident memory until
 * the block grows into it, unless it lies on pages freed a moment ago. Measured on `realloc` (full
 * size, 7 repetitions): 1.575 → 1.495 s; bytes copied at quick size 549 → 321 MB (DESIGN.md,
 * section 7). */
static void *realloc_move(void *p, size_t old_usable, size_t size) {
  void *q;
  if (realloc_grows_into_span(old_usable, size)) {
    qm_profile_alloc(size);
    qm_heap_t *heap = _qm_heap_get_or_init();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    size_t roomy = old_usable + old_usable / 4;
    q = NULL;
    if (size < roomy && roomy <= QM_LARGE_MAX)
      q = large_alloc(heap, roomy, false);
    if (q == NULL)
      q = large_alloc(heap, size, false);
  } else {
    q = qm_malloc_inline(size);
  }
  if (q == NULL)
    return NULL;
  memcpy(q, p, old_usable < size ? old_usable : size);
  qm_free_inline(p);
  return q;
}

/* Everything but a block that keeps its place: moves, in-place growth of a large block into its
 * free neighbour, huge blocks, invalid pointers. Out of line, so that the common case below saves
 * and restores no registers. */
static __attribute__((noinline)) void *realloc_slow(void *p, size_t size) {
  if (p == NULL)
    return qm_malloc_inline(size);
  if (size == 0) {
    qm_free_inline(p);
    return NULL;
  }
  if (size > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned state = qm_map_state(p);
  qm_segment_t *segment = state == QM_MAP_HUGE ? qm_segment_of(p) : qm_segment_of_normal(p);
  if (state == QM_MAP_HUGE) {
    if (segment->magic != QM_SEGMENT_MAGIC || p != (uint8_t *)segment + segment->block_offset)
      _qm_fatal("invalid realloc: %p is not the start of a huge block", p);
    if (size > QM_LARGE_MAX) {
      size_t old_usable = segment->block_size;
      void *q = _qm_huge_realloc(segment, p, size);
      if (q != NULL)
        track_huge_realloc(p, old_usable, q, qm_segment_of(q)->block_size);
      return q;
    }
    return realloc_move(p, segment->block_size, size);
  }
  if (state != QM_MAP_NORMAL)
    _qm_fatal("invalid realloc: %p was not allocated by qmalloc", p);
  qm_page_t *page = qm_page_of(segment, p);
  size_t usable = page->block_size;
  if (page->kind == QM_SPAN_LARGE) {
    if (p != qm_page_start(page))
      _qm_fatal("invalid realloc: %p points inside a large block", p);
    qm_heap_t *heap = _qm_tls_heap;
    if (size <= QM_LARGE_MAX && atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap) {
      if (_qm_large_resize_in_place(heap, page, size)) {
        qm_track_resize(p, usable, page->block_size);
        return p;
      }
    } else if (size <= usable && size >= usable / 2) {
      return p; /* another thread's block: its spans are not ours to split */
    }
  } else if (page->kind != QM_SPAN_SMALL) {
    _qm_fatal("invalid realloc: %p is not in an allocated block (freed already?)", p);
  }
  /* A small block that could keep its place (within half of it) has kept it in qm_realloc. */
  return realloc_move(p, usable, size);
}

void *qm_realloc(void *p, size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active())
    return _qm_debug_realloc(p, size);
#endif
  /* The common case: a block that already fits the new size (a size above QM_MAX_REQUEST fits
   * no block). A small block stays in place while it is at most twice what is asked for; a large
   * one by the rule of qm_large_keeps. */
  if (qm_likely(size != 0 && qm_map_state(p) == QM_MAP_NORMAL)) {
    qm_page_t *page = qm_page_of(qm_segment_of_normal(p), p);
    size_t usable = page->block_size;
    if (page->kind == QM_SPAN_SMALL && size <= usable && size >= usable / 2)
      return p;
    if (page->kind == QM_SPAN_LARGE && p == qm_page_start(page) && qm_large_keeps(usable, size))
      return p;
  }
  return realloc_slow(p, size);
}

const char *qm_version(void) { return QMALLOC_VERSION_STRING; }

bool qm_is_heap_pointer(const void *p) {
  unsigned state = qm_map_state(p);
  return state == QM_MAP_NORMAL || state == QM_MAP_HUGE;
}

int qm_trim(size_t pad) {
  (void)pad;
  qm_ensure_process_init();
  if (_qm_tls_heap != &_qm_empty_heap)
    _qm_heap_flush_remote(_qm_tls_heap);
  bool released = _qm_heap_trim(_qm_tls_heap);
  /* Other threads' heaps: their free spans (the rest of their memory only their owners touch). */
  released |= _qm_purge_other_heaps(_qm_tls_heap, UINT64_MAX);
  return released ? 1 : 0;
}

void qm_thread_done(void) {
  qm_heap_t *heap = _qm_tls_heap;
  if (heap != &_qm_empty_heap)
    _qm_heap_abandon(heap);
  _qm_tls_heap_given_back = true;
}
