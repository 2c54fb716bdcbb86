/* page.c - small blocks: pages of one size class, their free lists, and the slow path of small
 * allocation.
 *
 * A page is a span cut into blocks of one class. Its blocks are carved lazily: `capacity` of the
 * `reserved` blocks have been threaded onto the free list so far, 4 KiB at a time, so a page
 * touches memory only as it is used. The owner pushes freed blocks back onto the page's list (LIFO,
 * so the next malloc gets a block that is still in cache).
 *
 * Each class has a queue of pages that may have free blocks; the first page of the queue is the
 * one the fast path allocates from (heap->direct[] and heap->class_page[] point at it). When it runs
 * dry the slow path walks the queue: pages that are full leave it (IN_FULL) until a block comes
 * back; an empty queue gets a new page from the span layer. Pages with no used block are given
 * back lazily, by sweeps (every 1024 slow paths, when spans run short, at trim and thread exit),
 * so that a malloc/free loop on one block never bounces a page between the heap and the segment.
 */
#include "block-inl.h"

#include <errno.h>

/* A table rather than the arithmetic: the cross-thread free and the inbox drain look a size up
 * for each parcel (block-inl.h), and a load is shorter than the shifts. */
#define CLASS_SIZES_8(c)                                                                                     \
  QM_CLASS_SIZE(c), QM_CLASS_SIZE(c + 1), QM_CLASS_SIZE(c + 2), QM_CLASS_SIZE(c + 3), QM_CLASS_SIZE(c + 4),  \
      QM_CLASS_SIZE(c + 5), QM_CLASS_SIZE(c + 6), QM_CLASS_SIZE(c + 7)
const uint32_t _qm_class_sizes[QM_CLASS_COUNT] = {
    CLASS_SIZES_8(0),  CLASS_SIZES_8(8),  CLASS_SIZES_8(16), CLASS_SIZES_8(24), CLASS_SIZES_8(32),
    CLASS_SIZES_8(40), CLASS_SIZES_8(48), CLASS_SIZES_8(56), CLASS_SIZES_8(64), CLASS_SIZES_8(72),
};
_Static_assert(QM_CLASS_COUNT == 80, "the table above lists 80 classes");
_Static_assert(QM_CLASS_SIZE(0) == 16 && QM_CLASS_SIZE(7) == 128 && QM_CLASS_SIZE(8) == 144 &&
                   QM_CLASS_SIZE(15) == 256 && QM_CLASS_SIZE(16) == 288 && QM_CLASS_SIZE(79) == QM_SMALL_MAX,
               "class sizes as the table in internal.h draws them");

void _qm_heap_update_class_page(qm_heap_t *heap, size_t cls) {
  qm_page_t *page = heap->class_queue[cls].first;
  if (page == NULL)
    page = &_qm_empty_page;
  heap->class_page[cls] = page;
  size_t size = qm_class_size(cls);
  if (size <= QM_DIRECT_MAX) {
    /* direct[i] serves sizes (i*16-15 .. i*16]: the indices between the previous class and ours. */
    size_t first = cls == 0 ? 0 : qm_class_size(cls - 1) / 16 + 1;
    for (size_t i = first; i <= size / 16; i++)
      heap->direct[i] = page;
  }
}

static void page_init(qm_page_t *page, size_t cls) {
  size_t count = page->slice_count;
  size_t block_size = qm_class_size(cls);
  page->kind = QM_SPAN_SMALL;
  page->size_class = (uint8_t)cls;
  page->block_size = (uint32_t)block_size;
  page->reserved = (uint32_t)((count << QM_SLICE_SHIFT) / block_size);
  page->capacity = 0;
  page->used = 0;
  page->free = NULL;
  page->flags = page->is_zero == QM_MEMORY_ZERO ? QM_PAGE_FREE_ZERO : 0;
  page->purge_mark = QM_PURGE_NONE;
  qm_page_watch(page);
  page->hole_blocks = 0;
  page->hole_map = 0;
  /* Carving past the memory the span had made resident counts as growth (purge.c). */
  if (page->resident_slices > count)
    page->resident_slices = (uint32_t)count;
  qm_slice_head_fill(page, count);
  qm_slice_class_set(page, count, (uint8_t)cls);
  qm_track_reserve(qm_page_start(page), count << QM_SLICE_SHIFT);
}

/* Threads the next few KiB of never-used blocks onto the free list: in address order, or (secure
 * build) in a random order drawn from the heap's generator. */
static void page_extend(qm_heap_t *heap, qm_page_t *page) {
  size_t block_size = page->block_size;
  size_t left = page->reserved - page->capacity;
  /* One OS page's worth, at least one block: threading a block writes its first word, which makes
   * the memory under it resident, so carving ahead of need would touch pages no block uses yet. */
  size_t n = QM_CARVE_BYTES / block_size;
  if (n < 1)
    n = 1;
  if (n > left)
    n = left;
  qm_assert_internal(n > 0);
  size_t offset = (size_t)page->capacity * block_size,
         resident = (size_t)page->resident_slices << QM_SLICE_SHIFT;
  uint8_t *first = qm_page_start(page) + offset;
  page->capacity += (uint32_t)n; /* first, so that the new blocks count as carved for link checks */
  if (offset + n * block_size > resident)
    qm_heap_grew(heap, offset + n * block_size - (offset > resident ? offset : resident));
#if QM_SECURE
  if (_qm_options.secure) {
    _qm_secure_carve(heap, page, first, n);
    return;
  }
#endif
  uint8_t *p = first;
  for (size_t i = 1; i < n; i++, p += block_size)
    qm_block_set_next(page, (qm_block_t *)p, (qm_block_t *)(p + block_size));
  qm_block_set_next(page, (qm_block_t *)p, page->free);
  page->free = (qm_block_t *)first;
}

/* Borrowing. A class above 512 B whose pages have no free block left may take a block that the
 * program freed in one of the next QM_BORROW_CLASSES classes instead of carving new memory: the
 * request gets a block up to 25% bigger than its class (8 classes per doubling), and no memory is
 * touched. Why: each class keeps the memory of the most blocks it ever held at once, and when a
 * program's blocks move between neighbouring sizes (entries of a table replaced by objects of
 * random sizes, messages of varying length) the classes take turns at their highest counts, so the
 * sum of those highs grows past what is live at any moment; lending between neighbours lets one
 * class's dip cover another's peak. A simulation of `lifetimes` (20,000 blocks of 32 B-4 KiB, 1.6
 * million replacements) carves 47.4 MB without, 45.6 MB lending from the next class, 45.0 MB from
 * the next two; measured peak RSS: BENCHMARKS.md, History.
 *
 * Only freed blocks are lent: a lender's page holds more free memory than one carving
 * (QM_CARVE_BYTES), or is carved to its end. A page still carving may hold only what it just carved
 * for itself, and a program that only grows should not borrow: each borrowed block costs a slow
 * path (the borrower's own page stays dry, so each of its allocations comes here until no lender
 * is left). For that cost, classes of 512 B and less do not borrow: lending there cost `frag` (16-512
 * B blocks) 5% more instructions, and the memory at stake is a fraction of a page per class.
 * Aligned requests do not borrow either: their class was chosen for its block size
 * (_qm_malloc_small_aligned). */
#define QM_BORROW_CLASSES 2
#define QM_BORROW_MIN_CLASS 24 /* the first class above 512 B (576 B) */

/* Makes page the front of its class queue. An empty page pushed back from the front is counted for
 * the sweeps (_qm_heap_sweep_pages): a new page can land in front of adopted pages that the frees
 * parked in their segment emptied while one of them was first. */
static void queue_push_front(qm_heap_t *heap, qm_page_list_t *queue, qm_page_t *page) {
  if (queue->first != NULL && queue->first->used == 0)
    heap->pages_emptied++;
  qm_list_push_front(queue, page);
}

/* The page is allocated from again: the decay passes start over with it. Of the pages they look
 * at no more (the segment's decay_watch, types.h), only a thinned one can come back this way. */
static inline void page_in_use_again(qm_page_t *page) {
  if (qm_purge_state(page) == QM_PURGE_THINNED)
    qm_page_watch(page);
  page->purge_mark = QM_PURGE_NONE;
}

/* Walks the class queue to the first page with a free block and makes it the class's current page;
 * NULL when no page has one, with *growable the first page that can carve more or take back its
 * holes (or NULL).
 *
 * Blocks already freed come before memory never touched: the first page of the queue with a free
 * block wins over carving more of a page, so a class whose count of live blocks rises and falls
 * again reuses its freed blocks, and its resident memory follows what it holds rather than the
 * most it ever held. Pages passed over because they have nothing free but could carve more go to
 * the back of the queue, so the next walk does not pass them again. Full pages leave the queue. */
static qm_page_t *queue_find_free(qm_heap_t *heap, size_t cls, qm_page_t **growable_out) {
  qm_page_list_t *queue = &heap->class_queue[cls];
  qm_page_t *page = queue->first, *growable = NULL, *first = queue->first;
  while (page != NULL && page != growable) {
    qm_page_t *next = page->next;
    if (page->free != NULL)
      break;
    qm_list_remove(queue, page);
    if (page->capacity < page->reserved || page->hole_map != 0) {
      if (page->used == 0)
        heap->pages_emptied++; /* an empty page leaves the front of its queue: the sweeps must look */
      qm_list_push_back(queue, page);
      if (growable == NULL)
        growable = page;
    } else {
      page->flags |= QM_PAGE_IN_FULL;
    }
    page = next;
  }
  *growable_out = growable;
  if (page == growable)
    page = NULL;
  if (page != NULL) {
    if (page != queue->first) {
      qm_list_remove(queue, page);
      queue_push_front(heap, queue, page);
    }
    page_in_use_again(page);
  }
  if (page != NULL || queue->first != first)
    _qm_heap_update_class_page(heap, cls);
  return page;
}

/* A page of one of the next classes with freed blocks to lend, or NULL. */
static qm_page_t *page_lender(qm_heap_t *heap, size_t cls) {
  size_t last = cls + QM_BORROW_CLASSES < QM_CLASS_COUNT ? cls + QM_BORROW_CLASSES : QM_CLASS_COUNT - 1;
  for (size_t lender = cls + 1; lender <= last; lender++) {
    qm_page_t *growable;
    qm_page_t *page = queue_find_free(heap, lender, &growable);
    if (page == NULL)
      continue;
    size_t free_blocks = (size_t)page->capacity - page->used - page->hole_blocks;
    if (free_blocks * page->block_size > QM_CARVE_BYTES || page->capacity == page->reserved)
      return page;
  }
  return NULL;
}

/* Makes the first page of the class queue one with a free block, or returns a lender's page (when
 * may_borrow); NULL when out of memory. When no page of the class has a free block, the first
 * page that can carves more (or takes back its purged holes), else a new page is made. */
static qm_page_t *page_find(qm_heap_t *heap, size_t cls, bool may_borrow) {
  qm_page_t *growable;
  qm_page_t *page = queue_find_free(heap, cls, &growable);
  if (page != NULL)
    return page;
  if (may_borrow && cls >= QM_BORROW_MIN_CLASS) {
    page = page_lender(heap, cls);
    if (page != NULL)
      return page;
  }
  /* No page of the class can grow: the blocks that other threads gave back come before a new page
   * (a slow path leaves a few of them to the frees, heap.c). */
  if (growable == NULL && qm_heap_has_inbox_work(heap)) {
    _qm_heap_collect_share(heap, 0);
    page = queue_find_free(heap, cls, &growable);
    if (page != NULL)
      return page;
  }
  page = growable;
  if (page != NULL && page->capacity < page->reserved)
    page_extend(heap, page);
  else if (page != NULL)
    _qm_page_refill_holes(page);
  qm_page_list_t *queue = &heap->class_queue[cls];
  if (page == NULL) {
    page = _qm_span_alloc(heap, qm_class_page_slices(cls));
    if (page == NULL)
      return NULL;
    page_init(page, cls);
    page_extend(heap, page);
    queue_push_front(heap, queue, page);
  } else if (page != queue->first) {
    qm_list_remove(queue, page);
    queue_push_front(heap, queue, page);
  }
  page_in_use_again(page);
  _qm_heap_update_class_page(heap, cls);
#if QM_DEBUG >= 3
  /* The validator walks every descriptor of every segment: run at every page switch, it made a big
   * heap's run quadratic (the purge tests timed out). Once per 64 switches for each segment the heap
   * holds keeps its cost in proportion to the work, and small heaps are still checked often. */
  static _Thread_local size_t switches_until_check;
  if (switches_until_check-- == 0) {
    qm_assert_expensive(_qm_heap_is_valid(heap));
    switches_until_check = 64 * heap->segment_count;
  }
#endif
  return page;
}

void *_qm_small_alloc_slow(qm_heap_t *heap, size_t cls, bool zero, bool may_borrow) {
  if (qm_unlikely(heap == &_qm_empty_heap)) { /* the thread's first malloc (_qm_malloc_generic) */
    heap = _qm_heap_get_or_init();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  heap->slow_path_count++;
  if (qm_heap_has_inbox_work(heap))
    _qm_heap_collect_share(heap, QM_DRAIN_MALLOC_MIN); /* fewer: the frees collect them (heap.c) */
  qm_heap_decay_tick(heap);
  if ((heap->slow_path_count & 1023) == 0)
    _qm_heap_sweep_pages(heap, true);
  qm_page_t *page = heap->class_page[cls];
  if (page->free == NULL) {
    page = page_find(heap, cls, may_borrow);
    if (page == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  bool fresh = (page->flags & QM_PAGE_FREE_ZERO) != 0;
  qm_block_t *block = qm_page_pop(page);
  page->used++;
  page->purge_mark |= QM_PURGE_ALLOCATED; /* the class is not idle (purge.c) */
  qm_stats_small_alloc_slow(heap, page);
  qm_track_malloc(block, page->block_size, zero);
  if (zero) {
    if (fresh)
      block->next = NULL;
    else
      memset(block, 0, page->block_size);
  }
  return block;
}

/* Puts a page that has blocks to give at the end of its class queue. */
static void queue_append(qm_heap_t *heap, qm_page_t *page) {
  qm_page_list_t *queue = &heap->class_queue[page->size_class];
  qm_list_push_back(queue, page);
  if (queue->first == page)
    _qm_heap_update_class_page(heap, page->size_class);
}

void _qm_page_free_flagged(qm_heap_t *heap, qm_page_t *page, qm_block_t *block) {
  uint8_t flags = page->flags;
  if (flags & QM_PAGE_NOT_IN_USE)
    _qm_fatal("double free or invalid free: %p is not in an allocated block", (void *)block);
  if (flags & QM_PAGE_LARGE) {
    if ((void *)block != (void *)qm_page_start(page))
      _qm_fatal("invalid free: %p points inside the %u-byte block at %p", (void *)block, page->block_size,
                (void *)qm_page_start(page));
    _qm_large_free(heap, page);
    qm_heap_decay_tick(heap);
    return;
  }
  if (qm_unlikely(page->used == 0 || qm_block_is_free(page, block)))
    _qm_fatal("double free: block %p (size %u) is already free", (void *)block, page->block_size);
  qm_block_set_next(page, block, page->free);
  page->free = block;
  page->used--;
  qm_stats_small_free(heap, page);
  page->flags = flags & (uint8_t) ~(QM_PAGE_FREE_ZERO | QM_PAGE_IN_FULL);
  if (flags & QM_PAGE_IN_FULL) {
    page->purge_mark = QM_PURGE_NONE;
    qm_page_watch(page); /* a pass that saw it full stopped watching it */
    queue_append(heap, page);
  }
  if (page->used == 0)
    _qm_page_release_if_idle(heap, page);
  /* Last: a quick sweep may give back an empty page, this one included. */
  if (flags & QM_PAGE_IN_FULL)
    qm_heap_decay_tick(heap);
}

void _qm_page_free_emptied(qm_heap_t *heap, qm_page_t *page, qm_block_t *block) {
  /* The block need not be the one freed twice: a drain that went round a looped chain may have
   * followed a link the first free wrote, into the page's free list. The page is named too. */
  if (page->used == UINT32_MAX)
    _qm_fatal("double free: block %p (size %u) is already free (its page at %p has no block in use)",
              (void *)block, page->block_size, (void *)qm_page_start(page));
  /* A heap that allocates keeps the page in its queue, as the free fast path does (its sweeps and
   * decay passes give it back if it stays empty): the drain of what other threads freed empties
   * pages of busy classes all the time, and giving each back at once made the class make a new
   * page soon after, carving and faulting in `malloc` (in `larson`, 1 malloc in 2,500, a third of
   * its slowest thousandth). A heap that has never run malloc's slow path runs no sweep either. */
  if (heap->slow_path_count != 0) {
    heap->pages_emptied++;
    return;
  }
  _qm_page_release_if_idle(heap, page);
}

/* Slow-path frees into flagged pages, and the drains of a heap that has never allocated
 * (_qm_page_free_emptied), give an idle page back at once unless the fast path is allocating from
 * it: those pages would otherwise wait for a sweep that a thread which only frees never runs. */
void _qm_page_release_if_idle(qm_heap_t *heap, qm_page_t *page) {
  if (page->used != 0 || (page->flags & QM_PAGE_IN_FULL))
    return;
  qm_page_list_t *queue = &heap->class_queue[page->size_class];
  if (queue->first == page)
    return;
  qm_list_remove(queue, page);
  page->flags = 0;
  _qm_span_free(heap, page);
}

void _qm_page_emptied(qm_segment_t *segment, qm_page_t *page) {
  qm_heap_t *heap = atomic_load_explicit(&segment->owner_heap, memory_order_relaxed);
  heap->pages_emptied++;
  /* A loop that allocates and frees one block empties its page at every free: classes up to
   * QM_DIRECT_MAX (the fast path's) leave at the first compare. */
  if (page->size_class >= QM_DIRECT_CLASSES && heap->class_queue[page->size_class].first == page &&
      qm_purge_state(page) != QM_PURGE_THINNED)
    page->purge_mark = (uint8_t)(qm_purge_state(page) | QM_PURGE_EMPTIED);
}

/* A sweep reads the descriptor of every queued page, one dependent load after another: with many
 * pages that hold a few live blocks each (a program that freed most of a big structure) it costs
 * far more than it finds. So a sweep that keeps the current pages runs only when a page may have
 * become empty behind the front of its queue since the last sweep (heap->pages_emptied): the free
 * fast path counts every page it empties; the slow frees release such a page at once; an empty page
 * that leaves the front (queue_find_free, queue_push_front) or joins a queue (_qm_page_adopt) is
 * counted. */
/* Frees the empty pages of the classes below class_end (all but each queue's first if
 * keep_current). */
static bool sweep_classes(qm_heap_t *heap, bool keep_current, size_t class_end) {
  bool freed = false;
  for (size_t cls = 0; cls < class_end; cls++) {
    qm_page_list_t *queue = &heap->class_queue[cls];
    qm_page_t *page = queue->first;
    if (page == NULL)
      continue;
    qm_page_t *first = page;
    if (keep_current)
      page = page->next;
    while (page != NULL) {
      qm_page_t *next = page->next;
      if (page->used == 0) {
        qm_list_remove(queue, page);
        page->flags = 0;
        _qm_span_free(heap, page);
        freed = true;
      }
      page = next;
    }
    if (queue->first != first)
      _qm_heap_update_class_page(heap, cls);
  }
  return freed;
}

bool _qm_heap_sweep_pages(qm_heap_t *heap, bool keep_current) {
  if (keep_current && heap->pages_emptied == heap->pages_emptied_swept)
    return false;
  bool freed = sweep_classes(heap, keep_current, QM_CLASS_COUNT);
  heap->pages_emptied_swept = heap->pages_emptied_quick_swept = heap->pages_emptied;
  return freed;
}

/* The quick sweep (purge.c, "Quick sweeps"): the classes up to QM_QUICK_SWEEP_MAX_SIZE only, run
 * from the decay schedule, and only when a page may have emptied behind a queue's front since the
 * last sweep of either kind. Not while the heap collects blocks that other threads freed: its
 * drains empty pages of busy classes all the time, and the classes soon fill them again (as in
 * _qm_page_free_emptied); the decay passes give back those that stay empty. */
bool _qm_heap_sweep_small_pages(qm_heap_t *heap) {
  if (heap->pages_emptied == heap->pages_emptied_quick_swept)
    return false;
  if (heap->inbox_drains != heap->quick_sweep_drains) {
    heap->quick_sweep_drains = heap->inbox_drains;
    return false;
  }
  bool freed = sweep_classes(heap, true, QM_QUICK_SWEEP_CLASSES);
  heap->pages_emptied_quick_swept = heap->pages_emptied;
  return freed;
}

void _qm_page_adopt(qm_heap_t *heap, qm_page_t *page) {
  qm_page_watch(page);
  if (page->used == 0)
    heap->pages_emptied++; /* queued empty: the sweeps must look */
  if (page->free != NULL || page->capacity < page->reserved || page->hole_map != 0) {
    page->flags &= (uint8_t)~QM_PAGE_IN_FULL;
    queue_append(heap, page);
  } else {
    page->flags |= QM_PAGE_IN_FULL;
  }
}
