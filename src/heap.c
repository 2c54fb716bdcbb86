/* heap.c - thread heaps: creating one on a thread's first allocation, draining the inbox of blocks
 * that other threads freed, trimming, and handing everything back when the thread exits.
 *
 * Heap structures are never unmapped: a heap handed back goes to a pool and is reused by the next
 * new thread. That keeps it safe for another thread to push a block into the inbox of a heap whose
 * thread has just exited: whoever takes the heap from the pool drains the inbox and sends each
 * block on to its segment's current owner.
 */
#include "block-inl.h"

#include <errno.h>

__thread qm_heap_t *_qm_tls_heap __attribute__((tls_model("initial-exec"))) = &_qm_empty_heap;
__thread bool _qm_tls_heap_given_back __attribute__((tls_model("initial-exec")));
__thread uint8_t _qm_tls_map_owner __attribute__((tls_model("initial-exec"))) = QM_MAP_NO_OWNER;

qm_page_t _qm_empty_page; /* free == NULL, so allocation from it always falls to the slow path */

/* All pointers lead to the empty page; thread_id 0 matches no thread. Initialised statically,
 * because malloc may be called before any constructor of ours has run. */
qm_heap_t _qm_empty_heap = {
    .direct = {[0 ... QM_DIRECT_COUNT - 1] = &_qm_empty_page},
    .class_page = {[0 ... QM_CLASS_COUNT - 1] = &_qm_empty_page},
    .map_owner = QM_MAP_NO_OWNER,
};

qm_counters_t _qm_counters;

/* ---------------------------------------------------------------------------------------------
 * The heap pool: heaps of exited threads and destroyed first-class heaps, ready for reuse; and the
 * list of heaps in use, for those who must see every heap (statistics, trimming all heaps). Both
 * under pool_lock.
 * ------------------------------------------------------------------------------------------- */

static qm_lock_t pool_lock;
static qm_heap_t *pool_free; /* heaps ready for reuse, linked through pool_next */
/* The untouched rest of the last mapping heaps were carved from: [carve_next, carve_end). Heaps
 * are carved one at a time as they are first needed, so that a program with one thread does not
 * fault in the pages of 15 heaps it never uses (a heap spans a page and more). */
static uint8_t *carve_next, *carve_end;
static qm_heap_t *heaps_live; /* heaps in use, linked through live_next/live_prev */
static unsigned heaps_carved; /* heap structs carved so far: the next one's map byte */

void _qm_heap_reset(qm_heap_t *heap) {
  for (size_t i = 0; i < QM_DIRECT_COUNT; i++)
    heap->direct[i] = &_qm_empty_page;
  for (size_t c = 0; c < QM_CLASS_COUNT; c++) {
    heap->class_page[c] = &_qm_empty_page;
    heap->class_queue[c].first = heap->class_queue[c].last = NULL;
  }
  for (size_t b = 0; b < QM_SPAN_BINS; b++)
    heap->span_bins[b].first = heap->span_bins[b].last = NULL;
  heap->thread_id = 0;
  heap->segments = NULL;
  heap->segment_count = 0;
  heap->empty_segment_count = 0;
  heap->adopting = NULL;
  heap->slow_path_count = 0;
  heap->pages_emptied = heap->pages_emptied_swept = heap->pages_emptied_quick_swept = 0;
  heap->inbox_drains = heap->purge_seen_drains = heap->quick_sweep_drains = 0;
  heap->inbox_purged = heap->inbox_purge_seen = NULL;
  /* inbox_pushed and inbox_collected run on across the struct's lives: blocks pushed while it sat
   * in the pool are collected by its next owner. */
  heap->drain_parcel = NULL;
  heap->drain_slot = heap->drain_end = 0;
  heap->decay_next_ns = heap->decay_pass_ns = 0;
  heap->eager_purge_left = qm_eager_purge_budget();
  heap->idle_uncarve_left = qm_idle_uncarve_budget();
  heap->grown_bytes = heap->growth_pass_ns = 0;
  heap->peak_purges_off_until_ns = heap->peak_purge_last_ns = heap->peak_refault_bytes = 0;
  heap->peak_refault_ns = 0;
  heap->peak_purge_count = heap->peak_refault_streak = 0;
  memset(heap->peak_purges, 0, sizeof heap->peak_purges);
  heap->span_lock_depth = 0;
  heap->user_magic = 0;
  heap->huge_blocks = NULL;
  heap->user_heaps = NULL;
  heap->user_next = heap->user_prev = NULL;
  memset(heap->remote, 0, sizeof heap->remote);
#if QM_STATS >= 2
  memset(&heap->stats, 0, sizeof heap->stats);
#endif
}

/* Takes a heap from the pool, or carves new ones from a fresh OS mapping. */
qm_heap_t *_qm_heap_pool_take(void) {
  _qm_lock(&pool_lock);
  qm_heap_t *heap = pool_free;
  if (heap != NULL) {
    pool_free = heap->pool_next;
    heap->pool_next = NULL;
  } else {
    if ((size_t)(carve_end - carve_next) < sizeof(qm_heap_t)) {
      size_t chunk = qm_align_up(sizeof(qm_heap_t) * 16, _qm_os_page_size());
      uint8_t *memory = _qm_os_map(chunk);
      if (memory == NULL) {
        _qm_unlock(&pool_lock);
        return NULL;
      }
      carve_next = memory;
      carve_end = memory + chunk;
    }
    heap = (qm_heap_t *)carve_next; /* fresh mapping: zero, pool_next already NULL */
    carve_next += sizeof(qm_heap_t);
    /* Structs are never unmapped, so a byte given here is never another heap's. */
    heap->map_owner = heaps_carved < QM_MAP_NO_OWNER - QM_MAP_OWNED_MIN
                          ? (uint8_t)(QM_MAP_OWNED_MIN + heaps_carved)
                          : (uint8_t)QM_MAP_NO_OWNER;
    heaps_carved++;
  }
  /* Reset before it goes on the live list, where other threads may look at it (statistics,
   * purging), and with its span lock free. */
  _qm_heap_reset(heap);
  heap->live_prev = NULL;
  heap->live_next = heaps_live;
  if (heaps_live)
    heaps_live->live_prev = heap;
  heaps_live = heap;
  _qm_unlock(&pool_lock);
  qm_counter_add(&_qm_counters.heaps_active, 1);
  qm_counter_add(&_qm_counters.heaps_created, 1);
  return heap;
}

static void unlist_locked(qm_heap_t *heap) {
  if (heap->live_prev == NULL && heaps_live != heap)
    return; /* not on the list (any more) */
  if (heap->live_prev)
    heap->live_prev->live_next = heap->live_next;
  else
    heaps_live = heap->live_next;
  if (heap->live_next)
    heap->live_next->live_prev = heap->live_prev;
  heap->live_next = heap->live_prev = NULL;
}

void _qm_heap_unlist(qm_heap_t *heap) {
  _qm_lock(&pool_lock);
  unlist_locked(heap);
  _qm_unlock(&pool_lock);
}

void _qm_heap_pool_give(qm_heap_t *heap) {
  _qm_lock(&pool_lock);
  unlist_locked(heap);
  heap->pool_next = pool_free;
  pool_free = heap;
  _qm_unlock(&pool_lock);
  qm_counter_sub(&_qm_counters.heaps_active, 1);
}

void _qm_heaps_visit(void (*visit)(qm_heap_t *heap, void *arg), void *arg) {
  _qm_lock(&pool_lock);
  for (qm_heap_t *heap = heaps_live; heap != NULL; heap = heap->live_next)
    visit(heap, arg);
  _qm_unlock(&pool_lock);
}

qm_heap_t *_qm_heap_get_or_init(void) {
  qm_heap_t *heap = _qm_tls_heap;
  if (qm_likely(heap != &_qm_empty_heap))
    return heap;
  qm_ensure_process_init();
  heap = _qm_heap_pool_take();
  if (heap == NULL)
    return NULL;
  heap->thread_id = _qm_thread_id();
  _qm_tls_heap = heap;
  _qm_tls_map_owner = heap->map_owner;
  _qm_thread_key_set(heap);
  /* Blocks may have arrived while the heap sat in the pool: send them where they belong. */
  _qm_heap_collect_inbox(heap);
  return heap;
}

void _qm_heap_segment_link(qm_heap_t *heap, qm_segment_t *segment) {
  segment->prev = NULL;
  segment->next = heap->segments;
  if (heap->segments)
    heap->segments->prev = segment;
  heap->segments = segment;
  heap->segment_count++;
}

void _qm_heap_segment_unlink(qm_heap_t *heap, qm_segment_t *segment) {
  if (segment->prev)
    segment->prev->next = segment->next;
  else
    heap->segments = segment->next;
  if (segment->next)
    segment->next->prev = segment->prev;
  segment->next = segment->prev = NULL;
  heap->segment_count--;
}

/* ---------------------------------------------------------------------------------------------
 * Draining the inbox in shares
 *
 * Every block in the inbox is a cache line the owner must take back from the core that freed it,
 * and a drain ran as long as the inbox was: in `larson` a malloc that drained took a hundred blocks
 * or more in one call out of a thousand, which set the p99.9 of malloc. So a small slow path
 * collects QM_DRAIN_SHARE blocks, and leaves the rest of a taken inbox in drain_parcel for the next
 * one; the inbox is taken again only when that is done, so parcels are collected in the order they
 * were taken. When the drains fall behind (more than QM_DRAIN_BACKLOG_MAX blocks pushed and not yet
 * collected: a thread that was off its core while others freed into it, a producer whose consumer
 * frees faster than it runs slow paths) the slow path collects everything, as one long drain: a
 * share that grew with the backlog instead made dozens of calls of a hundred blocks or more out of
 * one. Everything else that drains (large allocations, trim, thread exit, first-class heaps handed
 * back) collects all of it.
 *
 * Even a share is 16 such transfers, so malloc leaves the inbox alone while few blocks wait
 * (QM_DRAIN_MALLOC_MIN): a thread that frees other threads' blocks collects QM_DRAIN_ON_PARCEL of
 * its own each time it closes a parcel for one of them (free.c), a slow path of free it runs
 * anyway, and that keeps up wherever threads free each other's blocks. Malloc collects once more
 * wait (a thread that only allocates, or one whose frees fell behind), and before it takes a new
 * page (page.c), so that the blocks left waiting never make a heap take a new page.
 * ------------------------------------------------------------------------------------------- */

/* One block from the inbox back onto its page, or on to its segment's new owner. */
static inline void collect_block(qm_heap_t *heap, qm_block_t *block) {
  qm_segment_t *segment = qm_segment_of(block);
  if (atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap)
    qm_free_local(heap, segment, block);
  else
    _qm_free_collected(block); /* arrived after its segment changed hands */
}

/* Starts on a parcel: prefetches the parcel after it and the blocks its first QM_AHEAD entries
 * name, and returns the end of its entries as far as that shows (its capacity, or the NULL found
 * before it; 0 for 16-byte and large blocks, which carry none). */
static inline uint32_t parcel_begin(qm_block_t *parcel, bool cpu_prefetchw) {
  __builtin_prefetch(qm_link_get(parcel)); /* a prefetch of NULL is harmless */
  uint32_t end = (uint32_t)qm_parcel_capacity_of(parcel);
  for (uint32_t i = 0; i < end && i < QM_AHEAD; i++)
    if (!qm_parcel_prefetch(qm_parcel_slot(parcel, i), cpu_prefetchw))
      end = i;
  return end;
}

/* ---------------------------------------------------------------------------------------------
 * Collecting an inbox that was purged
 *
 * Another thread's decay pass may have purged the OS pages inside the blocks that wait in the inbox
 * of an owner that drains nothing (purge.c, "The inbox of an idle heap"). Collecting them one by
 * one writes each block's link into its page's free list, and so faults every purged page back in:
 * a main thread that waited in pthread_join while its workers freed what it had made grew by all
 * of that memory when it woke. So the first collect after such a visit takes the whole chain at
 * once and sorts its blocks by address. A page all of whose used blocks are on the chain is emptied
 * without a write into any of them: it goes back to the span layer, or, if its class allocates
 * from it, is uncarved. Only the blocks of the other pages are linked, as collect_block does.
 * ------------------------------------------------------------------------------------------- */

/* Empties a page whose used blocks are the `count` addresses at `listed` (ascending, distinct),
 * without writing into them; false, having changed nothing, if one of them is no carved block of
 * the page. One that is already free is a double free. */
static bool page_empty_unwritten(qm_heap_t *heap, qm_page_t *page, const uintptr_t *listed, size_t count,
                                 qm_purge_list_t *purges) {
  uintptr_t start = (uintptr_t)qm_page_start(page);
  size_t block_size = page->block_size;
  for (size_t i = 0; i < count; i++) {
    uintptr_t offset = listed[i] - start;
    if (offset % block_size != 0 || offset / block_size >= page->capacity)
      return false;
  }
  uint64_t free_bits[QM_PAGE_BLOCKS_MAX / 64];
  _qm_page_free_bits(page, free_bits);
  for (size_t i = 0; i < count; i++) {
    size_t index = (listed[i] - start) / block_size;
    if ((free_bits[index / 64] >> (index % 64)) & 1)
      _qm_fatal("double free: block %p (size %zu) is already free", (void *)listed[i], block_size);
  }
  for (size_t i = 0; i < count; i++)
    qm_stats_small_free(heap, page);
  page->used = 0;
  qm_page_list_t *queue = &heap->class_queue[page->size_class];
  if (!(page->flags & QM_PAGE_IN_FULL)) {
    if (queue->first == page) {
      _qm_page_uncarve_reset(page, purges);
      return true;
    }
    qm_list_remove(queue, page);
  }
  page->flags = 0;
  _qm_span_free(heap, page);
  return true;
}

/* Collects every block of a chain taken from the inbox (above); returns how many, or 0 when no
 * scratch memory could be mapped (the caller then collects the chain as usual). */
static size_t collect_purged(qm_heap_t *heap, qm_block_t *chain) {
  size_t count;
  _qm_inbox_chain_last(chain, &count); /* aborts on a loop, which the walks below would not end */
  for (qm_block_t *parcel = chain; parcel != NULL; parcel = qm_link_get(parcel))
    count += qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
  size_t os_page = _qm_os_page_size();
  size_t bytes = (count * sizeof(uintptr_t) + os_page - 1) & ~(os_page - 1);
  uintptr_t *blocks = _qm_os_map(bytes);
  if (blocks == NULL)
    return 0;
  /* Every address is read before any block is collected: collecting a parcel writes its link. */
  size_t n = 0;
  for (qm_block_t *parcel = chain; parcel != NULL; parcel = qm_link_get(parcel)) {
    size_t length = qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
    for (size_t i = 0; i < length; i++)
      blocks[n++] = (uintptr_t)qm_parcel_get(qm_parcel_slot(parcel, i));
    blocks[n++] = (uintptr_t)parcel;
  }
  _qm_sort_addresses(blocks, n);
  qm_purge_list_t purges;
  purges.count = 0;
  for (size_t i = 0, end; i < n; i = end) {
    void *p = (void *)blocks[i];
    qm_segment_t *segment = qm_segment_of(p);
    end = i + 1;
    if (atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap) {
      qm_page_t *page = qm_page_of(segment, p);
      if (page->kind == QM_SPAN_SMALL && !(page->flags & QM_PAGE_NOT_IN_USE)) {
        uintptr_t page_end = (uintptr_t)qm_page_start(page) + ((size_t)page->slice_count << QM_SLICE_SHIFT);
        for (; end < n && blocks[end] < page_end; end++)
          if (blocks[end] == blocks[end - 1])
            _qm_fatal("double free: block %p was freed twice by other threads", (void *)blocks[end]);
        if (end - i == page->used && page_empty_unwritten(heap, page, blocks + i, end - i, &purges))
          continue;
      }
    }
    for (size_t j = i; j < end; j++)
      collect_block(heap, (qm_block_t *)blocks[j]);
  }
  _qm_os_purge_flush(&purges);
  _qm_os_unmap(blocks, bytes);
  return n;
}

/* Collects up to budget blocks: the rest of the parcels taken before, then (once) the inbox.
 * Each listed block is a miss: the cursor runs QM_AHEAD entries in front of the one collected,
 * prefetching it for writing, so that the line comes in the state the store of its link needs; it
 * is also what finds the NULL that ends a parcel's entries (the entries are never read past it).
 * Two entries ahead are enough: the stores of consecutive blocks do not depend on each other, so
 * the core overlaps their misses itself, and a cursor 8 ahead lengthened the tails of malloc and
 * free (DESIGN.md, section 6, "The drain"). A parcel is collected after its entries, as the last
 * thing read from it is its link. The cursor lives in locals and is stored back once: with 16-byte
 * blocks every block is a parcel. */
static void collect(qm_heap_t *heap, size_t budget) {
  const bool cpu_prefetchw = _qm_cpu_prefetchw;
  const size_t budget_given = budget;
  qm_block_t *parcel = heap->drain_parcel;
  uint32_t slot = heap->drain_slot, end = heap->drain_end;
  bool inbox_taken = false;
  size_t collected_unbudgeted = 0; /* by collect_purged, which takes the whole chain */
  heap->collecting = true;
  /* The idle-inbox purge (purge.c) tells an owner that drains from one that does not by this. */
  __atomic_store_n(&heap->inbox_drains, heap->inbox_drains + 1, __ATOMIC_RELAXED);
  while (budget != 0) {
    if (parcel == NULL) {
      if (inbox_taken)
        break;
      inbox_taken = true;
      parcel = atomic_exchange_explicit(&heap->inbox, NULL, memory_order_acquire);
      if (parcel == NULL)
        break;
      /* The first take after a visit purged the inbox (the visit stores the mark before it puts
       * the chain back) goes the way that does not fault the purged pages in. A mark read before
       * its chain arrives only loses that: collect_purged is right for any chain. */
      qm_block_t *purged = __atomic_load_n(&heap->inbox_purged, __ATOMIC_RELAXED);
      if (qm_unlikely(purged != NULL && purged != heap->inbox_purge_seen)) {
        heap->inbox_purge_seen = purged;
        collected_unbudgeted = collect_purged(heap, parcel);
        if (collected_unbudgeted != 0) {
          parcel = NULL;
          break;
        }
      }
      slot = 0;
      end = parcel_begin(parcel, cpu_prefetchw);
    }
    for (; slot < end && budget != 0; slot++, budget--) {
      if (slot + QM_AHEAD < end &&
          !qm_parcel_prefetch(qm_parcel_slot(parcel, slot + QM_AHEAD), cpu_prefetchw))
        end = slot + QM_AHEAD;
      collect_block(heap, qm_parcel_get(qm_parcel_slot(parcel, slot)));
    }
    if (budget == 0)
      break;
    /* The parcel itself, and those that follow without entries (16-byte blocks) in a tight loop. */
    do {
      qm_block_t *next = qm_link_get(parcel);
      collect_block(heap, parcel);
      budget--;
      parcel = next;
      slot = end = 0;
      if (parcel == NULL)
        break;
      end = parcel_begin(parcel, cpu_prefetchw);
    } while (end == 0 && budget != 0);
  }
  heap->drain_parcel = parcel;
  heap->drain_slot = slot;
  heap->drain_end = end;
  heap->inbox_collected += budget_given - budget + collected_unbudgeted;
  heap->collecting = false;
}

void _qm_heap_collect_inbox(qm_heap_t *heap) { collect(heap, SIZE_MAX); }

/* A pusher adds its count right after its push (free.c): beside the inbox, on the line the push
 * has just taken. */
_Static_assert(offsetof(qm_heap_t, inbox) / 64 == offsetof(qm_heap_t, inbox_pushed) / 64,
               "inbox and inbox_pushed share a cache line");

/* Blocks pushed onto the inbox and not yet collected. A pusher adds its count after its push: the
 * difference may lag, or briefly be negative. */
static int64_t inbox_backlog(const qm_heap_t *heap) {
  uint64_t pushed = atomic_load_explicit(&heap->inbox_pushed, memory_order_relaxed);
  return (int64_t)(pushed - heap->inbox_collected);
}

void _qm_heap_collect_share(qm_heap_t *heap, int64_t more_than) {
  int64_t backlog = inbox_backlog(heap);
  if (backlog > QM_DRAIN_BACKLOG_MAX)
    collect(heap, SIZE_MAX);
  else if (backlog > more_than)
    collect(heap, QM_DRAIN_SHARE);
}

void _qm_heap_collect_on_free(qm_heap_t *heap) {
  /* Not from inside a collect (its cursor lives in locals until it ends), nor from the span layer,
   * a decay pass or an adoption, whose frees may come here: only a free the program called. */
  if (heap->collecting || heap->span_lock_depth != 0 || heap->adopting != NULL)
    return;
  collect(heap, inbox_backlog(heap) > QM_DRAIN_BACKLOG_MAX ? SIZE_MAX : QM_DRAIN_ON_PARCEL);
}

/* ---------------------------------------------------------------------------------------------
 * Thread exit
 * ------------------------------------------------------------------------------------------- */

void _qm_heap_abandon(qm_heap_t *heap) {
  qm_assert_expensive(_qm_heap_is_valid(heap));
  /* Blocks this thread freed for others go to their owners before the heap returns to the pool. */
  _qm_heap_flush_remote(heap);
  /* The thread's first-class heaps outlive it, ownerless (user_heap.c). */
  if (heap->user_heaps != NULL)
    _qm_user_heaps_orphan(heap);
  /* Off the live list first: once its segments are abandoned, its span bins describe memory it no
   * longer owns, and no other thread may purge through them. */
  _qm_heap_unlist(heap);
  qm_span_lock_enter(heap);
  _qm_heap_collect_inbox(heap);
  _qm_heap_sweep_pages(heap, false);
  /* Empty segments go first: releasing one unlinks its free span from this heap's bins, which
   * writes the links of its neighbours there, and those may be spans of a segment that, once
   * abandoned, another thread can adopt and link into its own bins at any moment. */
  for (qm_segment_t *segment = heap->segments, *next; segment != NULL; segment = next) {
    next = segment->next;
    if (segment->used_slices == 0)
      _qm_segment_release(heap, segment);
  }
  while (heap->segments != NULL) {
    qm_counter_add(&_qm_counters.segments_abandoned, 1);
    _qm_segment_abandon(heap, heap->segments);
  }
  qm_span_lock_leave(heap);
#if QM_STATS >= 2
  _qm_stats_heap_retire(heap);
#endif
  _qm_heap_reset(heap); /* unlisted above: nobody else looks at it */
  if (_qm_tls_heap == heap) {
    _qm_tls_heap = &_qm_empty_heap;
    _qm_tls_map_owner = QM_MAP_NO_OWNER;
    _qm_tls_heap_given_back = true;
    _qm_thread_key_set(NULL); /* the heap may go to another thread: this one must not abandon it again */
  }
  _qm_heap_pool_give(heap);
}

/* The thread-key destructor. The heap stays the thread's own while it is being abandoned, so that
 * blocks re-routed from its inbox into abandoned segments are adopted by it and handled too. */
void _qm_thread_exit(void *value) {
  qm_heap_t *heap = value;
  if (heap == NULL || heap != _qm_tls_heap)
    return;
  _qm_heap_abandon(heap);
}

/* ---------------------------------------------------------------------------------------------
 * Trim
 * ------------------------------------------------------------------------------------------- */

bool _qm_heap_trim(qm_heap_t *heap) {
  bool released = false;
  if (heap != &_qm_empty_heap) {
    qm_span_lock_enter(heap);
    /* Segments of exited threads: adopt them, so what is free in them can be released too. Not into
     * a first-class heap, whose destruction would take other threads' live blocks with it. */
    if (!qm_heap_is_user(heap))
      released |= _qm_segment_collect_abandoned(heap);
    _qm_heap_collect_inbox(heap);
    released |= _qm_heap_sweep_pages(heap, false);
    released |= _qm_heap_purge_all(heap);
    /* Empty segments go back to the OS. */
    qm_segment_t *segment = heap->segments;
    while (segment != NULL) {
      qm_segment_t *next = segment->next;
      if (segment->used_slices == 0) {
        _qm_segment_release(heap, segment);
        released = true;
      }
      segment = next;
    }
    qm_span_lock_leave(heap);
  }
  released |= _qm_segment_cache_trim();
  released |= _qm_huge_cache_trim();
  return released;
}

/* ---------------------------------------------------------------------------------------------
 * fork: other threads do not exist in the child; their heaps stay as they were (their memory is
 * not reused by the child, but nothing is corrupted), and every lock is released.
 * ------------------------------------------------------------------------------------------- */

void _qm_heap_fork_prepare(void) { _qm_lock(&pool_lock); }
void _qm_heap_fork_parent(void) { _qm_unlock(&pool_lock); }
void _qm_heap_fork_child(void) {
  _qm_unlock(&pool_lock);
  qm_heap_t *heap = _qm_tls_heap;
  if (heap != &_qm_empty_heap)
    heap->thread_id = _qm_thread_id();
}

/* ---------------------------------------------------------------------------------------------
 * qm_process_info
 * ------------------------------------------------------------------------------------------- */

#include "qmalloc.h"

void qm_process_info(qm_process_info_t *info) {
  if (info == NULL)
    return;
  info->segments_mapped = qm_counter_get(&_qm_counters.segments_mapped);
  info->segment_bytes = qm_counter_get(&_qm_counters.segment_bytes);
  info->huge_blocks = qm_counter_get(&_qm_counters.huge_blocks);
  info->huge_bytes = qm_counter_get(&_qm_counters.huge_bytes);
  info->heaps_active = qm_counter_get(&_qm_counters.heaps_active);
  info->segments_abandoned = _qm_segment_abandoned_count();
  info->os_map_calls = qm_counter_get(&_qm_counters.os_map_calls);
  info->os_unmap_calls = qm_counter_get(&_qm_counters.os_unmap_calls);
}
