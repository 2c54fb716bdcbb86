/* span.c - free spans and large blocks.
 *
 * The usable slices of a heap's segments are tiled by spans. Free spans sit in the heap's span
 * bins (exact for 1-8 slices, then four bins per doubling); allocation takes the first span that
 * is big enough from the smallest bin that may hold one, and splits off the rest. Freeing a span
 * merges it with free neighbours on both sides, found through the descriptors just past its end
 * and just before its start (the last slice of every span knows where its span begins).
 *
 *   segment:  | meta | page (8) |   free (21)   | large (40) |  free (438)  ...  |
 *                                ^ head  ...  tail ^          each tail: offset back to its head
 *
 * A large block is a span holding one block: its descriptor is a page with one block and the
 * LARGE flag, so the free fast path sends it here.
 */
#include "block-inl.h"

#include <errno.h>

size_t _qm_span_bin(size_t slices) {
  qm_assert_internal(slices > 0 && slices <= QM_SLICES_PER_SEGMENT);
  if (slices <= 8)
    return slices - 1;
  size_t k = qm_log2_floor(slices); /* >= 3 */
  size_t bin = 8 + (k - 3) * 4 + ((slices >> (k - 2)) & 3);
  return bin < QM_SPAN_BINS ? bin : QM_SPAN_BINS - 1;
}

/* Whether a free span may hold resident memory: taking it faults in less than taking one that
 * reads as zero (purged or fresh). */
static bool span_resident(const qm_page_t *span) { return span->is_zero != QM_MEMORY_ZERO; }

/* A bin lists its spans that may be resident first, then those that read as zero (span_find). */
void _qm_span_insert_free(qm_heap_t *heap, qm_page_t *span) {
  qm_page_list_t *bin = &heap->span_bins[_qm_span_bin(span->slice_count)];
  if (span_resident(span))
    qm_list_push_front(bin, span);
  else
    qm_list_push_back(bin, span);
}

void _qm_span_remove_free(qm_heap_t *heap, qm_page_t *span) {
  qm_list_remove(&heap->span_bins[_qm_span_bin(span->slice_count)], span);
}

/* Writes what every span needs: its head descriptor, and the head-map entries of its first and last
 * slices (coalescing finds a left neighbour's head from its last slice). */
static void span_set(qm_page_t *span, size_t count, qm_span_kind_t kind) {
  qm_segment_t *segment = qm_segment_of_page(span);
  uint16_t *heads = &segment->slice_head[qm_slice_index(segment, span)];
  uint16_t own = (uint16_t)((uint8_t *)span - (uint8_t *)segment);
  span->slice_count = (uint32_t)count;
  span->kind = (uint8_t)kind;
  heads[0] = own;
  heads[count - 1] = own;
}

void _qm_span_make_free(qm_heap_t *heap, qm_page_t *span, size_t count, qm_memory_t memory) {
  span_set(span, count, QM_SPAN_FREE);
  span->flags = QM_PAGE_NOT_IN_USE;
  span->used = 0;
  span->free = NULL;
  span->hole_blocks = 0;
  span->hole_map = 0;
  span->is_zero = (uint8_t)memory;
  span->resident_slices = memory == QM_MEMORY_ZERO ? 0 : (uint32_t)count;
  span->dirty_since_ns = memory == QM_MEMORY_DIRTY ? _qm_os_now_coarse_ns() : 0;
  _qm_span_insert_free(heap, span);
}

/* Makes the slices [first, first + count) of free span `from` a free span of their own, with what
 * `from` knew of their memory. */
static void span_make_free_part(qm_heap_t *heap, const qm_page_t *from, size_t first, size_t count) {
  qm_page_t *part = (qm_page_t *)from + first;
  size_t resident = from->resident_slices > first ? from->resident_slices - first : 0;
  qm_memory_t memory = (qm_memory_t)from->is_zero;
  uint64_t dirty_since = from->dirty_since_ns;
  _qm_span_make_free(heap, part, count, resident == 0 && memory == QM_MEMORY_DIRTY ? QM_MEMORY_ZERO : memory);
  part->resident_slices = (uint32_t)(resident < count ? resident : count);
  /* The part keeps the age of its memory, so that splitting does not postpone its purge. */
  part->dirty_since_ns = dirty_since;
}

void _qm_span_purge(qm_page_t *span) {
  qm_assert_internal(span->kind == QM_SPAN_FREE && span->is_zero == QM_MEMORY_DIRTY);
  qm_memory_t memory = QM_MEMORY_ZERO;
  if (span->resident_slices > 0) {
    /* The resident part, up to the end of the transparent huge page it ends in (if the span goes
     * that far): where the kernel backs segments with huge pages (QMALLOC_THP, or a system in THP
     * "always" mode), a write makes the whole 2 MiB page resident, untouched slices included. */
    uint8_t *start = qm_page_start(span);
    uintptr_t end = (uintptr_t)start + (size_t)span->resident_slices * QM_SLICE_SIZE;
    uintptr_t span_end = (uintptr_t)start + (size_t)span->slice_count * QM_SLICE_SIZE;
    end = qm_align_up_ptr(end, QM_PMD_SIZE);
    if (end > span_end)
      end = span_end;
    memory = _qm_os_purge(start, (size_t)(end - (uintptr_t)start));
  }
  span->is_zero = (uint8_t)memory;
  if (memory == QM_MEMORY_ZERO)
    span->resident_slices = 0;
  else if (memory == QM_MEMORY_DIRTY) /* refused (locked pages): tried again once it has aged again */
    span->dirty_since_ns = _qm_os_now_coarse_ns();
}

/* The first `count` slices of the free span are about to be used: what of them reads as zero (past
 * the span's resident part) will be made resident again. */
static void note_refault(qm_heap_t *heap, const qm_page_t *span, size_t count) {
  size_t resident = span_resident(span) ? span->resident_slices : 0;
  if (resident < count)
    _qm_heap_note_refault(heap, qm_page_start(span) + (resident << QM_SLICE_SHIFT),
                          (count - resident) << QM_SLICE_SHIFT);
}

/* A free span of at least `count` slices: the first that may be resident, from the smallest bin
 * up; else the first that fits. Taking memory that reads as zero while resident free memory waits
 * makes fresh memory resident, which counts as growth and brings growth passes, which purge the
 * free spans that waited; taken again, those were fresh in turn: in `realloc`, 70% of what the
 * heap purged (465 of 600 MiB in 3.5 s) came from that loop. Every span in a bin above the first
 * is big enough, and a bin lists its resident spans first: there only the first span is looked at. */
static qm_page_t *span_find(qm_heap_t *heap, size_t count) {
  size_t bin = _qm_span_bin(count);
  qm_page_t *zero = NULL; /* the first span that fits and reads as zero */
  for (qm_page_t *span = heap->span_bins[bin].first; span != NULL; span = span->next) {
    if (span->slice_count >= count) {
      if (span_resident(span))
        return span;
      if (zero == NULL)
        zero = span;
    }
  }
  for (bin++; bin < QM_SPAN_BINS; bin++) {
    qm_page_t *span = heap->span_bins[bin].first;
    if (span != NULL && span_resident(span))
      return span;
    if (zero == NULL)
      zero = span;
  }
  return zero;
}

/* Marks span (taken out of its bin) used, giving back what is beyond `count` slices. */
static qm_page_t *span_take(qm_heap_t *heap, qm_page_t *span, size_t count) {
  size_t total = span->slice_count;
  note_refault(heap, span, count);
  if (total > count)
    span_make_free_part(heap, span, count, total - count);
  span_set(span, count, QM_SPAN_SMALL); /* the caller sets the real kind */
  qm_segment_t *segment = qm_segment_of_page(span);
  if (segment->used_slices == 0)
    heap->empty_segment_count--;
  segment->used_slices += (uint32_t)count;
  return span;
}

static qm_page_t *span_alloc_locked(qm_heap_t *heap, size_t count) {
  qm_page_t *span = span_find(heap, count);
  if (span == NULL && _qm_heap_sweep_pages(heap, true))
    span = span_find(heap, count);
  if (span == NULL) {
    qm_segment_t *segment;
    do {
      segment = _qm_segment_acquire(heap, count);
      if (segment == NULL)
        return NULL;
      span = span_find(heap, count);
    } while (span == NULL);
  }
  _qm_span_remove_free(heap, span);
  return span_take(heap, span, count);
}

qm_page_t *_qm_span_alloc(qm_heap_t *heap, size_t count) {
  qm_assert(count > 0 && count <= QM_SEGMENT_USABLE_SLICES);
  qm_span_lock_enter(heap);
  qm_page_t *span = span_alloc_locked(heap, count);
  qm_span_lock_leave(heap);
  return span;
}

/* Frees a used span whose first `resident` slices may be resident (all of them, or none when the
 * caller has just purged it). */
static void span_free_locked(qm_heap_t *heap, qm_page_t *span, size_t resident) {
  qm_segment_t *segment = qm_segment_of_page(span);
  size_t index = qm_slice_index(segment, span);
  size_t count = span->slice_count;
  qm_assert(segment->used_slices >= count);
  segment->used_slices -= (uint32_t)count;
  qm_slice_class_set(span, count, QM_SLICE_NO_BLOCK);
  qm_page_unwatch(span); /* no small page begins here now */
  /* The span's slices stop pointing at its head: a late free of a pointer into this memory (a
   * double free after the page was given back) then meets a descriptor marked NOT_IN_USE and is
   * reported, instead of landing on whatever span later begins at the old head. */
  qm_slice_head_reset(span + 1, count - 1);
  for (size_t i = 1; i < count; i++) {
    span[i].kind = QM_SPAN_META;
    span[i].flags = QM_PAGE_NOT_IN_USE;
  }
  /* The merged span's resident part runs from its start to the last slice that may be resident:
   * the freed span's, then the resident part of the span after it; a span before it counts in
   * full, unless nothing after it is resident (then its own resident part is the merged one's). */
  /* Merge with the span that follows: it begins right after our last slice. */
  if (index + count < QM_SLICES_PER_SEGMENT) {
    qm_page_t *next = span + count;
    if (next->kind == QM_SPAN_FREE) {
      _qm_span_remove_free(heap, next);
      if (next->resident_slices > 0)
        resident = count + next->resident_slices;
      count += next->slice_count;
      next->kind = QM_SPAN_META;
      next->flags = QM_PAGE_NOT_IN_USE;
      next->slice_count = 0;
    }
  }
  /* Merge with the span before: its last slice says where it begins. */
  if (index > QM_SEGMENT_FIRST_SLICE) {
    qm_page_t *before_last = span - 1;
    qm_page_t *before = qm_slice_head(before_last);
    if (before->kind == QM_SPAN_FREE) {
      _qm_span_remove_free(heap, before);
      resident = resident > 0 ? resident + before->slice_count : before->resident_slices;
      count += before->slice_count;
      span->kind = QM_SPAN_META;
      span->flags = QM_PAGE_NOT_IN_USE;
      span->slice_count = 0;
      span = before;
    }
  }
  /* Nothing resident: every part reads as zero (past its resident part a free span does). */
  _qm_span_make_free(heap, span, count, resident == 0 ? QM_MEMORY_ZERO : QM_MEMORY_DIRTY);
  span->resident_slices = (uint32_t)resident;
  if (segment->used_slices == 0) {
    heap->empty_segment_count++;
    /* Keep one empty segment per heap, so a heap that allocates and frees a big block in a loop
     * does not map and unmap a segment each time. */
    if (heap->empty_segment_count > 1 && segment != heap->adopting)
      _qm_segment_release(heap, segment);
  }
}

void _qm_span_free(qm_heap_t *heap, qm_page_t *span) {
  qm_span_lock_enter(heap);
  span_free_locked(heap, span, span->slice_count);
  qm_span_lock_leave(heap);
}

/* ---------------------------------------------------------------------------------------------
 * Large blocks
 * ------------------------------------------------------------------------------------------- */

/* Every slice of a large block points back to its head, so that freeing an interior pointer is
 * recognised as invalid instead of landing on a stale descriptor. */
static void *large_init(qm_page_t *page, size_t count) {
  span_set(page, count, QM_SPAN_LARGE);
  qm_slice_head_fill(page, count);
  page->flags = QM_PAGE_LARGE;
  page->block_size = (uint32_t)(count * QM_SLICE_SIZE);
  page->used = 1;
  page->capacity = page->reserved = 1;
  page->free = NULL;
  page->size_class = 0;
  qm_slice_class_set(page, count, QM_CLASS_LARGE);
  return qm_page_start(page);
}

void *_qm_large_alloc(qm_heap_t *heap, size_t size, size_t alignment, bool zero) {
  size_t count = (size + QM_SLICE_SIZE - 1) >> QM_SLICE_SHIFT;
  size_t extra = alignment > QM_SLICE_SIZE ? (alignment >> QM_SLICE_SHIFT) - 1 : 0;
  if (count + extra > QM_SEGMENT_USABLE_SLICES)
    return _qm_huge_alloc(size, alignment, zero);
  qm_page_t *span = _qm_span_alloc(heap, count + extra);
  if (span == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  bool is_zero = span->is_zero == QM_MEMORY_ZERO;
  size_t resident = is_zero ? 0 : span->resident_slices; /* of the span's first slices */
  if (extra > 0) {
    /* Find the first aligned slice, give back the slices before it and after the block.
       The pieces are freed as used spans so that they merge with their free neighbours. */
    uintptr_t start = (uintptr_t)qm_page_start(span);
    size_t skip = (qm_align_up_ptr(start, alignment) - start) >> QM_SLICE_SHIFT;
    size_t after = count + extra - skip - count;
    qm_page_t *block = span + skip;
    span_set(block, count, QM_SPAN_LARGE);
    if (skip > 0) {
      span_set(span, skip, QM_SPAN_LARGE);
      _qm_span_free(heap, span);
    }
    if (after > 0) {
      span_set(block + count, after, QM_SPAN_LARGE);
      _qm_span_free(heap, block + count);
    }
    resident = resident > skip ? resident - skip : 0;
    span = block;
  }
  qm_heap_grew(heap, resident < count ? (count - resident) << QM_SLICE_SHIFT : 0);
  void *p = large_init(span, count);
  qm_stats_large_alloc(heap, size, count * QM_SLICE_SIZE);
  span->is_zero = QM_MEMORY_DIRTY;
  qm_track_malloc(p, count * QM_SLICE_SIZE, zero);
  /* Past the span's resident part the memory reads as zero: calloc clears only the part before,
   * so that it does not fault in (and make resident) pages the program may never write. */
  size_t dirty_bytes = is_zero ? 0 : resident << QM_SLICE_SHIFT;
  if (zero && dirty_bytes > 0)
    memset(p, 0, dirty_bytes < size ? dirty_bytes : size);
  return p;
}

static bool large_resize_locked(qm_heap_t *heap, qm_page_t *page, size_t new_size) {
  size_t count = page->slice_count;
  size_t want = (new_size + QM_SLICE_SIZE - 1) >> QM_SLICE_SHIFT;
  qm_segment_t *segment = qm_segment_of_page(page);
  if (want == count)
    return true;
  if (want < count) {
    /* Shrink: the tail becomes a free span (merged with a free span after it). */
    qm_page_t *tail = page + want;
    span_set(tail, count - want, QM_SPAN_LARGE);
    span_set(page, want, QM_SPAN_LARGE);
    qm_stats_large_resize(heap, page->block_size, want * QM_SLICE_SIZE);
    page->block_size = (uint32_t)(want * QM_SLICE_SIZE);
    _qm_span_free(heap, tail);
    return true;
  }
  size_t index = qm_slice_index(segment, page);
  if (index + count >= QM_SLICES_PER_SEGMENT)
    return false;
  qm_page_t *next = page + count;
  if (next->kind != QM_SPAN_FREE || count + next->slice_count < want)
    return false;
  _qm_span_remove_free(heap, next);
  note_refault(heap, next, want - count);
  size_t next_count = next->slice_count;
  if (count + next_count > want)
    span_make_free_part(heap, next, want - count, count + next_count - want);
  next->kind = QM_SPAN_META;
  next->flags = QM_PAGE_NOT_IN_USE;
  segment->used_slices += (uint32_t)(want - count);
  span_set(page, want, QM_SPAN_LARGE);
  qm_slice_head_fill(page, want);
  qm_slice_class_set(page, want, QM_CLASS_LARGE);
  qm_stats_large_resize(heap, page->block_size, want * QM_SLICE_SIZE);
  page->block_size = (uint32_t)(want * QM_SLICE_SIZE);
  return true;
}

bool _qm_large_resize_in_place(qm_heap_t *heap, qm_page_t *page, size_t new_size) {
  /* A size the block keeps (a buffer growing within its last slice or its headroom) changes
   * nothing: no lock. Only the owner changes a span in use, so its size may be read without it. */
  if (qm_large_keeps(page->block_size, new_size))
    return true;
  qm_span_lock_enter(heap);
  bool done = large_resize_locked(heap, page, new_size);
  qm_span_lock_leave(heap);
  return done;
}

/* Eager purges. A freed large block waits, like any free span, for a decay pass to find it dirty
 * for half the purge delay (purge.c), unless it is taken again first; a big block freed just before
 * a program's peak is then part of the peak (at Python's, the 784 KiB list and 384 KiB string of
 * its JSON phase, freed a few milliseconds before). glibc maps blocks of 128 KiB and more on their
 * own and unmaps them when they are freed. So the owner gives a freed block of QM_EAGER_PURGE_MIN
 * bytes or more back to the OS at once (its own pages only: the free neighbours it merges with are
 * not purged with it, and the merged span is dated from the merge, as every merge is), within a
 * budget of QM_EAGER_PURGE_BUDGET bytes between two decay passes of the heap: a program that frees
 * and takes again big blocks all the time pays the page faults of at most that much memory per pass
 * (half the purge delay, so a longer delay purges less here too); and only while the process is
 * near its peak resident set, the only place where a purge can lower it (purge.c, "Purges for the
 * peak"). Measured (DESIGN.md, section 7):
 * peak RSS of `python` 25.45 → 25.05-25.16 MiB (glibc 24.97), `cc` 39.16 → 38.76-38.80 (38.16),
 * `python-malloc` at glibc's; `realloc` 3% slower (26k page faults against 10k). Without the
 * budget, `realloc` ran 33-50% slower and `large` 25%. */
void _qm_large_free(qm_heap_t *heap, qm_page_t *page) {
  size_t bytes = page->block_size;
  page->used = 0;
  qm_stats_large_free(heap, bytes);
  size_t resident = page->slice_count;
  if (bytes >= QM_EAGER_PURGE_MIN && bytes <= heap->eager_purge_left && _qm_heap_near_peak(heap, bytes)) {
    heap->eager_purge_left -= bytes;
    /* Purged with MADV_FREE (QMALLOC_PURGE_METHOD=free), the pages stay resident until the system
     * needs them and need not read as zero; refused (locked pages), they stay as they were: either
     * way counted resident, as before. */
    if (_qm_os_purge(qm_page_start(page), bytes) == QM_MEMORY_ZERO) {
      resident = 0;
      _qm_heap_note_peak_purge(heap, qm_page_start(page), bytes);
    }
  }
  qm_span_lock_enter(heap);
  span_free_locked(heap, page, resident);
  qm_span_lock_leave(heap);
}

bool _qm_heap_purge_spans(qm_heap_t *heap, uint64_t older_than, bool for_peak) {
  bool purged = false;
  for (size_t bin = 0; bin < QM_SPAN_BINS; bin++) {
    qm_page_list_t *list = &heap->span_bins[bin];
    for (qm_page_t *span = list->first, *next; span != NULL; span = next) {
      next = span->next;
      if (span->is_zero != QM_MEMORY_DIRTY || span->dirty_since_ns >= older_than)
        continue;
      size_t was_resident = span->resident_slices;
      _qm_span_purge(span);
      purged = true;
      if (!span_resident(span)) { /* to the back, behind the spans that may still be resident */
        /* Noted as purged: what it held resident, not a fresh tail. */
        if (for_peak && was_resident > 0)
          _qm_heap_note_peak_purge(heap, qm_page_start(span), was_resident << QM_SLICE_SHIFT);
        qm_list_remove(list, span);
        qm_list_push_back(list, span);
      }
    }
  }
  return purged;
}
