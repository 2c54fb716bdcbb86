/* segment.c - where segments come from and where they go: the segment map, the cache of empty
 * segments, and the list of abandoned segments that live threads adopt.
 *
 * A segment is born owned by one heap (mapped, or taken from the cache), may be abandoned when its
 * thread exits with blocks still live in it, is adopted by another heap later, and goes back to the
 * cache or the OS once nothing in it is used. The two lists here are the only process-wide state
 * of the segment layer; each has a lock, taken only on those transitions.
 */
#include "internal.h"

#include <errno.h>

_Atomic uint8_t _qm_segment_map[QM_MAP_ENTRIES];

void _qm_segment_map_set(const void *segment, unsigned state) {
  size_t i = ((uintptr_t)segment) >> QM_SEGMENT_SHIFT;
  if (i < QM_MAP_ENTRIES) atomic_store_explicit(&_qm_segment_map[i], (uint8_t)state, memory_order_release);
}

/* ---------------------------------------------------------------------------------------------
 * Empty-segment cache: a few segments whose memory has been purged, ready for reuse, so that
 * threads that come and go do not map and unmap 4 MiB each time.
 * Invariant: cached segments have owner NULL, used_slices == 0, map state FREED.
 * ------------------------------------------------------------------------------------------- */

#define QM_SEGMENT_CACHE_MAX 8
static qm_lock_t cache_lock;
static qm_segment_t *cache[QM_SEGMENT_CACHE_MAX];
static _Atomic size_t cache_count; /* written under cache_lock */

static bool cache_push(qm_segment_t *segment) {
  bool pushed = false;
  _qm_lock(&cache_lock);
  size_t n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  if (n < QM_SEGMENT_CACHE_MAX) {
    cache[n] = segment;
    atomic_store_explicit(&cache_count, n + 1, memory_order_relaxed);
    pushed = true;
  }
  _qm_unlock(&cache_lock);
  return pushed;
}

static qm_segment_t *cache_pop(void) {
  qm_segment_t *segment = NULL;
  if (atomic_load_explicit(&cache_count, memory_order_relaxed) == 0) return NULL;
  _qm_lock(&cache_lock);
  size_t n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  if (n > 0) {
    segment = cache[n - 1];
    atomic_store_explicit(&cache_count, n - 1, memory_order_relaxed);
  }
  _qm_unlock(&cache_lock);
  return segment;
}

bool _qm_segment_cache_trim(void) {
  qm_segment_t *victims[QM_SEGMENT_CACHE_MAX];
  size_t n;
  _qm_lock(&cache_lock);
  n = atomic_load_explicit(&cache_count, memory_order_relaxed);
  memcpy(victims, cache, n * sizeof(victims[0]));
  atomic_store_explicit(&cache_count, 0, memory_order_relaxed);
  _qm_unlock(&cache_lock);
  for (size_t i = 0; i < n; i++) {
    qm_counter_sub(&_qm_counters.segments_mapped, 1);
    qm_counter_sub(&_qm_counters.segment_bytes, QM_SEGMENT_SIZE);
    _qm_os_unmap(victims[i], QM_SEGMENT_SIZE);
  }
  return n > 0;
}

/* ---------------------------------------------------------------------------------------------
 * Abandoned segments: owner NULL, abandoned == 1, linked through next/prev.
 * ------------------------------------------------------------------------------------------- */

static qm_lock_t abandoned_lock;
static qm_segment_t *abandoned_first;
static _Atomic size_t abandoned_count;

size_t _qm_segment_abandoned_count(void) { return atomic_load_explicit(&abandoned_count, memory_order_relaxed); }

static void abandoned_unlink(qm_segment_t *segment) {
  if (segment->prev) segment->prev->next = segment->next;
  else abandoned_first = segment->next;
  if (segment->next) segment->next->prev = segment->prev;
  segment->next = segment->prev = NULL;
  segment->abandoned = 0;
  atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
}

void _qm_segment_abandon(qm_heap_t *heap, qm_segment_t *segment) {
  qm_assert_internal(atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap);
  _qm_heap_segment_unlink(heap, segment);
  _qm_lock(&abandoned_lock);
  segment->abandoned = 1;
  segment->prev = NULL;
  segment->next = abandoned_first;
  if (abandoned_first) abandoned_first->prev = segment;
  abandoned_first = segment;
  atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
  /* From here on, frees into the segment take the adoption route in free.c. */
  atomic_store_explicit(&segment->owner_heap, NULL, memory_order_release);
  _qm_unlock(&abandoned_lock);
}

/* Puts every span of a newly owned segment into heap's structures. */
static void segment_integrate(qm_heap_t *heap, qm_segment_t *segment) {
  _qm_heap_segment_link(heap, segment);
  size_t i = QM_SEGMENT_FIRST_SLICE;
  while (i < QM_SLICES_PER_SEGMENT) {
    qm_page_t *span = &segment->slices[i];
    qm_assert_internal(span->slice_offset == 0 && span->slice_count > 0);
    if (span->kind == QM_SPAN_FREE) _qm_span_insert_free(heap, span);
    else if (span->kind == QM_SPAN_SMALL) _qm_page_adopt(heap, span);
    i += span->slice_count;
  }
  if (segment->used_slices == 0) heap->empty_segment_count++;
}

static void adopt_locked(qm_heap_t *heap, qm_segment_t *segment) {
  abandoned_unlink(segment);
  atomic_store_explicit(&segment->owner_heap, heap, memory_order_release);
}

int _qm_segment_try_adopt(qm_heap_t *heap, qm_segment_t *segment) {
  _qm_lock(&abandoned_lock);
  bool owned = atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) != NULL;
  bool adopt = segment->abandoned && !owned;
  if (adopt) adopt_locked(heap, segment);
  _qm_unlock(&abandoned_lock);
  if (adopt) segment_integrate(heap, segment);
  return adopt ? 1 : owned ? 0 : -1;
}

static qm_segment_t *adopt_any(qm_heap_t *heap) {
  if (_qm_segment_abandoned_count() == 0) return NULL;
  _qm_lock(&abandoned_lock);
  qm_segment_t *segment = abandoned_first;
  if (segment) adopt_locked(heap, segment);
  _qm_unlock(&abandoned_lock);
  if (segment) segment_integrate(heap, segment);
  return segment;
}

/* ---------------------------------------------------------------------------------------------
 * Acquire and release
 * ------------------------------------------------------------------------------------------- */

static void segment_init(qm_heap_t *heap, qm_segment_t *segment, bool fresh) {
  /* A fresh mapping is zero: only the fields that must be non-zero are written, so the
   * descriptor array is touched only where spans begin and end. */
  if (!fresh) memset(segment, 0, offsetof(qm_segment_t, slices));
  segment->kind = QM_SEGMENT_NORMAL;
  segment->magic = QM_SEGMENT_MAGIC;
  segment->mapping_base = segment;
  segment->mapping_size = QM_SEGMENT_SIZE;
  segment->used_slices = 0;
  segment->abandoned = 0;
  atomic_store_explicit(&segment->owner_heap, heap, memory_order_release);
  _qm_segment_map_set(segment, QM_MAP_NORMAL);
  _qm_heap_segment_link(heap, segment);
  heap->empty_segment_count++;
  _qm_span_make_free(heap, &segment->slices[QM_SEGMENT_FIRST_SLICE], QM_SEGMENT_USABLE_SLICES, true);
}

qm_segment_t *_qm_segment_acquire(qm_heap_t *heap) {
  /* Adopting first keeps the memory of exited threads in use. Adopted segments may be full, so
   * take a few before giving up on them. */
  for (int tries = 0; tries < 4; tries++) {
    qm_segment_t *segment = adopt_any(heap);
    if (segment == NULL) break;
    if (segment->used_slices < QM_SEGMENT_USABLE_SLICES) return segment;
  }
  qm_segment_t *segment = cache_pop();
  bool fresh = false;
  if (segment == NULL) {
    segment = _qm_os_map_aligned(QM_SEGMENT_SIZE, QM_SEGMENT_SIZE, 0);
    if (segment == NULL) return NULL;
    fresh = true;
    qm_counter_add(&_qm_counters.segments_mapped, 1);
    qm_counter_add(&_qm_counters.segment_bytes, QM_SEGMENT_SIZE);
    size_t now = qm_counter_get(&_qm_counters.segments_mapped);
    size_t peak = qm_counter_get(&_qm_counters.segments_peak);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&_qm_counters.segments_peak, &peak, now,
                                                                 memory_order_relaxed, memory_order_relaxed)) {
    }
  }
  segment_init(heap, segment, fresh);
  return segment;
}

void _qm_segment_release(qm_heap_t *heap, qm_segment_t *segment) {
  qm_assert(segment->used_slices == 0);
  qm_page_t *span = &segment->slices[QM_SEGMENT_FIRST_SLICE];
  qm_assert_internal(span->kind == QM_SPAN_FREE && span->slice_count == QM_SEGMENT_USABLE_SLICES);
  _qm_span_remove_free(heap, span);
  _qm_heap_segment_unlink(heap, segment);
  heap->empty_segment_count--;
  atomic_store_explicit(&segment->owner_heap, NULL, memory_order_release);
  _qm_segment_map_set(segment, QM_MAP_FREED);
  uint8_t *usable = (uint8_t *)segment + QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE;
  if (!span->is_zero) _qm_os_purge(usable, QM_SEGMENT_USABLE_SLICES * QM_SLICE_SIZE);
  if (cache_push(segment)) return;
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
