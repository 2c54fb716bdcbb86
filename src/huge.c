/* huge.c - blocks above QM_LARGE_MAX (2 MiB): each is a mapping of its own, unmapped on free and
 * resized with mremap, so its pages are never copied.
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

void *_qm_huge_alloc(size_t size, size_t alignment, bool zero) {
  (void)zero; /* fresh mappings are zero */
  size_t page = _qm_os_page_size();
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable = qm_align_up(size, page);
  size_t offset = huge_offset(alignment);
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
