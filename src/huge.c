/* huge.c - blocks above QM_LARGE_MAX (2 MiB): each is a mapping of its own, resized with mremap,
 * so its pages are never copied. A freed mapping waits in a small cache, resident, for the next
 * huge block, which then faults in only the pages the cached one lacked; it is unmapped after the
 * purge delay, or at once when the cache is full.
 *
 *   H (4 MiB aligned)        H + offset                                H + offset + size
 *   | header | (untouched) | block ........................................ |
 *
 * offset = max(4 KiB, alignment) up to one segment size, so that qm_segment_of(block) == H for every
 * alignment; above 4 MiB of alignment, H is chosen so that H + 4 MiB is aligned. The header is a
 * qm_segment_t of kind HUGE without owner: any thread may free a huge block.
 *
 * A huge block of a first-class heap is also listed in that heap (huge_owner, and next/prev in its
 * huge_blocks list, under the heap's huge_lock), so that qm_heap_destroy can unmap it.
 */
#define _GNU_SOURCE
#include "block-inl.h"

#include <errno.h>

static size_t huge_offset(size_t alignment) {
  if (alignment <= QM_HUGE_HEADER_SIZE)
    return QM_HUGE_HEADER_SIZE;
  return alignment < QM_SEGMENT_SIZE ? alignment : QM_SEGMENT_SIZE;
}

/* Marks the header's region, and the block's when the block starts exactly one segment later. */
static void huge_map_set(qm_segment_t *segment, unsigned state) {
  _qm_segment_map_set(segment, state);
  if (segment->block_offset == QM_SEGMENT_SIZE)
    _qm_segment_map_set((uint8_t *)segment + QM_SEGMENT_SIZE, state);
}

static void huge_header_init(qm_segment_t *segment, size_t offset, size_t usable) {
  segment->kind = QM_SEGMENT_HUGE;
  segment->magic = QM_SEGMENT_MAGIC;
  segment->mapping_base = segment;
  segment->mapping_size = offset + usable;
  segment->block_offset = offset;
  segment->block_size = usable;
  atomic_store_explicit(&segment->owner_thread, 0, memory_order_relaxed);
  atomic_store_explicit(&segment->owner_heap, NULL, memory_order_relaxed);
  segment->huge_owner = NULL;
  segment->next = segment->prev = NULL;
  huge_map_set(segment, QM_MAP_HUGE);
}

/* The list of a first-class heap's huge blocks; each function is called with heap->huge_lock held. */
static void huge_list_push(qm_heap_t *heap, qm_segment_t *segment) {
  segment->huge_owner = heap;
  segment->prev = NULL;
  segment->next = heap->huge_blocks;
  if (heap->huge_blocks)
    heap->huge_blocks->prev = segment;
  heap->huge_blocks = segment;
}

static void huge_list_unlink(qm_heap_t *heap, qm_segment_t *segment) {
  if (segment->prev)
    segment->prev->next = segment->next;
  else
    heap->huge_blocks = segment->next;
  if (segment->next)
    segment->next->prev = segment->prev;
  segment->next = segment->prev = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The cache of freed mappings. Programs that free a huge block and soon allocate another (buffers
 * of a few MiB, growing tables) would otherwise unmap and fault in every page each time.
 * Invariants (under huge_cache_lock): entries [0, huge_cache_count) hold mappings of at most
 * QM_HUGE_CACHE_BLOCK_MAX bytes, mapping_base == segment, block_offset == QM_HUGE_HEADER_SIZE,
 * map state FREED (a free of their old block is reported), counted in huge_bytes (they are
 * mapped) but not in huge_blocks nor in the bytes in use; huge_cache_bytes is their sum.
 * Only blocks of no first-class heap and of the default alignment enter it; only requests that
 * need no zeroing take from it. Unmapping happens outside the lock.
 * ------------------------------------------------------------------------------------------- */

#define QM_HUGE_CACHE_MAX 4
#define QM_HUGE_CACHE_BYTES ((size_t)128 << 20)
#define QM_HUGE_CACHE_BLOCK_MAX ((size_t)64 << 20)

typedef struct huge_cache_entry_s {
  qm_segment_t *segment;
  uint64_t cached_at_ns;
} huge_cache_entry_t;

static qm_lock_t huge_cache_lock;
static huge_cache_entry_t huge_cache[QM_HUGE_CACHE_MAX];
static _Atomic size_t huge_cache_count; /* written under the lock; read without it to skip it */
static size_t huge_cache_bytes;

static size_t cache_count(void) { return atomic_load_explicit(&huge_cache_count, memory_order_relaxed); }

static void huge_cache_remove_locked(size_t i) {
  size_t last = cache_count() - 1;
  huge_cache_bytes -= huge_cache[i].segment->mapping_size;
  huge_cache[i] = huge_cache[last];
  atomic_store_explicit(&huge_cache_count, last, memory_order_relaxed);
}

static void huge_unmap_cached(qm_segment_t *segment) {
  qm_counter_sub(&_qm_counters.huge_bytes, segment->mapping_size);
  segment->magic = 0;
  _qm_os_unmap(segment, segment->mapping_size);
}

/* Unmaps the entries cached before `older_than` (all of them with UINT64_MAX). */
static bool huge_cache_expire(uint64_t older_than) {
  qm_segment_t *victims[QM_HUGE_CACHE_MAX];
  size_t n = 0;
  _qm_lock(&huge_cache_lock);
  for (size_t i = 0; i < cache_count();) {
    if (older_than == UINT64_MAX || huge_cache[i].cached_at_ns < older_than) {
      victims[n++] = huge_cache[i].segment;
      huge_cache_remove_locked(i);
    } else {
      i++;
    }
  }
  _qm_unlock(&huge_cache_lock);
  for (size_t i = 0; i < n; i++)
    huge_unmap_cached(victims[i]);
  return n > 0;
}

void _qm_huge_cache_decay(uint64_t now) {
  if (cache_count() == 0)
    return;
  uint64_t delay = qm_purge_delay_ns();
  huge_cache_expire(now > delay ? now - delay : 0);
}

bool _qm_huge_cache_trim(void) { return huge_cache_expire(UINT64_MAX); }

/* Keeps a freed mapping; false when it does not qualify or the cache cannot take it. */
static bool huge_cache_put(qm_segment_t *segment) {
  if (segment->huge_owner != NULL || segment->mapping_base != segment ||
      segment->block_offset != QM_HUGE_HEADER_SIZE || segment->mapping_size > QM_HUGE_CACHE_BLOCK_MAX)
    return false;
  uint64_t now = _qm_os_now_coarse_ns();
  qm_segment_t *victim = NULL;
  _qm_lock(&huge_cache_lock);
  /* Full: the oldest entry makes room (the newest memory is the warmest). */
  size_t count = cache_count();
  if (count == QM_HUGE_CACHE_MAX ||
      (count > 0 && huge_cache_bytes + segment->mapping_size > QM_HUGE_CACHE_BYTES)) {
    size_t oldest = 0;
    for (size_t i = 1; i < count; i++)
      if (huge_cache[i].cached_at_ns < huge_cache[oldest].cached_at_ns)
        oldest = i;
    victim = huge_cache[oldest].segment;
    huge_cache_remove_locked(oldest);
  }
  bool kept = huge_cache_bytes + segment->mapping_size <= QM_HUGE_CACHE_BYTES;
  if (kept) {
    huge_map_set(segment, QM_MAP_FREED);
    count = cache_count();
    huge_cache[count].segment = segment;
    huge_cache[count].cached_at_ns = now;
    atomic_store_explicit(&huge_cache_count, count + 1, memory_order_relaxed);
    huge_cache_bytes += segment->mapping_size;
  }
  _qm_unlock(&huge_cache_lock);
  if (victim != NULL)
    huge_unmap_cached(victim);
  return kept;
}

/* A cached mapping resized to `map` bytes (contents undefined), or NULL. Prefers the smallest
 * entry that is large enough (the rest of it is cut off), else the largest (grown by mremap, which
 * keeps its resident pages). */
static qm_segment_t *huge_cache_take(size_t map) {
  if (cache_count() == 0)
    return NULL;
  _qm_lock(&huge_cache_lock);
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < cache_count(); i++) {
    size_t size = huge_cache[i].segment->mapping_size;
    if (best == SIZE_MAX) {
      best = i;
      continue;
    }
    size_t best_size = huge_cache[best].segment->mapping_size;
    bool fits = size >= map, best_fits = best_size >= map;
    if ((fits && (!best_fits || size < best_size)) || (!fits && !best_fits && size > best_size))
      best = i;
  }
  qm_segment_t *segment = NULL;
  if (best != SIZE_MAX) {
    segment = huge_cache[best].segment;
    huge_cache_remove_locked(best);
  }
  _qm_unlock(&huge_cache_lock);
  if (segment == NULL)
    return NULL;
  size_t old_map = segment->mapping_size;
  if (map < old_map) {
    _qm_os_shrink(segment, old_map, map);
  } else if (map > old_map && _qm_os_remap(segment, old_map, map, NULL) == NULL) {
    void *target = _qm_os_map_aligned(map, QM_SEGMENT_SIZE, 0);
    qm_segment_t *moved = target ? _qm_os_remap(segment, old_map, map, target) : NULL;
    if (moved == NULL) {
      if (target != NULL)
        _qm_os_unmap(target, map);
      huge_unmap_cached(segment);
      return NULL;
    }
    segment = moved;
  }
  qm_counter_sub(&_qm_counters.huge_bytes, old_map);
  qm_counter_add(&_qm_counters.huge_bytes, map);
  return segment;
}

void _qm_huge_fork_prepare(void) { _qm_lock(&huge_cache_lock); }
void _qm_huge_fork_parent(void) { _qm_unlock(&huge_cache_lock); }
void _qm_huge_fork_child(void) { _qm_unlock(&huge_cache_lock); }

void *_qm_huge_alloc(size_t size, size_t alignment, bool zero) {
  size_t page = _qm_os_page_size();
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable = qm_align_up(size, page);
  size_t offset = huge_offset(alignment);
  /* Cached mappings hold old contents: only for requests that need no zeroing (fresh mappings
   * are zero). */
  if (!zero && offset == QM_HUGE_HEADER_SIZE) {
    qm_segment_t *cached = huge_cache_take(offset + usable);
    if (cached != NULL) {
      huge_header_init(cached, offset, usable);
      qm_counter_add(&_qm_counters.huge_blocks, 1);
      qm_stats_huge_alloc(size, usable);
      qm_track_huge_malloc((uint8_t *)cached + offset, usable);
      return (uint8_t *)cached + offset;
    }
  }
  size_t map_alignment = alignment > QM_SEGMENT_SIZE ? alignment : QM_SEGMENT_SIZE;
  /* For alignments above a segment, H + offset (= H + 4 MiB) must be aligned; otherwise H is
   * segment aligned, which aligns H + offset too. */
  size_t map_offset = alignment > QM_SEGMENT_SIZE ? map_alignment - offset : 0;
  qm_segment_t *segment = _qm_os_map_aligned(offset + usable, map_alignment, map_offset);
  /* Out of address space or memory: give back what the calling thread's heap holds empty. */
  if (segment == NULL && _qm_heap_trim(_qm_tls_heap))
    segment = _qm_os_map_aligned(offset + usable, map_alignment, map_offset);
  if (segment == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  huge_header_init(segment, offset, usable);
  qm_counter_add(&_qm_counters.huge_blocks, 1);
  qm_counter_add(&_qm_counters.huge_bytes, offset + usable);
  qm_stats_huge_alloc(size, usable);
  qm_track_huge_malloc((uint8_t *)segment + offset, usable);
  return (uint8_t *)segment + offset;
}

void *_qm_huge_alloc_listed(qm_heap_t *heap, size_t size, size_t alignment, bool zero) {
  void *p = _qm_huge_alloc(size, alignment, zero);
  if (p != NULL) {
    _qm_lock(&heap->huge_lock);
    huge_list_push(heap, qm_segment_of(p));
    _qm_unlock(&heap->huge_lock);
  }
  return p;
}

static void huge_unmap(qm_segment_t *segment) {
  huge_map_set(segment, QM_MAP_FREED);
  qm_counter_sub(&_qm_counters.huge_blocks, 1);
  qm_counter_sub(&_qm_counters.huge_bytes, segment->mapping_size);
  qm_stats_huge_free(segment->block_size);
  segment->magic = 0;
  _qm_os_unmap(segment->mapping_base, segment->mapping_size);
}

void _qm_huge_release_listed(qm_heap_t *heap) {
  _qm_lock(&heap->huge_lock);
  qm_segment_t *segment = heap->huge_blocks;
  heap->huge_blocks = NULL;
  _qm_unlock(&heap->huge_lock);
  while (segment != NULL) {
    qm_segment_t *next = segment->next;
    qm_track_free((uint8_t *)segment + segment->block_offset, 0); /* live until now, for memory tools */
    huge_unmap(segment);
    segment = next;
  }
}

void _qm_huge_free(qm_segment_t *segment, void *p) {
  if (segment->magic != QM_SEGMENT_MAGIC || p != (uint8_t *)segment + segment->block_offset)
    _qm_fatal("invalid free: %p is not the start of a huge block", p);
  qm_heap_t *owner = segment->huge_owner;
  if (owner != NULL) {
    _qm_lock(&owner->huge_lock);
    huge_list_unlink(owner, segment);
    _qm_unlock(&owner->huge_lock);
  }
  if (owner == NULL) {
    /* Read before the put: once cached, another thread may take the mapping at any moment. */
    size_t usable = segment->block_size;
    if (huge_cache_put(segment)) {
      qm_counter_sub(&_qm_counters.huge_blocks, 1);
      qm_stats_huge_free(usable);
      return;
    }
  }
  huge_unmap(segment);
}

void *_qm_huge_realloc(qm_segment_t *segment, void *p, size_t new_size) {
  size_t page = _qm_os_page_size();
  if (new_size > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable = qm_align_up(new_size, page);
  size_t offset = segment->block_offset;
  size_t old_map = segment->mapping_size;
  size_t new_map = offset + usable;
  if (new_map == old_map)
    return p;
  if (new_map < old_map) {
    _qm_os_shrink(segment, old_map, new_map);
  } else if (_qm_os_remap(segment, old_map, new_map, NULL) == NULL) {
    /* No room to grow in place: move the pages (not their contents) to a new segment-aligned
     * range. realloc promises only the default alignment, so a bigger one need not be kept. */
    void *target = _qm_os_map_aligned(new_map, QM_SEGMENT_SIZE, 0);
    if (target == NULL && _qm_heap_trim(_qm_tls_heap))
      target = _qm_os_map_aligned(new_map, QM_SEGMENT_SIZE, 0);
    if (target == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    /* The header moves with the pages: a listed block's neighbours must be told, under the lock
     * that a concurrent free of one of them takes. */
    qm_heap_t *owner = segment->huge_owner;
    if (owner != NULL)
      _qm_lock(&owner->huge_lock);
    huge_map_set(segment, QM_MAP_FREED);
    qm_segment_t *moved = _qm_os_remap(segment, old_map, new_map, target);
    if (moved == NULL) {
      huge_map_set(segment, QM_MAP_HUGE);
      if (owner != NULL)
        _qm_unlock(&owner->huge_lock);
      _qm_os_unmap(target, new_map);
      errno = ENOMEM;
      return NULL;
    }
    segment = moved;
    huge_map_set(segment, QM_MAP_HUGE);
    if (owner != NULL) {
      if (segment->prev)
        segment->prev->next = segment;
      else
        owner->huge_blocks = segment;
      if (segment->next)
        segment->next->prev = segment;
      _qm_unlock(&owner->huge_lock);
    }
  }
  qm_counter_sub(&_qm_counters.huge_bytes, old_map);
  qm_counter_add(&_qm_counters.huge_bytes, new_map);
  segment->mapping_base = segment;
  segment->mapping_size = new_map;
  qm_stats_huge_resize(segment->block_size, usable);
  segment->block_size = usable;
  return (uint8_t *)segment + offset;
}
