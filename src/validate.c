/* validate.c - the heap validator: walks every structure of the calling thread's heap and checks
 * the invariants written down in types.h, and has huge.c check those of its cache of freed
 * mappings. Tests call it through qm_heap_validate(); debug builds may call it from anywhere. It
 * reports each broken invariant on one line and never allocates.
 */
#include "block-inl.h"
#include "qmalloc.h"

#if QM_VARIANT_DEBUG
#include "debug.h"
#endif

typedef struct validation_s {
  size_t errors;
} validation_t;

#define CHECK(v, cond, ...)                                                                                  \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      (v)->errors++;                                                                                         \
      if ((v)->errors <= 20)                                                                                 \
        _qm_message("heap validation: " __VA_ARGS__);                                                        \
    }                                                                                                        \
  } while (0)

static bool list_contains(const qm_page_list_t *list, const qm_page_t *page) {
  for (const qm_page_t *p = list->first; p != NULL; p = p->next)
    if (p == page)
      return true;
  return false;
}

static void validate_list(validation_t *v, const qm_page_list_t *list, const char *what, size_t index) {
  const qm_page_t *prev = NULL;
  size_t n = 0;
  for (const qm_page_t *p = list->first; p != NULL; p = p->next) {
    CHECK(v, p->prev == prev, "%s %zu: broken back link at %p", what, index, (const void *)p);
    prev = p;
    if (++n > (size_t)1 << 24) {
      CHECK(v, false, "%s %zu: cycle", what, index);
      return;
    }
  }
  CHECK(v, list->last == prev, "%s %zu: last pointer is wrong", what, index);
}

static void validate_small_page(validation_t *v, qm_heap_t *heap, qm_page_t *page) {
  size_t cls = page->size_class;
  const uint8_t *start = qm_page_start(page);
  CHECK(v, cls < QM_CLASS_COUNT && page->block_size == qm_class_size(cls), "page %p: bad class %zu / size %u",
        (void *)page, cls, page->block_size);
  if (v->errors)
    return;
  CHECK(v, page->reserved == (page->slice_count << QM_SLICE_SHIFT) / page->block_size,
        "page %p: reserved %u wrong", (void *)page, page->reserved);
  CHECK(v, page->capacity <= page->reserved, "page %p: capacity %u > reserved %u", (void *)page,
        page->capacity, page->reserved);
  CHECK(v, page->resident_slices <= page->slice_count, "page %p: resident slices %u > slices %u",
        (void *)page, page->resident_slices, page->slice_count);
  CHECK(v,
        qm_page_is_watched(page) || (page->flags & QM_PAGE_IN_FULL) ||
            qm_purge_state(page) == QM_PURGE_THINNED,
        "page %p: unwatched by the decay passes, yet neither full nor thinned", (void *)page);
  size_t free_count = 0;
  for (qm_block_t *b = page->free; b != NULL; b = qm_block_next(page, b)) {
    const uint8_t *bp = (const uint8_t *)b;
    bool inside = bp >= start && bp < start + (size_t)page->capacity * page->block_size &&
                  (size_t)(bp - start) % page->block_size == 0;
    CHECK(v, inside, "page %p: free block %p is not a carved block of the page", (void *)page, (void *)b);
    if (!inside || ++free_count > page->capacity)
      break;
  }
  CHECK(v, page->used + free_count + page->hole_blocks == page->capacity,
        "page %p (class %zu): used %u + free %zu + in holes %u != capacity %u", (void *)page, cls, page->used,
        free_count, page->hole_blocks, page->capacity);
  CHECK(v, page->hole_map != 0 || page->hole_blocks == 0, "page %p: %u blocks in holes but no hole",
        (void *)page, page->hole_blocks);
  bool queued = list_contains(&heap->class_queue[cls], page);
  CHECK(v, queued == !(page->flags & QM_PAGE_IN_FULL), "page %p: IN_FULL flag disagrees with its queue",
        (void *)page);
}

static void validate_segment(validation_t *v, qm_heap_t *heap, qm_segment_t *segment) {
  CHECK(v, segment->magic == QM_SEGMENT_MAGIC && segment->kind == QM_SEGMENT_NORMAL, "segment %p: bad header",
        (void *)segment);
  CHECK(v, atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap,
        "segment %p: wrong owner", (void *)segment);
  CHECK(v, qm_map_state((uint8_t *)segment + 1) == QM_MAP_NORMAL, "segment %p: not in the segment map",
        (void *)segment);
  /* The byte the free fast path trusts to say whose segment this is. */
  unsigned byte = atomic_load_explicit(&_qm_segment_map[qm_map_index(segment)], memory_order_relaxed);
  unsigned expected = qm_heap_map_byte(heap);
  CHECK(v, byte == expected, "segment %p: its map byte is %u, not its owner's %u", (void *)segment, byte,
        expected);
  size_t used = 0;
  for (size_t k = 0; k < QM_SEGMENT_FIRST_SLICE; k++) {
    CHECK(v, segment->slice_class[k] == QM_SLICE_NO_BLOCK, "segment %p: metadata slice %zu is marked %u",
          (void *)segment, k, segment->slice_class[k]);
    CHECK(v, qm_slice_head(&segment->slices[k]) == &segment->slices[k],
          "segment %p: metadata slice %zu names another head", (void *)segment, k);
  }
  size_t i = QM_SEGMENT_FIRST_SLICE;
  bool previous_free = false;
  while (i < QM_SLICES_PER_SEGMENT && v->errors == 0) {
    qm_page_t *span = &segment->slices[i];
    size_t count = span->slice_count;
    CHECK(v, count > 0 && i + count <= QM_SLICES_PER_SEGMENT, "segment %p: slice %zu has bad count %zu",
          (void *)segment, i, count);
    CHECK(v, qm_slice_head(span) == span, "segment %p: span head %zu names another head", (void *)segment, i);
    if (v->errors)
      break;
    CHECK(v, qm_slice_head(&span[count - 1]) == span,
          "segment %p: the last slice of span %zu names another head", (void *)segment, i);
    /* Every slice under a block leads to its head (a free of any block reads this). */
    if (span->kind == QM_SPAN_SMALL || span->kind == QM_SPAN_LARGE)
      for (size_t k = 1; k < count; k++)
        CHECK(v, qm_slice_head(&span[k]) == span, "segment %p: slice %zu of span %zu names another head",
              (void *)segment, i + k, i);
    switch (span->kind) {
    case QM_SPAN_FREE:
      CHECK(v, !previous_free, "segment %p: free spans at slice %zu not coalesced", (void *)segment, i);
      CHECK(v, list_contains(&heap->span_bins[_qm_span_bin(count)], span),
            "segment %p: free span %zu not in its bin", (void *)segment, i);
      CHECK(v, span->flags == QM_PAGE_NOT_IN_USE, "segment %p: free span %zu flags %u", (void *)segment, i,
            span->flags);
      CHECK(v,
            span->resident_slices <= count && (span->is_zero != QM_MEMORY_ZERO || span->resident_slices == 0),
            "segment %p: free span %zu of %zu slices (memory %u) says %u are resident", (void *)segment, i,
            count, span->is_zero, span->resident_slices);
      break;
    case QM_SPAN_SMALL:
      used += count;
      validate_small_page(v, heap, span);
      break;
    case QM_SPAN_LARGE:
      used += count;
      CHECK(v, span->used == 1 && span->block_size == count * QM_SLICE_SIZE && (span->flags & QM_PAGE_LARGE),
            "segment %p: large span %zu inconsistent", (void *)segment, i);
      break;
    default:
      CHECK(v, false, "segment %p: span %zu has kind %u", (void *)segment, i, span->kind);
    }
    uint8_t holds = span->kind == QM_SPAN_SMALL   ? span->size_class
                    : span->kind == QM_SPAN_LARGE ? QM_CLASS_LARGE
                                                  : QM_SLICE_NO_BLOCK;
    for (size_t k = i + (span->kind == QM_SPAN_SMALL); k < i + count; k++)
      CHECK(v, !qm_page_is_watched(&segment->slices[k]),
            "segment %p: slice %zu is watched by the decay passes but begins no small page", (void *)segment,
            k);
    for (size_t k = i; k < i + count; k++)
      CHECK(v, segment->slice_class[k] == holds,
            "segment %p: slice %zu is marked %u in the slice map, not %u", (void *)segment, k,
            segment->slice_class[k], holds);
    previous_free = span->kind == QM_SPAN_FREE;
    i += count;
  }
  CHECK(v, v->errors || used == segment->used_slices, "segment %p: used slices %zu, header says %u",
        (void *)segment, used, segment->used_slices);
}

bool qm_heap_validate(void) {
#if QM_VARIANT_DEBUG
  /* The debug layer's blocks first: a corruption there is reported and aborts. */
  if (qm_debug_active())
    _qm_debug_validate();
#endif
  bool huge_valid = _qm_huge_cache_is_valid();
  bool abandoned_valid = _qm_segment_abandoned_are_valid();
  return _qm_heap_is_valid(_qm_tls_heap) && huge_valid && abandoned_valid;
}

/* A remote batch (types.h): parcels first .. last, and blocks counted as its invariants say. */
static void validate_remote_batch(validation_t *v, size_t index, qm_remote_batch_t *batch) {
  if (batch->first == NULL) {
    CHECK(v, batch->count == 0 && batch->room == 0, "remote batch %zu: empty, but counts %u blocks", index,
          batch->count);
    return;
  }
  size_t length = (size_t)(batch->cursor - qm_parcel_slot(batch->first, 0));
  CHECK(v,
        batch->cursor >= qm_parcel_slot(batch->first, 0) &&
            length + batch->room <= qm_parcel_capacity_of(batch->first) && batch->count < 2 * QM_REMOTE_BATCH,
        "remote batch %zu: cursor, room (%u) or count (%u) out of place", index, batch->room, batch->count);
  CHECK(v, qm_parcel_is_latest(qm_parcel_slot(batch->first, 0), batch->first),
        "remote batch %zu: the open parcel %p does not name itself", index, (void *)batch->first);
  uint32_t blocks = 1; /* the open parcel; its entries are not in count */
  qm_block_t *parcel = batch->first;
  for (qm_block_t *closed = batch->below; v->errors == 0 && closed != NULL && blocks <= batch->count;) {
    parcel = closed;
    blocks += 1 + (uint32_t)qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
    closed = parcel == batch->last ? NULL : qm_link_get(parcel);
  }
  CHECK(v, v->errors || (parcel == batch->last && blocks == batch->count),
        "remote batch %zu: %u blocks counted, the chain holds another number", index, batch->count);
}

/* The heap of every thread that has not allocated yet is one shared, static heap whose pages have
 * no free block, so that its first malloc falls to a slow path, which takes the thread's own heap.
 * Were a slow path ever to work on the shared heap instead, threads would allocate from it
 * together: so it must hold nothing, ever. */
static void validate_empty_heap(validation_t *v) {
  const qm_heap_t *empty = &_qm_empty_heap;
  CHECK(v, empty->segments == NULL && empty->segment_count == 0, "the empty heap holds segments");
  CHECK(v, empty->slow_path_count == 0, "a slow path ran on the empty heap");
  CHECK(v, _qm_empty_page.free == NULL && _qm_empty_page.used == 0, "the empty page is not empty");
  for (size_t c = 0; c < QM_CLASS_COUNT; c++)
    CHECK(v, empty->class_queue[c].first == NULL && empty->class_page[c] == &_qm_empty_page,
          "the empty heap has a page of class %zu", c);
  for (size_t i = 0; i < QM_DIRECT_COUNT; i++)
    CHECK(v, empty->direct[i] == &_qm_empty_page, "the empty heap's direct[%zu] is not the empty page", i);
  for (size_t b = 0; b < QM_SPAN_BINS; b++)
    CHECK(v, empty->span_bins[b].first == NULL, "the empty heap has a free span in bin %zu", b);
}

bool _qm_heap_is_valid(qm_heap_t *heap) {
  validation_t v = {0};
  validate_empty_heap(&v);
  if (heap == &_qm_empty_heap)
    return v.errors == 0;
  /* Other threads purge this heap's free spans under its span lock (purge.c, the visits of other
   * heaps), writing the descriptors the walk below reads. */
  qm_span_lock_enter(heap);
  for (size_t c = 0; c < QM_CLASS_COUNT; c++) {
    validate_list(&v, &heap->class_queue[c], "class queue", c);
    qm_page_t *first = heap->class_queue[c].first;
    CHECK(&v, heap->class_page[c] == (first ? first : &_qm_empty_page),
          "class %zu: class_page is not the queue head", c);
    for (qm_page_t *p = first; p != NULL && v.errors == 0; p = p->next) {
      CHECK(&v, p->kind == QM_SPAN_SMALL && p->size_class == c, "class queue %zu holds a foreign page %p", c,
            (void *)p);
      qm_segment_t *segment = qm_segment_of_page(p);
      CHECK(&v, atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) == heap,
            "class queue %zu holds page %p of another heap", c, (void *)p);
      CHECK(&v, p == first || p->used > 0 || heap->pages_emptied != heap->pages_emptied_swept,
            "class queue %zu: page %p is empty, but no emptied page was counted since the last sweep", c,
            (void *)p);
      CHECK(&v,
            p == first || p->used > 0 || c >= QM_QUICK_SWEEP_CLASSES ||
                heap->pages_emptied != heap->pages_emptied_quick_swept,
            "class queue %zu: page %p is empty, but no emptied page was counted since the last quick sweep",
            c, (void *)p);
    }
  }
  for (size_t i = 0; i < QM_DIRECT_COUNT; i++) {
    size_t cls = qm_size_class(i == 0 ? 0 : i * 16);
    CHECK(&v, heap->direct[i] == heap->class_page[cls], "direct[%zu] disagrees with class %zu", i, cls);
  }
  for (size_t b = 0; b < QM_SPAN_BINS; b++) {
    validate_list(&v, &heap->span_bins[b], "span bin", b);
    bool zero_seen = false; /* the spans that may be resident come first (span.c, span_find) */
    for (qm_page_t *p = heap->span_bins[b].first; p != NULL && v.errors == 0; p = p->next) {
      CHECK(&v, p->kind == QM_SPAN_FREE && _qm_span_bin(p->slice_count) == b,
            "span bin %zu holds span %p wrongly", b, (void *)p);
      CHECK(&v, !zero_seen || p->is_zero == QM_MEMORY_ZERO,
            "span bin %zu lists span %p, which may be resident, after one that reads as zero", b, (void *)p);
      zero_seen |= p->is_zero == QM_MEMORY_ZERO;
    }
  }
  size_t segments = 0, empty = 0;
  for (qm_segment_t *s = heap->segments; s != NULL && v.errors == 0; s = s->next) {
    validate_segment(&v, heap, s);
    segments++;
    if (s->used_slices == 0)
      empty++;
  }
  CHECK(&v, v.errors || segments == heap->segment_count, "heap: %zu segments listed, count says %zu",
        segments, heap->segment_count);
  CHECK(&v, v.errors || empty == heap->empty_segment_count, "heap: %zu empty segments, count says %zu", empty,
        heap->empty_segment_count);
  for (size_t i = 0; i < QM_REMOTE_SLOTS && v.errors == 0; i++)
    validate_remote_batch(&v, i, &heap->remote[i]);
  CHECK(&v, !heap->collecting, "heap: marked as collecting its inbox outside a collect");
  /* The parcel being drained: its cursor within its entries, and none of the entries the cursor
   * has looked at (QM_AHEAD from the next one, or up to the end found) is NULL. */
  qm_block_t *parcel = heap->drain_parcel;
  if (parcel == NULL) {
    CHECK(&v, heap->drain_slot == 0 && heap->drain_end == 0, "drain cursor %u..%u without a parcel",
          heap->drain_slot, heap->drain_end);
  } else {
    CHECK(&v, heap->drain_slot <= heap->drain_end && heap->drain_end <= qm_parcel_capacity_of(parcel),
          "drain cursor %u..%u outside parcel %p", heap->drain_slot, heap->drain_end, (void *)parcel);
    uint32_t seen =
        heap->drain_slot + QM_AHEAD < heap->drain_end ? heap->drain_slot + QM_AHEAD : heap->drain_end;
    for (uint32_t i = heap->drain_slot; i < seen && v.errors == 0; i++)
      CHECK(&v, qm_parcel_get(qm_parcel_slot(parcel, i)) != NULL,
            "parcel %p: entry %u before the end is NULL", (void *)parcel, i);
  }
  qm_span_lock_leave(heap);
  return v.errors == 0;
}
