/* huge.c - blocks above QM_LARGE_MAX (2 MiB): each is a mapping of its own, resized with mremap,
 * so its pages are not copied (except a gathered block's, by realloc, on kernels before 6.17).
 * The pages of freed mappings wait in a small cache, resident, for the next huge blocks, which are
 * placed inside them or gather them with mremap and fault in only what they lack; the cache never
 * holds more than keeps the mapped total under its past peak, and is unmapped after the purge
 * delay.
 *
 *   H (4 MiB aligned)        H + offset                  H + offset + size      H + mapping_size
 *   | header | (untouched) | block .......................... | (slack) |
 *
 * mapping_size is a multiple of QM_PMD_SIZE (huge_map_size; why: at the cache below), and qmalloc
 * never writes the slack after the block. offset = max(4 KiB, alignment) up to one segment size,
 * so that qm_segment_of(block) == H for every alignment; above 4 MiB of alignment, H is chosen so
 * that H + 4 MiB is aligned. The header is a qm_segment_t of kind HUGE without owner: any thread
 * may free a huge block.
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

/* The bytes mapped for a block of `usable` bytes at `offset`: a whole number of page tables, so
 * that every range the cache holds, cuts and moves starts and ends on a page-table boundary (see
 * the cache's comment below). */
static size_t huge_map_size(size_t offset, size_t usable) {
  return qm_align_up(offset + usable, QM_PMD_SIZE);
}

static void huge_header_init(qm_segment_t *segment, size_t offset, size_t usable, size_t map) {
  segment->kind = QM_SEGMENT_HUGE;
  segment->magic = QM_SEGMENT_MAGIC;
  segment->mapping_base = segment;
  segment->mapping_size = map;
  segment->block_offset = offset;
  segment->block_size = usable;
  segment->huge_vmas.count = 0;
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
 * Kernel mappings. mremap resizes a range only within one VMA, and moves a range that spans
 * several only since Linux 6.17 (_qm_os_moves_across_mappings tells). A block gathered from
 * several cached ranges spans several, since the kernel does not merge anonymous mappings of
 * different origins. So each block (segment->huge_vmas) and each cached range lists where it may
 * be split (qm_vma_list_t); a range that is not one VMA is moved only where the kernel can, and
 * one with too many splits to list is only used where it lies.
 * ------------------------------------------------------------------------------------------- */

static size_t page_shift(void) { return (size_t)__builtin_ctzl(_qm_os_page_size()); }

static bool vmas_single(const qm_vma_list_t *vmas) { return vmas->count == 0; }

static bool vmas_movable(const qm_vma_list_t *vmas, bool across) {
  return vmas->count == 0 || (across && vmas->count != QM_VMA_LIST_UNKNOWN);
}

/* Appends a split at page `at` (ascending order; a repeat is dropped). */
static void vmas_add(qm_vma_list_t *vmas, size_t at) {
  if (vmas->count == QM_VMA_LIST_UNKNOWN || (vmas->count > 0 && vmas->start[vmas->count - 1] >= at))
    return;
  if (vmas->count == QM_VMA_LIST_MAX || at > UINT32_MAX)
    vmas->count = QM_VMA_LIST_UNKNOWN;
  else
    vmas->start[vmas->count++] = (uint32_t)at;
}

/* Appends the splits of `from` that lie strictly inside its pages [first, end), renumbered so
 * that page `first` of `from` is page `shift` of `vmas`. */
static void vmas_append(qm_vma_list_t *vmas, const qm_vma_list_t *from, size_t first, size_t end,
                        size_t shift) {
  if (from->count == QM_VMA_LIST_UNKNOWN) {
    vmas->count = QM_VMA_LIST_UNKNOWN;
    return;
  }
  for (uint32_t i = 0; i < from->count; i++)
    if (from->start[i] > first && from->start[i] < end)
      vmas_add(vmas, from->start[i] - first + shift);
}

/* The list of pages [first, end) of a range listed by `from`, as a range of its own. */
static qm_vma_list_t vmas_slice(const qm_vma_list_t *from, size_t first, size_t end) {
  qm_vma_list_t slice = {.count = 0};
  vmas_append(&slice, from, first, end, 0);
  return slice;
}

/* ---------------------------------------------------------------------------------------------
 * The cache of freed mappings. Programs that free a huge block and soon allocate another (buffers
 * of a few MiB, growing tables) would otherwise unmap and fault in every page each time, and a
 * page fault costs far more than the allocator's own work on a huge block.
 *
 * An entry is a range of mapped, read-write pages that holds no block: a freed huge block's whole
 * mapping, the end cut off one that shrank, or what is left of either after a request took part
 * of it. A request is served, in this order of preference:
 * 1. in place, inside the smallest entry that has room for it from a segment-aligned address on
 *    (nothing moves; what lies before and after stays cached);
 * 2. gathered: entries, largest first, are moved with mremap (which moves page tables, never
 *    contents) onto one aligned mapping, end to end, whose other pages are fresh. The first may
 *    be the start of the mapping, grown in place.
 *
 * Whole page tables: every mapping is a whole number of QM_PMD_SIZE (the span of one page table,
 * huge_map_size) from an aligned start, and every cut falls on such a boundary, so each entry
 * starts and ends on one, and so does every kernel mapping (VMA) a gathered block is made of.
 * mremap then moves page tables whole. A page table that held pages of two VMAs, or a range moved
 * to another offset, is instead rewritten entry by entry, and on the benchmark machine (a virtual
 * machine) the first write to each page whose entry was rewritten cost about 5 us, half a page
 * fault: with cuts at page granularity, gathered blocks collected VMA boundaries, and in `large`
 * most of their moved page tables paid it. The price is address space (up to 2 MiB past each
 * block's end, untouched when fresh) and the resident pages that an earlier, longer block left
 * there. On a mapping advised for huge pages, the stretches where nothing lands fill with one
 * fault each.
 *
 * Budget: the cache never holds more than the live huge blocks have fallen below their peak
 * (huge_live_peak - huge_live_bytes), so keeping freed pages never raises the process's peak
 * resident set above what its blocks alone reached; what a new mapping would push past that is
 * unmapped first, oldest entry first. Entries also leave after the purge delay, on trim, and when
 * the cache is full (QM_HUGE_CACHE_MAX entries, QM_HUGE_CACHE_BYTES in all).
 *
 * Invariants (under huge_cache_lock): entries [0, huge_cache_count) are disjoint, nonempty, and
 * start and end on QM_PMD_SIZE boundaries; they are counted in huge_bytes (they are mapped) but
 * not in huge_blocks nor in the bytes in use; huge_cache_bytes is their sum and is at most both
 * QM_HUGE_CACHE_BYTES and huge_live_peak - huge_live_bytes. Entries carry no header: the region
 * of a freed block's header is marked FREED in the segment map before it enters, so a second
 * free of the block is still reported. Only requests that need no zeroing and no alignment
 * above 16 bytes take from it. Unmapping happens outside the lock.
 * ------------------------------------------------------------------------------------------- */

#define QM_HUGE_CACHE_MAX 16
#define QM_HUGE_CACHE_BYTES ((size_t)256 << 20)

typedef struct huge_cache_entry_s {
  uint8_t *base;
  size_t size;
  uint64_t cached_at_ns; /* when its pages were freed; a rest keeps its entry's time */
  qm_vma_list_t vmas;
} huge_cache_entry_t;

/* Ranges taken out of the cache under the lock, to be unmapped after it: at most every entry
 * and a rest of each, and one more. */
#define QM_HUGE_VICTIMS_MAX (2 * QM_HUGE_CACHE_MAX + 2)
typedef struct huge_victims_s {
  uint8_t *base[QM_HUGE_VICTIMS_MAX];
  size_t size[QM_HUGE_VICTIMS_MAX];
  size_t count;
} huge_victims_t;

/* How a request is served from the cache (huge_cache_choose_locked). */
typedef struct huge_plan_s {
  uint8_t *in_place; /* the block's aligned start inside an entry, or NULL: gathered */
  struct {
    uint8_t *base;
    size_t size;
    size_t offset; /* where it lands in the block's mapping; ascending */
    bool single;   /* one VMA: may be resized */
  } range[QM_HUGE_CACHE_MAX];
  size_t count;
  qm_vma_list_t vmas; /* the block's */
} huge_plan_t;

static qm_lock_t huge_cache_lock;
static huge_cache_entry_t huge_cache[QM_HUGE_CACHE_MAX];
static _Atomic size_t huge_cache_count; /* written under the lock; read without it to skip it */
static size_t huge_cache_bytes;
static size_t huge_live_bytes; /* mapping bytes of the live huge blocks (under the lock) */
static size_t huge_live_peak;  /* the most huge_live_bytes has been (under the lock) */

static size_t cache_count(void) { return atomic_load_explicit(&huge_cache_count, memory_order_relaxed); }

static void huge_victim_add(huge_victims_t *victims, uint8_t *base, size_t size) {
  qm_assert(victims->count < QM_HUGE_VICTIMS_MAX);
  victims->base[victims->count] = base;
  victims->size[victims->count] = size;
  victims->count++;
}

static void huge_victims_unmap(const huge_victims_t *victims) {
  for (size_t i = 0; i < victims->count; i++) {
    qm_counter_sub(&_qm_counters.huge_bytes, victims->size[i]);
    _qm_os_unmap(victims->base[i], victims->size[i]);
  }
}

static huge_cache_entry_t huge_cache_remove_locked(size_t i) {
  huge_cache_entry_t entry = huge_cache[i];
  size_t last = cache_count() - 1;
  huge_cache_bytes -= entry.size;
  huge_cache[i] = huge_cache[last];
  atomic_store_explicit(&huge_cache_count, last, memory_order_relaxed);
  return entry;
}

/* Caches the pages [first, end) of the range `from` (the rest of it is elsewhere), or gives them
 * up when the cache has no slot. */
static void huge_cache_keep_locked(const huge_cache_entry_t *from, size_t first, size_t end,
                                   huge_victims_t *victims) {
  size_t shift = page_shift();
  uint8_t *base = from->base + (first << shift);
  size_t size = (end - first) << shift;
  size_t count = cache_count();
  qm_assert(size % QM_PMD_SIZE == 0);
  if (size > 0 && count < QM_HUGE_CACHE_MAX) {
    huge_cache[count] =
        (huge_cache_entry_t){base, size, from->cached_at_ns, vmas_slice(&from->vmas, first, end)};
    huge_cache_bytes += size;
    atomic_store_explicit(&huge_cache_count, count + 1, memory_order_relaxed);
  } else if (size > 0) {
    huge_victim_add(victims, base, size);
  }
}

/* Gives up the oldest pages until the cache holds at most `limit` bytes and has room for `room`
 * more entries. An entry only partly over the limit loses its end and keeps its front. */
static void huge_cache_fit_locked(size_t limit, size_t room, huge_victims_t *victims) {
  while (cache_count() > 0 && (huge_cache_bytes > limit || cache_count() + room > QM_HUGE_CACHE_MAX)) {
    size_t oldest = 0;
    for (size_t i = 1; i < cache_count(); i++)
      if (huge_cache[i].cached_at_ns < huge_cache[oldest].cached_at_ns)
        oldest = i;
    huge_cache_entry_t *entry = &huge_cache[oldest];
    size_t excess = huge_cache_bytes > limit ? qm_align_up(huge_cache_bytes - limit, QM_PMD_SIZE) : 0;
    if (cache_count() + room <= QM_HUGE_CACHE_MAX && excess < entry->size) {
      entry->size -= excess;
      entry->vmas = vmas_slice(&entry->vmas, 0, entry->size >> page_shift());
      huge_cache_bytes -= excess;
      huge_victim_add(victims, entry->base + entry->size, excess);
    } else {
      huge_victim_add(victims, entry->base, entry->size);
      huge_cache_remove_locked(oldest);
    }
  }
}

static size_t huge_cache_budget_locked(void) {
  size_t below_peak = huge_live_peak - huge_live_bytes;
  return below_peak < QM_HUGE_CACHE_BYTES ? below_peak : QM_HUGE_CACHE_BYTES;
}

/* A mapping of `size` bytes became (part of) a live block: raises the peak, and unmaps what the
 * cache now holds beyond its budget, before the caller's first write to the new pages. */
static void huge_live_add(size_t size) {
  huge_victims_t victims = {.count = 0};
  _qm_lock(&huge_cache_lock);
  huge_live_bytes += size;
  if (huge_live_bytes > huge_live_peak)
    huge_live_peak = huge_live_bytes;
  huge_cache_fit_locked(huge_cache_budget_locked(), 0, &victims);
  _qm_unlock(&huge_cache_lock);
  huge_victims_unmap(&victims);
}

static void huge_live_sub(size_t size) {
  _qm_lock(&huge_cache_lock);
  qm_assert(huge_live_bytes >= size);
  huge_live_bytes -= size;
  _qm_unlock(&huge_cache_lock);
}

/* Unmaps the entries cached before `older_than` (all of them with UINT64_MAX). */
static bool huge_cache_expire(uint64_t older_than) {
  huge_victims_t victims = {.count = 0};
  _qm_lock(&huge_cache_lock);
  for (size_t i = 0; i < cache_count();) {
    if (older_than == UINT64_MAX || huge_cache[i].cached_at_ns < older_than) {
      huge_cache_entry_t entry = huge_cache_remove_locked(i);
      huge_victim_add(&victims, entry.base, entry.size);
    } else {
      i++;
    }
  }
  _qm_unlock(&huge_cache_lock);
  huge_victims_unmap(&victims);
  return victims.count > 0;
}

void _qm_huge_cache_decay(uint64_t now) {
  if (cache_count() == 0)
    return;
  uint64_t delay = qm_purge_delay_ns();
  huge_cache_expire(now > delay ? now - delay : 0);
}

bool _qm_huge_cache_trim(void) { return huge_cache_expire(UINT64_MAX); }

/* Pages [first, end) of a huge block's mapping, no longer part of a live block (all of a freed
 * block, or the end cut off one that shrank): kept for the next huge block, or unmapped when the
 * cache cannot take them. */
static void huge_cache_put(const qm_segment_t *segment, size_t first, size_t end) {
  size_t shift = page_shift();
  size_t size = (end - first) << shift;
  huge_cache_entry_t range = {(uint8_t *)segment->mapping_base, segment->mapping_size, _qm_os_now_coarse_ns(),
                              segment->huge_vmas};
  huge_victims_t victims = {.count = 0};
  _qm_lock(&huge_cache_lock);
  qm_assert(huge_live_bytes >= size);
  huge_live_bytes -= size;
  /* Freed pages are the warmest: older entries make room for them. The budget grew by `size`,
   * so only the caps can stand in the way. */
  if (size <= QM_HUGE_CACHE_BYTES) {
    huge_cache_fit_locked(QM_HUGE_CACHE_BYTES - size, 1, &victims);
    huge_cache_keep_locked(&range, first, end, &victims);
    huge_cache_fit_locked(huge_cache_budget_locked(), 0, &victims);
  } else {
    huge_victim_add(&victims, range.base + (first << shift), size);
  }
  _qm_unlock(&huge_cache_lock);
  huge_victims_unmap(&victims);
}

/* Whether new mappings for huge blocks are advised for 2 MiB pages: QMALLOC_HUGE_THP, where the
 * advice cannot make a page fault wait for the kernel to compact memory (os.c). */
static bool huge_advise_thp(void) { return _qm_options.huge_thp && _qm_os_huge_faults_never_stall(); }

/* A new mapping for huge blocks: advised, the kernel may back it with 2 MiB pages, one fault for
 * 512 small ones (a moved range keeps its own advice, which travels with its VMA). */
static void *huge_map(size_t size, size_t alignment, size_t offset) {
  void *p = _qm_os_map_aligned(size, alignment, offset);
  if (p != NULL && huge_advise_thp())
    _qm_os_advise_huge_pages(p, size);
  return p;
}

static bool segment_aligned(const void *p) { return ((uintptr_t)p & (QM_SEGMENT_SIZE - 1)) == 0; }

/* Where a block of `map` bytes fits inside an entry from a segment-aligned address on, or NULL. */
static uint8_t *huge_entry_place(const huge_cache_entry_t *entry, size_t map) {
  uintptr_t start = qm_align_up((uintptr_t)entry->base, QM_SEGMENT_SIZE);
  return start + map <= (uintptr_t)entry->base + entry->size ? (uint8_t *)start : NULL;
}

/* Whether an entry can be gathered into the planned block: it may be moved, and the block's list
 * of VMAs has room for its splits and at most two around it. */
static bool huge_gather_fits(const huge_plan_t *plan, const huge_cache_entry_t *entry, bool across) {
  return vmas_movable(&entry->vmas, across) && entry->vmas.count != QM_VMA_LIST_UNKNOWN &&
         plan->vmas.count + entry->vmas.count + 2 <= QM_VMA_LIST_MAX;
}

/* Plans a request of `map` bytes under the lock (see the order of preference above), taking what
 * it uses out of the cache; rests stay cached. `across`: ranges that span VMAs may be moved. */
static void huge_cache_choose_locked(size_t map, bool across, huge_plan_t *plan, huge_victims_t *victims) {
  size_t shift = page_shift();
  size_t best = SIZE_MAX;
  uint8_t *place = NULL;
  for (size_t i = 0; i < cache_count(); i++) {
    uint8_t *at = huge_entry_place(&huge_cache[i], map);
    if (at != NULL && (best == SIZE_MAX || huge_cache[i].size < huge_cache[best].size))
      best = i, place = at;
  }
  if (best != SIZE_MAX) {
    huge_cache_entry_t entry = huge_cache_remove_locked(best);
    size_t first = (size_t)(place - entry.base) >> shift, end = first + (map >> shift);
    huge_cache_keep_locked(&entry, 0, first, victims);
    huge_cache_keep_locked(&entry, end, entry.size >> shift, victims);
    plan->in_place = place;
    plan->vmas = vmas_slice(&entry.vmas, first, end);
    return;
  }
  size_t cursor = 0; /* the block's mapping is planned up to here */
  while (cursor < map && plan->count < QM_HUGE_CACHE_MAX) {
    size_t pick = SIZE_MAX, offset = cursor;
    for (size_t i = 0; i < cache_count(); i++)
      if ((pick == SIZE_MAX || huge_cache[i].size > huge_cache[pick].size) &&
          huge_gather_fits(plan, &huge_cache[i], across))
        pick = i;
    if (pick == SIZE_MAX)
      break;
    huge_cache_entry_t entry = huge_cache_remove_locked(pick);
    size_t size = entry.size < map - offset ? entry.size : map - offset;
    plan->range[plan->count].base = entry.base;
    plan->range[plan->count].size = size;
    plan->range[plan->count].offset = offset;
    plan->range[plan->count].single = vmas_single(&entry.vmas);
    plan->count++;
    huge_cache_keep_locked(&entry, size >> shift, entry.size >> shift, victims);
    vmas_add(&plan->vmas, offset >> shift);
    vmas_append(&plan->vmas, &entry.vmas, 0, size >> shift, offset >> shift);
    vmas_add(&plan->vmas, (offset + size) >> shift);
    cursor = offset + size;
  }
  /* Splits at offset 0 or at the end are no splits. */
  while (plan->vmas.count > 0 && plan->vmas.count != QM_VMA_LIST_UNKNOWN &&
         plan->vmas.start[plan->vmas.count - 1] >= (map >> shift))
    plan->vmas.count--;
  if (plan->vmas.count > 0 && plan->vmas.count != QM_VMA_LIST_UNKNOWN && plan->vmas.start[0] == 0) {
    plan->vmas.count--;
    memmove(plan->vmas.start, plan->vmas.start + 1, plan->vmas.count * sizeof(plan->vmas.start[0]));
  }
}

/* Unmaps the planned ranges [from, count), which have not moved: a block that cannot be made. */
static void huge_plan_give_up(const huge_plan_t *plan, size_t from) {
  huge_victims_t victims = {.count = 0};
  for (size_t i = from; i < plan->count; i++)
    huge_victim_add(&victims, plan->range[i].base, plan->range[i].size);
  huge_victims_unmap(&victims);
}

/* Cached pages made into a segment-aligned mapping of `map` bytes (contents undefined), or NULL.
 * Counts the mapping in huge_bytes, not yet in huge_live_bytes; sets *vmas to its splits. */
static qm_segment_t *huge_cache_take(size_t map, qm_vma_list_t *vmas) {
  if (cache_count() == 0)
    return NULL;
  bool across = _qm_os_moves_across_mappings();
  huge_plan_t plan = {.in_place = NULL, .count = 0, .vmas = {.count = 0}};
  huge_victims_t victims = {.count = 0};
  _qm_lock(&huge_cache_lock);
  huge_cache_choose_locked(map, across, &plan, &victims);
  _qm_unlock(&huge_cache_lock);
  huge_victims_unmap(&victims);
  *vmas = plan.vmas;
  if (plan.in_place != NULL)
    return (qm_segment_t *)plan.in_place;
  if (plan.count == 0)
    return NULL;

  /* The first range, when it starts the mapping and may be resized, grows in place if it can;
   * otherwise every range moves onto a new mapping. */
  uint8_t *dest = NULL;
  size_t next = 0; /* ranges [next, count) are still to move */
  if (plan.range[0].offset == 0 && plan.range[0].single && segment_aligned(plan.range[0].base) &&
      _qm_os_remap(plan.range[0].base, plan.range[0].size, map, NULL) != NULL) {
    dest = plan.range[0].base;
    next = 1;
    qm_counter_add(&_qm_counters.huge_bytes, map - plan.range[0].size);
    if (plan.count == 1)
      vmas->count = 0; /* grown by mremap: one VMA */
  } else {
    dest = huge_map(map, QM_SEGMENT_SIZE, 0);
    if (dest == NULL) {
      huge_plan_give_up(&plan, 0);
      return NULL;
    }
    qm_counter_add(&_qm_counters.huge_bytes, map);
  }
  for (size_t i = next; i < plan.count; i++) {
    uint8_t *slot = dest + plan.range[i].offset;
    size_t size = plan.range[i].size;
    if (_qm_os_remap(plan.range[i].base, size, size, slot) == NULL) {
      /* Only a range the program split behind our back fails here. The slot may now be a hole
       * that another thread's mapping can fill: give up the whole block rather than build on
       * it. */
      _qm_os_release_failed_target(slot, size);
      qm_counter_sub(&_qm_counters.huge_bytes, map);
      _qm_os_unmap(dest, plan.range[i].offset);
      _qm_os_unmap(slot + size, map - plan.range[i].offset - size);
      huge_plan_give_up(&plan, i);
      return NULL;
    }
    /* The fresh pages the range replaced were counted with the mapping. */
    qm_counter_sub(&_qm_counters.huge_bytes, size);
  }
  return (qm_segment_t *)dest;
}

bool _qm_huge_cache_is_valid(void) {
  size_t errors = 0, page = _qm_os_page_size(), sum = 0;
#define CACHE_CHECK(cond, ...)                                                                               \
  do {                                                                                                       \
    if (!(cond) && errors++ < 20)                                                                            \
      _qm_message("heap validation: huge cache: " __VA_ARGS__);                                              \
  } while (0)
  _qm_lock(&huge_cache_lock);
  size_t count = cache_count();
  CACHE_CHECK(count <= QM_HUGE_CACHE_MAX, "%zu entries", count);
  for (size_t i = 0; i < count && i < QM_HUGE_CACHE_MAX; i++) {
    const huge_cache_entry_t *entry = &huge_cache[i];
    sum += entry->size;
    CACHE_CHECK(((uintptr_t)entry->base | entry->size) % QM_PMD_SIZE == 0 && entry->size > 0,
                "entry %p of %zu bytes does not start and end on page-table boundaries", (void *)entry->base,
                entry->size);
    for (size_t j = 0; j < i; j++)
      CACHE_CHECK(entry->base + entry->size <= huge_cache[j].base ||
                      huge_cache[j].base + huge_cache[j].size <= entry->base,
                  "entries %p and %p overlap", (void *)entry->base, (void *)huge_cache[j].base);
    const qm_vma_list_t *vmas = &entry->vmas;
    for (uint32_t k = 0; vmas->count != QM_VMA_LIST_UNKNOWN && k < vmas->count; k++)
      CACHE_CHECK(vmas->start[k] > (k ? vmas->start[k - 1] : 0) && vmas->start[k] < entry->size / page,
                  "entry %p: split %u at page %u is out of order or outside", (void *)entry->base, k,
                  vmas->start[k]);
  }
  CACHE_CHECK(sum == huge_cache_bytes, "entries hold %zu bytes, the total says %zu", sum, huge_cache_bytes);
  CACHE_CHECK(huge_live_bytes <= huge_live_peak && sum <= huge_cache_budget_locked(),
              "%zu bytes cached with %zu live and a peak of %zu", sum, huge_live_bytes, huge_live_peak);
  _qm_unlock(&huge_cache_lock);
#undef CACHE_CHECK
  return errors == 0;
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
  size_t map = huge_map_size(offset, usable);
  /* Cached mappings hold old contents: only for requests that need no zeroing (fresh mappings
   * are zero). */
  if (!zero && offset == QM_HUGE_HEADER_SIZE) {
    qm_vma_list_t vmas;
    qm_segment_t *cached = huge_cache_take(map, &vmas);
    if (cached != NULL) {
      huge_live_add(map);
      huge_header_init(cached, offset, usable, map);
      cached->huge_vmas = vmas;
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
  qm_segment_t *segment = huge_map(map, map_alignment, map_offset);
  /* Out of address space or memory: give back what the calling thread's heap holds empty. */
  if (segment == NULL && _qm_heap_trim(_qm_tls_heap))
    segment = huge_map(map, map_alignment, map_offset);
  if (segment == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  huge_live_add(map);
  huge_header_init(segment, offset, usable, map);
  qm_counter_add(&_qm_counters.huge_blocks, 1);
  qm_counter_add(&_qm_counters.huge_bytes, map);
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
  huge_live_sub(segment->mapping_size);
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
  huge_map_set(segment, QM_MAP_FREED);
  qm_counter_sub(&_qm_counters.huge_blocks, 1);
  qm_stats_huge_free(segment->block_size);
  segment->magic = 0;
  huge_cache_put(segment, 0, segment->mapping_size >> page_shift());
}

/* Growing a block that mremap cannot move as a whole: a new block, the contents copied. NULL with
 * errno ENOMEM, the block untouched, when there is no memory for it. */
static void *huge_realloc_copy(qm_segment_t *segment, void *p, size_t new_size) {
  qm_heap_t *owner = segment->huge_owner;
  void *q = owner != NULL ? _qm_huge_alloc_listed(owner, new_size, QM_ALIGNMENT, false)
                          : _qm_huge_alloc(new_size, QM_ALIGNMENT, false);
  if (q == NULL)
    return NULL;
  memcpy(q, p, segment->block_size);
  qm_track_free(q, 0); /* for memory tools, the caller reports the move from p to q */
  _qm_huge_free(segment, p);
  return q;
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
  size_t new_map = huge_map_size(offset, usable);
  if (new_map == old_map) {
    qm_stats_huge_resize(segment->block_size, usable);
    segment->block_size = usable;
    return p;
  }
  if (new_map < old_map) {
    size_t shift = page_shift();
    huge_cache_put(segment, new_map >> shift, old_map >> shift);
    segment->huge_vmas = vmas_slice(&segment->huge_vmas, 0, new_map >> shift);
    segment->mapping_size = new_map;
    qm_stats_huge_resize(segment->block_size, usable);
    segment->block_size = usable;
    return p;
  }
  bool single = vmas_single(&segment->huge_vmas);
  if (!vmas_movable(&segment->huge_vmas, !single && _qm_os_moves_across_mappings()))
    return huge_realloc_copy(segment, p, new_size);
  if (!single || _qm_os_remap(segment, old_map, new_map, NULL) == NULL) {
    /* No room to grow in place: move the pages (not their contents) to a new segment-aligned
     * range. realloc promises only the default alignment, so a bigger one need not be kept. */
    void *target = huge_map(new_map, QM_SEGMENT_SIZE, 0);
    if (target == NULL && _qm_heap_trim(_qm_tls_heap))
      target = huge_map(new_map, QM_SEGMENT_SIZE, 0);
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
    /* A block that spans VMAs can be moved (see vmas_movable) but not resized: it moves onto the
     * front of the new range, whose fresh pages are the growth. */
    qm_segment_t *moved = _qm_os_remap(segment, old_map, single ? new_map : old_map, target);
    if (moved == NULL) {
      huge_map_set(segment, QM_MAP_HUGE);
      if (owner != NULL)
        _qm_unlock(&owner->huge_lock);
      _qm_os_release_failed_target(target, new_map);
      /* A block the program split into several VMAs (mprotect, madvise) cannot be moved. */
      return huge_realloc_copy(segment, p, new_size);
    }
    segment = moved;
    if (!single)
      vmas_add(&segment->huge_vmas, old_map >> page_shift());
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
  huge_live_add(new_map - old_map);
  segment->mapping_base = segment;
  segment->mapping_size = new_map;
  qm_stats_huge_resize(segment->block_size, usable);
  segment->block_size = usable;
  return (uint8_t *)segment + offset;
}
