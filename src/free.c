/* free.c - freeing: the qm_free entry point, and the generic route for every free the fast path
 * does not take.
 *
 * Where a block goes, decided from its address alone:
 *   - segment map says "not ours" or "already released"     -> report and abort;
 *   - a huge block                                           -> unmapped, by any thread;
 *   - its segment is owned by the calling thread's heap      -> pushed on its page (free list);
 *   - owned by another thread's heap                         -> listed in a parcel of a remote
 *                                                               batch of this thread, pushed on the
 *                                                               owner's inbox with the rest of the
 *                                                               batch (one compare-and-swap per
 *                                                               batch); the owner drains the whole
 *                                                               inbox later;
 *   - owned by a first-class heap of another thread          -> pushed on its inbox at once;
 *   - abandoned (its thread exited)                          -> kept on the segment's list until a
 *                                                               thread adopts the segment.
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#if QM_VARIANT_DEBUG
#include "debug.h"
#endif

/* In the debug variant, the debug layer (debug.c) checks and frees while QMALLOC_DEBUG is on. */
void qm_free(void *p) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active()) {
    _qm_debug_free(p, 0, SIZE_MAX);
    return;
  }
#endif
  qm_free_inline(p);
}

/* The size promise is checked only in builds with internal checks: it costs a lookup. */
static void check_sized(void *p, size_t alignment, size_t size) {
  if (QM_DEBUG >= 1 && p != NULL) {
    size_t usable = qm_usable_size(p);
    if (size > usable)
      _qm_fatal("free_sized: %p was freed with size %zu, but its block holds only %zu bytes", p, size,
                usable);
    if (alignment != 0 && ((uintptr_t)p & (alignment - 1)) != 0)
      _qm_fatal("free_aligned_sized: %p is not aligned to %zu", p, alignment);
  }
}

void qm_free_sized(void *p, size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active()) {
    _qm_debug_free(p, 0, size);
    return;
  }
#endif
  check_sized(p, 0, size);
  qm_free_inline(p);
}

void qm_free_aligned_sized(void *p, size_t alignment, size_t size) {
#if QM_VARIANT_DEBUG
  if (qm_debug_active()) {
    _qm_debug_free(p, alignment, size);
    return;
  }
#endif
  check_sized(p, alignment, size);
  qm_free_inline(p);
}

void _qm_free_local(qm_heap_t *heap, qm_segment_t *segment, void *p) { qm_free_local(heap, segment, p); }

/* A chain of parcels has a cycle only if the program freed a block twice from other threads while
 * it waited to be collected: freeing it again rewrote its link. The walk compares each parcel with
 * one it saw earlier, taken again at every power of two (Brent's method), so a cycle is found
 * within twice its length plus its distance from the start; the second walk then finds where it
 * closes, which is the block freed twice. */
static qm_cold qm_noreturn void chain_cycle_fatal(qm_block_t *first, size_t length) {
  qm_block_t *ahead = first, *behind = first;
  for (size_t i = 0; i < length; i++)
    ahead = qm_link_get(ahead);
  while (ahead != behind) {
    ahead = qm_link_get(ahead);
    behind = qm_link_get(behind);
  }
  _qm_fatal("double free: block %p was freed twice by other threads", (void *)behind);
}

qm_block_t *_qm_inbox_chain_last(qm_block_t *first, size_t *parcels) {
  qm_block_t *seen = first, *last = first;
  size_t count = 1, power = 1, length = 1;
  for (qm_block_t *next; (next = qm_link_get(last)) != NULL; last = next, count++, length++) {
    if (next == seen)
      chain_cycle_fatal(first, length);
    if (length == power) {
      seen = next;
      power *= 2;
      length = 0;
    }
  }
  *parcels = count;
  return last;
}

void _qm_inbox_push_chain(qm_heap_t *owner, qm_block_t *first, qm_block_t *last, size_t count) {
  qm_block_t *head = atomic_load_explicit(&owner->inbox, memory_order_relaxed);
  do {
    qm_link_set(last, head);
  } while (!atomic_compare_exchange_weak_explicit(&owner->inbox, &head, first, memory_order_release,
                                                  memory_order_relaxed));
  /* After the push, so that the owner's backlog may lag but never counts blocks it cannot take
   * yet; inbox_pushed lies on the inbox's cache line (heap.c), which the exchange has just taken,
   * so the add costs no miss. */
  if (count != 0)
    atomic_fetch_add_explicit(&owner->inbox_pushed, count, memory_order_relaxed);
}

static bool in_metadata(const qm_segment_t *segment, const void *p) {
  return (uintptr_t)p - (uintptr_t)segment < QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE;
}

static qm_cold qm_noreturn void metadata_free(void *p) {
  _qm_fatal("invalid free: %p is not a block (it lies in allocator metadata)", p);
}

/* Checks what can be checked without touching another thread's mutable state. */
static qm_segment_t *checked_segment(void *p) {
  qm_segment_t *segment = qm_segment_of_normal(p);
  switch (qm_map_state(p)) {
  case QM_MAP_NORMAL:
    break;
  case QM_MAP_HUGE:
    return qm_segment_of(p);
  case QM_MAP_FREED:
    _qm_fatal("double free or invalid free: %p lies in memory qmalloc has already released", p);
  default:
    _qm_fatal("invalid free: %p was not allocated by qmalloc", p);
  }
  if (segment->magic != QM_SEGMENT_MAGIC || segment->kind != QM_SEGMENT_NORMAL || in_metadata(segment, p))
    metadata_free(p);
  qm_page_t *page = qm_page_of(segment, p);
  if (page->kind != QM_SPAN_SMALL && page->kind != QM_SPAN_LARGE)
    _qm_fatal("double free or invalid free: %p is not in an allocated block", p);
  return segment;
}

/* For memory tools: the block at p is given back (p passed checked_segment). Sizes as qm_usable_size
 * has them; an interior pointer of a large block is left to the checks that report it. */
static void track_free(qm_segment_t *segment, void *p) {
#if QM_VALGRIND || QM_ASAN_POISON
  if (segment->kind == QM_SEGMENT_HUGE) {
    qm_track_free(p, 0); /* unmapped at once: there is nothing to poison */
    return;
  }
  qm_page_t *page = qm_page_of(segment, p);
  if (page->kind == QM_SPAN_SMALL || (void *)qm_page_start(page) == p)
    qm_track_free(p, page->block_size);
#else
  (void)segment, (void)p;
#endif
}

static void free_route(qm_segment_t *segment, void *p, bool may_batch);

/* Closes the open parcel: the fast path adds no more entries to it. */
static void parcel_close(qm_remote_batch_t *batch) {
  size_t length = (size_t)(batch->cursor - qm_parcel_slot(batch->first, 0));
  qm_parcel_close(batch->first, length, batch->room, batch->below);
  batch->count += (uint32_t)length;
  batch->room = 0;
}

/* Hands a batch whose parcels are all closed to its owner. The owner may have exited since the
 * blocks were freed: its segments then have other owners (or none), and its struct may serve
 * another thread. A heap gives up all of its segments at once when its thread exits, so the first
 * parcel's segment tells whether `owner` is still the heap the blocks were freed to (or a later
 * incarnation that adopted it, which is as good: its inbox sends each block to its segment's
 * current owner). Otherwise each block is routed again, unbatched. */
static void batch_push(qm_remote_batch_t *batch) {
  qm_block_t *parcel = batch->first;
  qm_block_t *last = batch->last;
  qm_heap_t *owner = batch->owner;
  size_t count = batch->count;
  batch->first = batch->below = batch->last = NULL;
  batch->count = 0;
  qm_segment_t *segment = qm_segment_of_normal(parcel);
  if (qm_likely(atomic_load_explicit(&segment->owner_heap, memory_order_acquire) == owner)) {
    _qm_inbox_push_chain(owner, parcel, last, count);
    return;
  }
  while (parcel != NULL) {
    qm_block_t *next = parcel == last ? NULL : qm_link_get(parcel);
    size_t length = qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
    for (size_t i = 0; i < length; i++) {
      qm_block_t *block = qm_parcel_get(qm_parcel_slot(parcel, i));
      free_route(checked_segment(block), block, false);
    }
    free_route(checked_segment(parcel), parcel, false);
    parcel = next;
  }
}

/* Closes the open parcel and hands the batch to its owner. */
static void remote_flush(qm_remote_batch_t *batch) {
  parcel_close(batch);
  batch_push(batch);
}

void _qm_heap_flush_remote(qm_heap_t *heap) {
  for (size_t i = 0; i < QM_REMOTE_SLOTS; i++)
    if (heap->remote[i].first != NULL)
      remote_flush(&heap->remote[i]);
}

/* Heap structs lie at regular strides: a multiplicative hash spreads them over the slots. Its top
 * bits are shifted straight into the slot's byte offset (slots and batch size are powers of two),
 * an instruction fewer on the cross-thread free than a slot index scaled afterwards. */
static inline qm_remote_batch_t *remote_batch_of(qm_heap_t *heap, const qm_heap_t *owner) {
  const unsigned offset_bits = __builtin_ctz(QM_REMOTE_SLOTS * sizeof(qm_remote_batch_t));
  uintptr_t hash = (uintptr_t)owner * UINT64_C(0x9e3779b97f4a7c15);
  size_t offset = (size_t)(hash >> (64 - offset_bits)) & ((QM_REMOTE_SLOTS - 1) * sizeof(qm_remote_batch_t));
  return (qm_remote_batch_t *)((uint8_t *)heap->remote + offset);
}

/* Makes block the batch's open parcel. */
static void parcel_open(qm_remote_batch_t *batch, qm_block_t *block) {
  qm_parcel_open(block);
  if (batch->first == NULL)
    batch->last = block;
  batch->below = batch->first;
  batch->first = block;
  batch->cursor = qm_parcel_slot(block, 0);
  batch->room = (uint32_t)qm_parcel_capacity_of(block);
  batch->count++;
}

/* The next block for a batch that already belongs to its owner, when the newest parcel has no room
 * left (or there is none): the parcel is closed, the batch pushed once it holds QM_REMOTE_BATCH
 * blocks, block starts the next parcel, and the thread collects a share of its own inbox. */
static __attribute__((noinline)) void parcel_next(qm_remote_batch_t *batch, qm_block_t *block) {
  if (batch->first != NULL) {
    /* Linking the newest parcel again would make the chain a cycle, and the owner's drain would
     * never end; an entry listed twice would be caught only when the owner drains it. */
    if (qm_unlikely(qm_parcel_is_latest(batch->cursor, block)))
      _qm_fatal("double free: block %p was freed twice in a row by this thread", (void *)block);
    parcel_close(batch);
    if (batch->count >= QM_REMOTE_BATCH)
      batch_push(batch);
    parcel_open(batch, block);
    /* The owner's share of its own returns: collected here, so that malloc need not (heap.c). A
     * parcel closes every 4 to 32 blocks (its entries and itself), a batch every 32 or more: smaller
     * shares, more often, shorten the frees that collect (larson: free p99.9 about 20% lower). */
    qm_heap_t *heap = _qm_tls_heap;
    if (qm_heap_has_inbox_work(heap))
      _qm_heap_collect_on_free(heap);
    return;
  }
  parcel_open(batch, block);
}

/* Adds block, owned by the thread heap `owner`, to one of heap's remote batches: the cases the
 * fast path of _qm_free_foreign and parcel_next leave out (a batch that belongs to another owner;
 * the owner itself, which routes the block unbatched). A calling thread with no heap of its own
 * takes one here: a thread that only frees (the consumer of a pipeline) would otherwise push every
 * block with a compare-and-swap of its own on the owner's inbox line, which the owner takes too.
 * In `prodcons` that was 2.5 s against 1.55 s batched. A thread that has given its heap back (one
 * exiting: the frees of thread-key destructors that run after qmalloc's; or one that called
 * qm_thread_done) takes none: a heap taken there might never be given back, and its batches never
 * flushed. Those frees, and any when no heap can be had, go unbatched. */
static __attribute__((noinline)) void remote_free(qm_heap_t *heap, qm_heap_t *owner, qm_block_t *block) {
  if (qm_unlikely(heap == &_qm_empty_heap) && !_qm_tls_heap_given_back)
    heap = _qm_heap_get_or_init();
  if (qm_unlikely(heap == NULL || heap == &_qm_empty_heap || owner == heap)) {
    free_route(checked_segment(block), block, false);
    return;
  }
  qm_remote_batch_t *batch = remote_batch_of(heap, owner);
  if (batch->owner == owner) {
    parcel_next(batch, block);
    return;
  }
  if (batch->first != NULL)
    remote_flush(batch);
  batch->owner = owner;
  parcel_open(batch, block);
}

/* Never inlined: _qm_free_foreign ends in a tail call to it, which keeps that path free of saved
 * registers (inlined, its call to checked_segment made the common case save one). */
__attribute__((noinline)) void _qm_free_generic(void *p) {
  if (p == NULL)
    return;
  qm_segment_t *segment = checked_segment(p);
  track_free(segment, p);
  free_route(segment, p, true);
}

void _qm_free_collected(void *p) { free_route(checked_segment(p), p, true); }

/* Past the fast path's tests of the segment map and of the owner thread, checked_segment and
 * free_route have little to add for a segment of this thread: free spans carry flags that the
 * owner's free reports, and only the metadata is told apart here, for the clearer message. A
 * program that replaces blocks at random frees into full pages often (`churn`: one free in 16), and
 * the generic route cost each such free 60 instructions more. */
void _qm_free_owned_slow(qm_segment_t *segment, void *p) {
  if (in_metadata(segment, p)) /* its descriptors' flags would say "not in an allocated block" */
    metadata_free(p);
  track_free(segment, p);
  qm_free_local(atomic_load_explicit(&segment->owner_heap, memory_order_relaxed), segment, p);
}

void _qm_free_foreign(qm_segment_t *segment, void *p) {
  if (QM_VALGRIND || QM_ASAN_POISON) {
    _qm_free_generic(p); /* which tells the memory tools */
    return;
  }
  /* The common case only: a block inside a small page or large block of another thread's heap,
   * written as an entry into the newest parcel of a batch of that owner that has room. Every call
   * below is a tail call, so this path saves no registers.
   * It reads the segment's first cache line, its slice map and this thread's heap, and writes the
   * parcel, which this thread wrote last; it never touches the block itself or its page descriptor:
   * the owner writes that with every malloc and free of the page, so reading it here would be a
   * cache miss on most cross-thread frees. A thread with no heap yet (the shared empty heap, whose
   * batches have no owner) and an owner that is the calling thread's own heap (which the fast
   * path's owner_thread test already rules out) are left to remote_free, which gives the first
   * a heap. */
  unsigned holds = qm_slice_class_of(segment, p);
  qm_heap_t *owner = atomic_load_explicit(&segment->owner_heap, memory_order_acquire);
  qm_heap_t *heap = _qm_tls_heap;
  if (qm_likely(holds != QM_SLICE_NO_BLOCK && owner != NULL && !segment->owner_is_user_heap)) {
    qm_block_t *block = (qm_block_t *)p;
    qm_remote_batch_t *batch = remote_batch_of(heap, owner);
    if (qm_likely(batch->owner == owner)) {
      qm_block_t **slot = batch->cursor;
      if (qm_likely(batch->room != 0 && !qm_parcel_is_latest(slot, block))) {
        qm_parcel_put(slot, block);
        batch->cursor = slot + 1;
        batch->room--;
        return;
      }
      /* A 16-byte block carries no entries (block-inl.h): it goes below the open parcel as a parcel
       * of its own, closed at once, unless that would take the batch past its size. */
      qm_block_t *below = batch->below;
      if (holds == 0 && batch->first != NULL && batch->count < QM_REMOTE_BATCH && block != below &&
          !qm_parcel_is_latest(slot, block)) {
        qm_link_set(block, below);
        if (below == NULL)
          batch->last = block;
        batch->below = block;
        batch->count++;
        return;
      }
      parcel_next(batch, block);
      return;
    }
    remote_free(heap, owner, block);
    return;
  }
  _qm_free_generic(p);
}

/* Sends a checked block to the heap that owns it (or unmaps it). may_batch is false when a remote
 * batch is being flushed (remote_flush), which must not add to the batches it is walking. */
static void free_route(qm_segment_t *segment, void *p, bool may_batch) {
  if (segment->kind == QM_SEGMENT_HUGE) {
    _qm_huge_free(segment, p);
    return;
  }
  for (;;) {
    qm_heap_t *owner = atomic_load_explicit(&segment->owner_heap, memory_order_acquire);
    qm_heap_t *heap = _qm_tls_heap;
    if (owner == heap) {
      _qm_free_local(heap, segment, p);
      return;
    }
    /* A first-class heap of this thread: its owner may free locally, as the fast path does. The
     * owner_thread compare is the fast path's own test: only this thread can make a segment stop
     * being owned by one of its heaps, so owner_heap, read before it, is still the owner. */
    if (owner != NULL &&
        atomic_load_explicit(&segment->owner_thread, memory_order_relaxed) == _qm_thread_id()) {
      _qm_free_local(owner, segment, p);
      return;
    }
    if (owner != NULL) {
      /* remote_free gives a thread with no heap yet one to batch in. */
      if (may_batch && !segment->owner_is_user_heap)
        remote_free(heap, owner, (qm_block_t *)p);
      else {
        qm_parcel_close((qm_block_t *)p, 0, qm_parcel_capacity_of((qm_block_t *)p), NULL);
        _qm_inbox_push_chain(owner, (qm_block_t *)p, (qm_block_t *)p, 1);
      }
      return;
    }
    /* Abandoned: the block waits in the segment for the thread that adopts it. */
    int done = _qm_segment_free_abandoned(segment, (qm_block_t *)p);
    if (done > 0)
      return;
    if (done < 0)
      _qm_fatal("invalid free: %p lies in a segment that no heap owns", p);
    /* a thread adopted it meanwhile: route the block to that owner */
  }
}
