/* segment.c - where segments come from and where they go: the segment map, the cache of empty
 * segments, and the list of abandoned segments that live threads adopt.
 *
 * A segment is born owned by one heap (mapped, or taken from the cache), may be abandoned when its
 * thread exits with blocks still live in it, is adopted by another heap later, and goes back to the
 * cache or the OS once nothing in it is used. The two lists here are the only process-wide state
 * of the segment layer; each has a lock, taken only on those transitions.
 */
#include "block-inl.h"

#include <errno.h>

_Atomic uint8_t _qm_segment_map[QM_MAP_ENTRIES];

/* Publishes a segment's owner (NULL: none), and its byte in the segment map: the owner's own when
 * that is a thread heap with one, else QM_MAP_NORMAL. The thread id and the byte are only compared
 * with the reader's own, and only the owning thread makes a segment its heap's or stops doing so,
 * so no other thread can see a match come or go. */
static void set_owner(qm_segment_t *segment, qm_heap_t *heap) {
  /* Written only when it changes, which is only while no block of the segment is live (a segment
   * goes to or comes from a first-class heap only empty): threads freeing into the segment read it
   * concurrently with an adoption. */
  uint32_t is_user = heap != NULL && heap->user_magic == QM_USER_HEAP_MAGIC;
  if (segment->owner_is_user_heap != is_user)
    segment->owner_is_user_heap = is_user;
  atomic_store_explicit(&segment->owner_thread, heap ? heap->thread_id : 0, memory_order_release);
  atomic_store_explicit(&segment->owner_heap, heap, memory_order_release);
  _qm_segment_map_set(segment, qm_heap_map_byte(heap));
}

void _qm_segment_map_set(const void *segment, unsigned state) {
  qm_assert(state != QM_MAP_NO_OWNER); /* the byte of threads with no heap: stored, it would match theirs */
  size_t i = ((uintptr_t)segment) >> QM_SEGMENT_SHIFT;
  if (i < QM_MAP_ENTRIES)
    atomic_store_explicit(&_qm_segment_map[i], (uint8_t)state, memory_order_release);
}

/* ---------------------------------------------------------------------------------------------
 * Empty-segment cache: a few empty segments ready for reuse, so that threads that come and go do
 * not map, fault in and unmap 4 MiB each time. A segment enters the cache as it is (its pages still
 * resident, so the next thread finds them warm), is purged once it has sat unused for the purge
 * delay, and unmapped after the (longer) segment decay; the checks run whenever the cache is used
 * and on every decay pass (purge.c).
 * Invariant: cached segments have owner NULL, used_slices == 0, map state FREED.
 * ------------------------------------------------------------------------------------------- */

#define QM_SEGMENT_CACHE_MAX 8

typedef struct cache_entry_s {
  qm_segment_t *segment;
  uint64_t cached_at_ns;
  qm_memory_t memory; /* of its usable slices */
} cache_entry_t;

static qm_lock_t cache_lock;
static cache_entry_t cache[QM_SEGMENT_CACHE_MAX];
static _Atomic size_t cache_count; /* written under cache_lock */

static qm_memory_t segment_purge(qm_segment_t *segment) {
  uint8_t *usable = (uint8_t *)segment + QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE;
  return _qm_os_purge(usable, QM_SEGMENT_USABLE_SLICES * QM_SLICE_SIZE);
}

static void segment_unmap(qm_segment_t *segment) {
  qm_counter_sub(&_qm_counters.segments_mapped, 1);
  qm_counter_sub(&_qm_counters.segment_bytes, QM_SEGMENT_SIZE);
  _qm_os_unmap(segment, QM_SEGMENT_SIZE);
}

/* Purges entries older than the purge delay and unmaps those older than the segment decay; called
 * with cache_lock held. The system calls are made under the lock, but only on this rare path. */
static void cache_decay_locked(uint64_t now) {
  size_t n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    cache_entry_t entry = cache[i];
    uint64_t age = now - entry.cached_at_ns;
    if (age >= qm_segment_decay_ns()) {
      segment_unmap(entry.segment);
      continue;
    }
    if (entry.memory == QM_MEMORY_DIRTY && age >= qm_purge_delay_ns())
      entry.memory = segment_purge(entry.segment);
    cache[kept++] = entry;
  }
  atomic_store_explicit(&cache_count, kept, memory_order_relaxed);
}

void _qm_segment_cache_decay(uint64_t now) {
  if (atomic_load_explicit(&cache_count, memory_order_relaxed) == 0)
    return;
  _qm_lock(&cache_lock);
  cache_decay_locked(now);
  _qm_unlock(&cache_lock);
}

static bool cache_push(qm_segment_t *segment, qm_memory_t memory) {
  bool pushed = false;
  uint64_t now = _qm_os_now_coarse_ns();
  _qm_lock(&cache_lock);
  cache_decay_locked(now);
  size_t n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  if (n < QM_SEGMENT_CACHE_MAX) {
    cache[n] = (cache_entry_t){segment, now, memory};
    atomic_store_explicit(&cache_count, n + 1, memory_order_relaxed);
    pushed = true;
  }
  _qm_unlock(&cache_lock);
  return pushed;
}

/* The most recently cached segment: the one most likely still resident. *memory tells what its
 * usable slices hold. */
static qm_segment_t *cache_pop(qm_memory_t *memory) {
  qm_segment_t *segment = NULL;
  if (atomic_load_explicit(&cache_count, memory_order_relaxed) == 0)
    return NULL;
  uint64_t now = _qm_os_now_coarse_ns();
  _qm_lock(&cache_lock);
  size_t n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  if (n > 0) {
    segment = cache[n - 1].segment;
    *memory = cache[n - 1].memory;
    atomic_store_explicit(&cache_count, n - 1, memory_order_relaxed);
  }
  cache_decay_locked(now);
  _qm_unlock(&cache_lock);
  return segment;
}

bool _qm_segment_cache_trim(void) {
  cache_entry_t victims[QM_SEGMENT_CACHE_MAX];
  size_t n;
  _qm_lock(&cache_lock);
  n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  memcpy(victims, cache, n * sizeof(victims[0]));
  atomic_store_explicit(&cache_count, 0, memory_order_relaxed);
  _qm_unlock(&cache_lock);
  for (size_t i = 0; i < n; i++)
    segment_unmap(victims[i].segment);
  return n > 0;
}

/* ---------------------------------------------------------------------------------------------
 * Abandoned segments: owner NULL, linked through next/prev on one of three lists.
 *   dirty  (abandoned == 1): newest first; their free spans may still be resident. Adoption takes
 *          from the front, where memory is most likely still warm.
 *   clean  (abandoned == 2): their free spans have been purged (but for locked pages, which the
 *          kernel does not let go: those spans stay dirty). A segment moves here from the
 *          back of the dirty list once it has waited the purge delay, checked whenever the lists
 *          change and once per decay interval by some live heap's pass; so the memory of exited
 *          threads is given back unless a new thread soon reuses it, even in a program whose
 *          threads stop starting and exiting.
 *   none live (abandoned == 3): every block in them was freed since (or before) they were
 *          abandoned; newest first, stamped with the time of the last free. A thread that needs
 *          space and found none in the front segments takes one; once one has waited the purge
 *          delay, the decay pass of a live thread heap adopts and releases it (so a new thread
 *          that starts soon finds its memory warm, and one that never comes does not keep it).
 *
 * Which one to adopt. A thread that needs space takes the front segment, whose pages most likely
 * have free blocks in memory still warm, up to QM_ADOPT_TRIES times while they turn out full. Taking
 * only the front lets a few full segments go round and round: a thread adopts them, finds no room,
 * maps a new segment, and at its exit puts them all back at the front, where the next thread finds
 * them again, while segments with room, or with nothing live in them, wait further back; a
 * thread-churn test saw 355 segments mapped where 10 do. So the last try looks at the first
 * QM_ADOPT_SCAN segments for one with room for the span wanted, then takes one with nothing live,
 * and only then the front one. The none-live list needs each segment's count of live blocks
 * (abandoned_live: set when it is abandoned, one less with each parked free); a segment moves
 * there when it reaches 0.
 * Invariant: abandoned_live == the blocks of the segment handed out and not freed (its pages'
 * used counts, one per large block) less the blocks on abandoned_free; abandoned == 3 exactly
 * when it is 0. Checked by validate.c.
 * ------------------------------------------------------------------------------------------- */

/* How many abandoned segments a thread that needs space adopts before it maps one (the last time
 * looking past the front), and how many it looks at then (each a cache miss, under the lock). */
#define QM_ADOPT_TRIES 4
#define QM_ADOPT_SCAN 8

typedef struct segment_list_s {
  qm_segment_t *first;
  qm_segment_t *last;
} segment_list_t;

static qm_lock_t abandoned_lock;
static segment_list_t abandoned_dirty, abandoned_clean, abandoned_none_live;
static _Atomic size_t abandoned_count;

size_t _qm_segment_abandoned_count(void) {
  return atomic_load_explicit(&abandoned_count, memory_order_relaxed);
}

static void list_push_front(segment_list_t *list, qm_segment_t *segment) {
  segment->prev = NULL;
  segment->next = list->first;
  if (list->first)
    list->first->prev = segment;
  else
    list->last = segment;
  list->first = segment;
}

static void list_unlink(segment_list_t *list, qm_segment_t *segment) {
  if (segment->prev)
    segment->prev->next = segment->next;
  else
    list->first = segment->next;
  if (segment->next)
    segment->next->prev = segment->prev;
  else
    list->last = segment->prev;
  segment->next = segment->prev = NULL;
}

/* Blocks handed out and not freed back in a segment its owner is about to abandon. */
static uint32_t live_blocks(const qm_segment_t *segment) {
  uint32_t live = 0;
  size_t i = QM_SEGMENT_FIRST_SLICE;
  while (i < QM_SLICES_PER_SEGMENT) {
    const qm_page_t *span = &segment->slices[i];
    if (span->kind == QM_SPAN_SMALL)
      live += span->used;
    else if (span->kind == QM_SPAN_LARGE)
      live++;
    i += span->slice_count;
  }
  return live;
}

static segment_list_t *abandoned_list(uint32_t state) {
  return state == 1 ? &abandoned_dirty : state == 2 ? &abandoned_clean : &abandoned_none_live;
}

static void abandoned_unlink(qm_segment_t *segment) {
  list_unlink(abandoned_list(segment->abandoned), segment);
  segment->abandoned = 0;
  atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
}

/* Gives back the pages of every free span of a segment nobody owns (lock held: no heap can adopt
 * it meanwhile, and frees into it only park blocks). */
static void purge_free_spans(qm_segment_t *segment) {
  size_t i = QM_SEGMENT_FIRST_SLICE;
  while (i < QM_SLICES_PER_SEGMENT) {
    qm_page_t *span = &segment->slices[i];
    if (span->kind == QM_SPAN_FREE && span->is_zero == QM_MEMORY_DIRTY)
      _qm_span_purge(span);
    i += span->slice_count;
  }
}

static void abandoned_decay_locked(uint64_t now) {
  qm_segment_t *oldest;
  while ((oldest = abandoned_dirty.last) != NULL && now - oldest->abandoned_at_ns >= qm_purge_delay_ns()) {
    list_unlink(&abandoned_dirty, oldest);
    purge_free_spans(oldest);
    oldest->abandoned = 2;
    list_push_front(&abandoned_clean, oldest);
  }
}

void _qm_segment_abandoned_decay(uint64_t now) {
  if (_qm_segment_abandoned_count() == 0)
    return;
  /* A pass never waits here: a thread holding the lock is adopting or abandoning, and decays the
   * list itself. */
  if (!_qm_trylock(&abandoned_lock))
    return;
  abandoned_decay_locked(now);
  _qm_unlock(&abandoned_lock);
}

void _qm_segment_abandon(qm_heap_t *heap, qm_segment_t *segment) {
  qm_assert_internal(atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap);
  _qm_heap_segment_unlink(heap, segment);
  uint32_t live = live_blocks(segment);
  uint64_t now = _qm_os_now_coarse_ns();
  _qm_lock(&abandoned_lock);
  segment->abandoned = live == 0 ? 3 : 1;
  segment->abandoned_live = live;
  segment->abandoned_at_ns = now;
  list_push_front(abandoned_list(segment->abandoned), segment);
  atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
  /* From here on, frees into the segment park their blocks (free.c). */
  set_owner(segment, NULL);
  abandoned_decay_locked(now);
  _qm_unlock(&abandoned_lock);
}

/* Puts every span of a newly owned segment into heap's structures. */
static void segment_integrate(qm_heap_t *heap, qm_segment_t *segment) {
  _qm_heap_segment_link(heap, segment);
  size_t i = QM_SEGMENT_FIRST_SLICE;
  while (i < QM_SLICES_PER_SEGMENT) {
    qm_page_t *span = &segment->slices[i];
    qm_assert_internal(qm_slice_head(span) == span && span->slice_count > 0);
    if (span->kind == QM_SPAN_FREE)
      _qm_span_insert_free(heap, span);
    else if (span->kind == QM_SPAN_SMALL)
      _qm_page_adopt(heap, span);
    i += span->slice_count;
  }
  if (segment->used_slices == 0)
    heap->empty_segment_count++;
}

/* Takes an abandoned segment off the list (lock held); returns the blocks freed into it meanwhile. */
static qm_block_t *adopt_locked(qm_heap_t *heap, qm_segment_t *segment) {
  abandoned_unlink(segment);
  qm_block_t *freed = segment->abandoned_free;
  segment->abandoned_free = NULL;
  set_owner(segment, heap);
  return freed;
}

/* Makes an adopted segment part of heap, then frees the blocks that arrived while it had no owner.
 * The segment stays in heap even if that empties it (the caller decides what to do with it). */
static void adopt_finish(qm_heap_t *heap, qm_segment_t *segment, qm_block_t *freed) {
  segment_integrate(heap, segment);
  /* One adoption at a time: a free here may run a decay pass, which then adopts nothing
   * (_qm_segment_collect_free) and releases no pinned segment (purge.c, span.c). */
  qm_assert_internal(heap->adopting == NULL);
  heap->adopting = segment;
  while (freed != NULL) {
    qm_block_t *next = qm_link_get(freed);
    _qm_free_local(heap, segment, freed);
    freed = next;
  }
  heap->adopting = NULL;
}

int _qm_segment_free_abandoned(qm_segment_t *segment, qm_block_t *block) {
  _qm_lock(&abandoned_lock);
  bool owned = atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) != NULL;
  bool abandoned = segment->abandoned && !owned;
  if (abandoned) {
    qm_link_set(block, segment->abandoned_free);
    segment->abandoned_free = block;
    /* A double free can take the count to zero too early; the adopter's free reports it. */
    if (segment->abandoned_live > 0 && --segment->abandoned_live == 0) {
      list_unlink(abandoned_list(segment->abandoned), segment);
      segment->abandoned = 3;
      segment->abandoned_at_ns = _qm_os_now_coarse_ns();
      list_push_front(&abandoned_none_live, segment);
    }
  }
  _qm_unlock(&abandoned_lock);
  return abandoned ? 1 : owned ? 0 : -1;
}

/* The segment to adopt for a span of `need` slices (lock held): the front one (dirty before
 * clean), unless look_further; then the first of the first QM_ADOPT_SCAN with room, else one with
 * nothing live, else the front one. */
static qm_segment_t *adoption_choice(size_t need, bool look_further) {
  if (look_further) {
    size_t looked = 0;
    for (uint32_t state = 1; state <= 2; state++)
      for (qm_segment_t *segment = abandoned_list(state)->first; segment != NULL && looked < QM_ADOPT_SCAN;
           segment = segment->next, looked++)
        if (QM_SEGMENT_USABLE_SLICES - segment->used_slices >= need)
          return segment;
    if (abandoned_none_live.first != NULL)
      return abandoned_none_live.first;
  }
  for (uint32_t state = 1; state <= 3; state++)
    if (abandoned_list(state)->first != NULL)
      return abandoned_list(state)->first;
  return NULL;
}

static qm_segment_t *adopt_any(qm_heap_t *heap, size_t need, bool look_further) {
  if (_qm_segment_abandoned_count() == 0)
    return NULL;
  uint64_t now = _qm_os_now_coarse_ns();
  _qm_lock(&abandoned_lock);
  abandoned_decay_locked(now);
  qm_segment_t *segment = adoption_choice(need, look_further);
  qm_block_t *freed = segment ? adopt_locked(heap, segment) : NULL;
  _qm_unlock(&abandoned_lock);
  if (segment)
    adopt_finish(heap, segment, freed);
  return segment;
}

/* Returns true when some adopted segment turned out empty (the caller, a trim, releases it). */
bool _qm_segment_collect_abandoned(qm_heap_t *heap) {
  bool emptied = false;
  size_t n = _qm_segment_abandoned_count();
  qm_segment_t *segment;
  while (n-- > 0 && (segment = adopt_any(heap, 0, false)) != NULL)
    emptied |= segment->used_slices == 0;
  return emptied;
}

bool _qm_segment_collect_free(qm_heap_t *heap) {
  qm_assert_internal(!qm_heap_is_user(heap));
  bool released = false;
  /* A decay pass run by a free inside an adoption: that adoption's segment must stay pinned. */
  if (heap->adopting != NULL)
    return false;
  while (_qm_segment_abandoned_count() > 0) {
    _qm_lock(&abandoned_lock);
    qm_segment_t *segment = abandoned_none_live.last;
    if (segment == NULL || _qm_os_now_coarse_ns() - segment->abandoned_at_ns < qm_purge_delay_ns()) {
      _qm_unlock(&abandoned_lock);
      break;
    }
    qm_block_t *freed = adopt_locked(heap, segment);
    _qm_unlock(&abandoned_lock);
    adopt_finish(heap, segment, freed);
    /* Its pages went back to the span layer as their blocks were freed. */
    if (segment->used_slices == 0) {
      _qm_segment_release(heap, segment);
      released = true;
    }
  }
  return released;
}

/* ---------------------------------------------------------------------------------------------
 * Acquire and release
 * ------------------------------------------------------------------------------------------- */

static void segment_init(qm_heap_t *heap, qm_segment_t *segment, bool fresh, qm_memory_t memory) {
  /* A fresh mapping is zero: only the fields that must be non-zero are written, so the
   * descriptor array is touched only where spans begin and end. */
  if (!fresh)
    memset(segment, 0, offsetof(qm_segment_t, slices));
  segment->kind = QM_SEGMENT_NORMAL;
  segment->magic = QM_SEGMENT_MAGIC;
  segment->mapping_base = segment;
  segment->mapping_size = QM_SEGMENT_SIZE;
  segment->used_slices = 0;
  segment->abandoned = 0;
  memset(segment->slice_class, QM_SLICE_NO_BLOCK, sizeof segment->slice_class);
  set_owner(segment, heap); /* and marks the segment in the map */
  _qm_heap_segment_link(heap, segment);
  heap->empty_segment_count++;
  /* The metadata slices are no span: a pointer into them must never pass for a block. */
  for (size_t i = 0; i < QM_SEGMENT_FIRST_SLICE; i++) {
    segment->slices[i].kind = QM_SPAN_META;
    segment->slices[i].flags = QM_PAGE_NOT_IN_USE;
  }
  qm_slice_head_reset(&segment->slices[0], QM_SEGMENT_FIRST_SLICE);
  _qm_span_make_free(heap, &segment->slices[QM_SEGMENT_FIRST_SLICE], QM_SEGMENT_USABLE_SLICES, memory);
  qm_track_reserve((uint8_t *)segment + QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE,
                   QM_SEGMENT_USABLE_SLICES * QM_SLICE_SIZE);
#if QM_SECURE
  if (_qm_options.secure)
    _qm_secure_guard_segment(segment);
#endif
}

qm_segment_t *_qm_segment_acquire(qm_heap_t *heap, size_t need) {
  /* Adopting first keeps the memory of exited threads in use. Adopted segments may be full, so
   * take a few before giving up on them. A first-class heap adopts nothing: destroying it releases
   * its segments whole, and an adopted one would hold other code's live blocks. */
  for (int tries = qm_heap_is_user(heap) ? QM_ADOPT_TRIES : 0; tries < QM_ADOPT_TRIES; tries++) {
    qm_segment_t *segment = adopt_any(heap, need, tries == QM_ADOPT_TRIES - 1);
    if (segment == NULL)
      break;
    if (segment->used_slices < QM_SEGMENT_USABLE_SLICES)
      return segment;
  }
  qm_memory_t memory = QM_MEMORY_DIRTY;
  qm_segment_t *segment = cache_pop(&memory);
  bool fresh = false;
  if (segment == NULL) {
    segment = _qm_os_map_segment();
    /* Out of address space or memory: give back what this heap holds empty, then try once more. */
    if (segment == NULL && _qm_heap_trim(heap))
      segment = _qm_os_map_segment();
    if (segment == NULL)
      return NULL;
    fresh = true;
    memory = QM_MEMORY_ZERO;
    qm_counter_add(&_qm_counters.segments_mapped, 1);
    qm_counter_add(&_qm_counters.segment_bytes, QM_SEGMENT_SIZE);
    size_t now = qm_counter_get(&_qm_counters.segments_mapped);
    size_t peak = qm_counter_get(&_qm_counters.segments_peak);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&_qm_counters.segments_peak, &peak, now,
                                                                memory_order_relaxed, memory_order_relaxed)) {
    }
    qm_stats_note_mapped();
  }
  segment_init(heap, segment, fresh, memory);
  return segment;
}

void _qm_segment_release(qm_heap_t *heap, qm_segment_t *segment) {
  qm_assert(segment->used_slices == 0);
  qm_assert_internal(segment != heap->adopting);
  qm_page_t *span = &segment->slices[QM_SEGMENT_FIRST_SLICE];
  qm_assert_internal(span->kind == QM_SPAN_FREE && span->slice_count == QM_SEGMENT_USABLE_SLICES);
  _qm_span_remove_free(heap, span);
  _qm_heap_segment_unlink(heap, segment);
  heap->empty_segment_count--;
  set_owner(segment, NULL);
  _qm_segment_map_set(segment, QM_MAP_FREED);
  if (cache_push(segment, (qm_memory_t)span->is_zero))
    return;
  segment_unmap(segment);
}

void _qm_segment_discard(qm_heap_t *heap, qm_segment_t *segment) {
  _qm_heap_segment_unlink(heap, segment);
  set_owner(segment, NULL);
  _qm_segment_map_set(segment, QM_MAP_FREED);
  /* Every usable slice stops belonging to a span, as when spans are freed: if the segment is
   * reused from the cache, a late free of a block of the discarded heap that lands where no new
   * span begins meets NOT_IN_USE and is reported, instead of following a stale descriptor. */
  for (size_t i = QM_SEGMENT_FIRST_SLICE; i < QM_SLICES_PER_SEGMENT; i++) {
    segment->slices[i].kind = QM_SPAN_META;
    segment->slices[i].flags = QM_PAGE_NOT_IN_USE;
    segment->slices[i].slice_count = 0;
  }
  qm_slice_head_reset(&segment->slices[QM_SEGMENT_FIRST_SLICE], QM_SEGMENT_USABLE_SLICES);
  memset(segment->slice_class, QM_SLICE_NO_BLOCK, sizeof segment->slice_class);
  segment->used_slices = 0;
  if (cache_push(segment, false))
    return;
  qm_counter_sub(&_qm_counters.segments_mapped, 1);
  qm_counter_sub(&_qm_counters.segment_bytes, QM_SEGMENT_SIZE);
  _qm_os_unmap(segment, QM_SEGMENT_SIZE);
}

/* ---------------------------------------------------------------------------------------------
 * fork: the child inherits the lists in a consistent state.
 * ------------------------------------------------------------------------------------------- */

void _qm_segment_fork_prepare(void) {
  _qm_lock(&abandoned_lock);
  _qm_lock(&cache_lock);
}
void _qm_segment_fork_parent(void) {
  _qm_unlock(&cache_lock);
  _qm_unlock(&abandoned_lock);
}
void _qm_segment_fork_child(void) {
  _qm_unlock(&cache_lock);
  _qm_unlock(&abandoned_lock);
}

/* ---------------------------------------------------------------------------------------------
 * Validation of the abandoned lists (qm_heap_validate).
 * ------------------------------------------------------------------------------------------- */

bool _qm_segment_abandoned_are_valid(void) {
  size_t errors = 0, listed = 0;
#define ABANDONED_CHECK(cond, ...)                                                                           \
  do {                                                                                                       \
    if (!(cond) && errors++ < 20)                                                                            \
      _qm_message("heap validation: abandoned segments: " __VA_ARGS__);                                      \
  } while (0)
  _qm_lock(&abandoned_lock);
  for (uint32_t state = 1; state <= 3; state++) {
    const segment_list_t *list = abandoned_list(state);
    const qm_segment_t *prev = NULL;
    for (const qm_segment_t *segment = list->first; segment != NULL && errors == 0; segment = segment->next) {
      listed++;
      ABANDONED_CHECK(segment->prev == prev && segment->abandoned == state &&
                          segment->magic == QM_SEGMENT_MAGIC &&
                          atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == NULL,
                      "segment %p is linked or marked wrongly", (const void *)segment);
      uint32_t parked = 0;
      for (qm_block_t *block = segment->abandoned_free; block != NULL; block = qm_link_get(block))
        parked++;
      uint32_t live = live_blocks(segment);
      ABANDONED_CHECK(segment->abandoned_live + parked == live &&
                          (segment->abandoned_live == 0) == (state == 3),
                      "segment %p counts %u live blocks, but holds %u with %u parked frees (list %u)",
                      (const void *)segment, segment->abandoned_live, live, parked, state);
      prev = segment;
    }
    ABANDONED_CHECK(errors || list->last == prev, "the last pointer of list %u is wrong", state);
  }
  ABANDONED_CHECK(errors || listed == _qm_segment_abandoned_count(), "%zu listed, the count says %zu", listed,
                  _qm_segment_abandoned_count());
  _qm_unlock(&abandoned_lock);
#undef ABANDONED_CHECK
  return errors == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Statistics: the abandoned segments, read under their lock (nobody adopts or unmaps them
 * meanwhile).
 * ------------------------------------------------------------------------------------------- */

void _qm_segment_visit_abandoned(void (*visit)(qm_segment_t *segment, void *arg), void *arg) {
  _qm_lock(&abandoned_lock);
  for (qm_segment_t *segment = abandoned_dirty.first; segment != NULL; segment = segment->next)
    visit(segment, arg);
  for (qm_segment_t *segment = abandoned_clean.first; segment != NULL; segment = segment->next)
    visit(segment, arg);
  for (qm_segment_t *segment = abandoned_none_live.first; segment != NULL; segment = segment->next)
    visit(segment, arg);
  _qm_unlock(&abandoned_lock);
}
