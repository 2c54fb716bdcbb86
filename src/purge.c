/* purge.c - giving memory back to the OS on a decay schedule: the decay pass of a heap, and the
 * purging of free OS pages inside partly used small pages ("holes").
 *
 * Free memory is kept resident for a while (the purge delay, QMALLOC_PURGE_DELAY), because a
 * program that frees memory often allocates it again soon, and faulting pages back in costs more
 * than keeping them. Memory that stays free for longer than the delay goes back to the OS. There is
 * no background thread: the owner of a heap runs a decay pass from its slow paths (page refills,
 * frees into full pages, large blocks) at most every half delay.
 *
 * A pass looks at four kinds of free memory:
 *   - empty small pages (no live block): released to the span layer once a pass has seen them
 *     empty twice in a row (so a page that empties and fills again between passes stays a page);
 *   - sparse small pages (at most a quarter of their blocks live): the OS pages that hold no live
 *     block are purged, again only when two passes in a row saw the page unused by allocation (and
 *     the page a class above 1 KiB allocates from, whatever it holds, once its class is idle: below);
 *   - the uncarved tails of small pages: what of its span a page took over resident when it was
 *     made (resident_slices) beyond the part it has carved, purged once two passes in a row saw no
 *     carving (which marks the page in use);
 *   - free spans: purged once dirty for longer than half the delay (span.c stamps when they got
 *     dirty; QM_SPAN_DELAY_DIVISOR below says why half);
 * and then ages the empty-segment cache (segment.c). Once per half delay, some pass also purges the
 * aged free spans of every other heap (under that heap's span lock, skipped when its owner holds
 * it), and what waits in the inbox of a heap whose owner has stopped draining it (below): so a
 * thread that stops calling the allocator pins neither its free spans nor what others free to it.
 *
 * Growth passes. The delay is a guess that freed memory will be wanted again soon; a heap that
 * makes fresh memory resident while it holds free memory it is not reusing shows the guess wrong,
 * and keeping both raises the program's peak. So each QM_GROWTH_PASS_BYTES of fresh memory per
 * segment (heap->grown_bytes: carving past what a page's span had resident, a large block on slices
 * never written or purged) the next slow path runs a growth pass: the page half of a decay pass
 * (the same marks, so a page idle over two passes of either kind is given back) and the purge of the
 * free spans dirty since before the previous growth pass. Growth, not time, measures idleness
 * there: a heap that reuses what it frees makes nothing fresh resident and runs no growth pass.
 *
 * Purges for the peak. The eager purge of a freed large block (span.c) and a growth pass (its page
 * half and its purge of free spans) do not wait for the delay: they exist to keep the program's
 * peak resident set down, where memory freed just before the peak, or held while the heap grows,
 * would be part of it. They can lower the peak only when the process is near it: a process well
 * below its high-water mark (a program between its busy phases, or one that peaked early) reuses
 * what it freed, or the decay passes give it back within the delay, before it could reach the mark
 * again; and what it takes back costs a page fault per OS page. So each asks the kernel first
 * (VmRSS and VmHWM of /proc/self/status: 8 us on the AMD machine, less than the page faults of one
 * purged 128 KiB block) and purges only when the gap is under the most of: the bytes it would
 * purge, a sixty-fourth of the mark, and QM_PEAK_MARGIN_MIN (the kernel keeps both counts in
 * per-CPU batches, and the mark holds what the program's start-up touched and let go: a small
 * process sits 100-250 KiB under it). What the heap purged at once since its last decay pass counts
 * as still resident. A process found well below is taken to stay so for QM_PEAK_RECHECK_NS without
 * asking again, which bounds the cost for a program that frees big blocks at a high rate. Where
 * /proc cannot be read, or with no purge delay, it purges as before. Measured on the AMD machine
 * (suite, 5 repetitions): `realloc`, whose resident set sat 0.25-4.3 MiB under its 11 MiB peak for
 * 95% of what it purged at once, 64k -> 28k page faults and 2.49 -> 1.96 s for the same peak;
 * `python` 20k -> 15k, its peak 0.1-0.25 MiB higher (DESIGN.md, section 5).
 *
 * Purges taken back at once. A program whose live set moves up and down by a few MiB all the time
 * (buffers that grow and are freed: `realloc`) sits at its peak all the time, and what a purge for
 * the peak gives back there the heap takes again within milliseconds: the resident set was lower
 * for those milliseconds only, at a page fault per OS page. So these purges, the growth passes'
 * page half with them, stop for a while when they keep coming back. The heap notes the last
 * QM_PEAK_PURGE_RING ranges they gave back (_qm_heap_note_peak_purge), and span.c tells it when it
 * makes memory that reads as zero resident again (a span taken, or a large block grown in place):
 * part of such a range within the refault window is taken back at once. A heap that has taken back
 * QM_REFAULT_PAUSE_AFTER bytes so, in all, counts a streak: a refault within the window << streak
 * of the last one (or of the end of the pause it started) adds one, a later one starts again; from
 * the third in a row on, the purges for the peak pause for the window << streak. The decay passes
 * go on. An isolated refault never pauses (Python takes back a list's memory once a round, some 100
 * ms apart), nor does a short program that takes back less than 2 MiB in all (a compiler's `cc1`
 * churns like `realloc` at its peak for a few tens of milliseconds, and its purges there are worth
 * 0.3-0.6 MiB of its peak for some 40 page faults). Measured (suite, DESIGN.md, section 5):
 * `realloc` 31k -> 8k page faults and 2.40 -> 1.80 s (tcmalloc 1.57 s), its peak 10.7 -> 10.9 MiB.
 *
 * Quick sweeps. Between two passes, _qm_heap_decay runs every sixteenth of the delay and gives the
 * empty pages of the classes up to QM_QUICK_SWEEP_MAX_SIZE (1 KiB) that lie behind the front of
 * their queue back to the span layer at once (_qm_heap_sweep_small_pages), when the frees may have
 * left one there since the last sweep and the heap is not collecting other threads' frees. Such a
 * page holds 16-1024 blocks and its class allocates from another, so the class has more free
 * blocks than it is using; in the span layer any class or large block can take the page's memory,
 * still resident, where the passes kept it for its own class for one to two half-delays (the
 * pages of bigger classes, which empty in the normal course of a busy class, still wait for the
 * passes). Nothing is purged: the span ages as any other.
 *
 * The current page of an idle class. The page a class allocates from holds its free blocks resident
 * for as long as the class exists, which in a program that uses a size for one phase and moves on
 * (a compiler's buffers of a pass) is the rest of its run: each of some sixty classes keeps a page's
 * worth. The inline fast path, which serves the classes up to QM_DIRECT_MAX, cannot tell the
 * passes that a class is busy; every allocation of a bigger class runs small_alloc or the slow
 * path, which set QM_PURGE_ALLOCATED on the page. A pass clears the flag, and a later pass (at
 * least a sixteenth of the delay later) that finds it still clear thins the page like a sparse one;
 * the fast path keeps allocating from its other free blocks, and takes the hole blocks back when
 * those run out. A free that empties such a page flags it QM_PURGE_EMPTIED, and a growth pass
 * that finds it so, with no allocation since, uncarves it at once: the heap is growing while the
 * page waits. (Decay passes still uncarve an empty current page on their second look.)
 *
 * Holes. A small page is cut into purge units (an OS page, or 1/64 of the page if that is more),
 * and a unit all of whose overlapping blocks are free can be purged. Its blocks are taken off the
 * free list first (their links live in the memory being purged), and the unit's bit is set in
 * page->hole_map:
 *
 *   page:   | unit 0 | unit 1 | unit 2 | unit 3 |      blocks: a b c d e f g h (2 per unit)
 *   live:      a                  e               free list before: b c d f g h
 *   holes:           ^^^^^^^^          ^^^^^^^^    free list after:  b f   hole_blocks = 4
 *
 * When the page runs out of free blocks it takes its hole blocks back (_qm_page_refill_holes),
 * touching the memory again only then.
 */
#include "block-inl.h"

/* ---------------------------------------------------------------------------------------------
 * Holes in small pages
 * ------------------------------------------------------------------------------------------- */

/* log2 of a page's purge unit: an OS page, or 1/64 of the page when that is bigger (hole_map has
 * 64 bits). */
static unsigned purge_unit_shift(const qm_page_t *page) {
  unsigned os_shift = (unsigned)qm_log2_floor(_qm_os_page_size());
  size_t bytes = (size_t)page->slice_count << QM_SLICE_SHIFT;
  unsigned shift = (unsigned)qm_log2_floor(bytes - 1) + 1; /* ceil(log2(bytes)) */
  shift = shift > 6 ? shift - 6 : 0;
  return shift > os_shift ? shift : os_shift;
}

/* The units that the bytes [first, last] of a page overlap, as a mask. */
static uint64_t units_of(size_t first, size_t last, unsigned shift) {
  size_t u0 = first >> shift, u1 = last >> shift;
  uint64_t upto = u1 >= 63 ? ~0ull : (2ull << u1) - 1;
  return upto & ~((1ull << u0) - 1);
}

static uint64_t block_units(size_t index, size_t block_size, unsigned shift) {
  size_t first = index * block_size;
  return units_of(first, first + block_size - 1, shift);
}

void _qm_page_free_bits(const qm_page_t *page, uint64_t *free_bits) {
  const size_t block_size = page->block_size;
  const size_t capacity = page->capacity;
  const unsigned shift = purge_unit_shift(page);
  const uint8_t *start = qm_page_start(page);
  memset(free_bits, 0, ((capacity + 63) / 64) * sizeof(uint64_t));
  /* The walk below is a chain of dependent loads through blocks freed long ago (a sparse page has
   * most of its blocks on the list), one cache miss after another. Asking for the line of each
   * block's start first (where its link is), in address order, puts those misses in flight
   * together: this function was an eighth of `frag`'s samples, and the run took 10% less time with
   * the prefetches (DESIGN.md, section 5, "Finding a sparse page's free units"). Asking for every
   * line instead left the loop waiting on the core's miss buffers. A prefetch of memory purged
   * meanwhile is dropped, not faulted. */
  const uint8_t *carved_end = start + capacity * block_size;
  const size_t stride = block_size > 64 ? block_size : 64;
  for (const uint8_t *line = start; line < carved_end; line += stride)
    __builtin_prefetch(line);
  for (qm_block_t *b = page->free; b != NULL; b = qm_block_next(page, b)) {
    size_t index = (size_t)((uint8_t *)b - start) / block_size;
    free_bits[index / 64] |= 1ull << (index % 64);
  }
  if (page->hole_map != 0) {
    for (size_t i = 0; i < capacity; i++)
      if (block_units(i, block_size, shift) & page->hole_map)
        free_bits[i / 64] |= 1ull << (i % 64);
  }
}

/* Takes the free OS pages inside a small page off its free list and adds them to the purge list;
 * returns the bytes added. */
static size_t page_thin(qm_page_t *page, qm_purge_list_t *purges) {
  qm_assert_internal(page->kind == QM_SPAN_SMALL);
  const size_t block_size = page->block_size;
  const size_t capacity = page->capacity;
  const unsigned shift = purge_unit_shift(page);
  uint8_t *start = qm_page_start(page);
  if (capacity == 0)
    return 0;

  /* 1. Which blocks are free: those on the free list, and those already in holes. */
  uint64_t free_bits[QM_PAGE_BLOCKS_MAX / 64];
  _qm_page_free_bits(page, free_bits);

  /* 2. Units wholly inside the carved part whose every block is free, and that are not holes yet.
   * (A unit reaching past the carved part is never a hole while the page can carve more: blocks
   * carved later would land in it. Once it is carved to the end, the tail past its last block is
   * part of the last unit, so that the page's holes can reach its end and join the next page's.) */
  size_t carved_bytes =
      capacity == page->reserved ? (size_t)page->slice_count << QM_SLICE_SHIFT : capacity * block_size;
  size_t units = carved_bytes >> shift;
  uint64_t new_holes = 0;
  for (size_t u = 0; u < units; u++) {
    if (page->hole_map & (1ull << u))
      continue;
    size_t first_block = (u << shift) / block_size;
    size_t last_block = (((u + 1) << shift) - 1) / block_size;
    if (first_block >= capacity)
      break; /* only tail: no block would come back from it, so it is never a hole */
    if (last_block >= capacity)
      last_block = capacity - 1;
    bool all_free = true;
    for (size_t i = first_block; i <= last_block && all_free; i++)
      all_free = (free_bits[i / 64] >> (i % 64)) & 1;
    if (all_free)
      new_holes |= 1ull << u;
  }
  if (new_holes == 0)
    return 0;

  /* 3. Take the blocks that overlap a new hole off the free list, before their links are purged. */
  size_t removed = 0;
  qm_block_t *kept = NULL; /* the last block that stays on the list */
  for (qm_block_t *b = page->free; b != NULL;) {
    qm_block_t *next = qm_block_next(page, b);
    size_t index = (size_t)((uint8_t *)b - start) / block_size;
    if (block_units(index, block_size, shift) & new_holes) {
      if (kept == NULL)
        page->free = next;
      else
        qm_block_set_next(page, kept, next);
      removed++;
    } else {
      kept = b;
    }
    b = next;
  }

  /* 4. Each run of new holes goes to the purge list. */
  size_t purged = 0;
  uint64_t rest = new_holes;
  while (rest != 0) {
    size_t u = (size_t)__builtin_ctzll(rest);
    uint64_t ones = ~(rest >> u); /* the run ends at the first zero bit */
    size_t n = ones == 0 ? 64 - u : (size_t)__builtin_ctzll(ones);
    _qm_os_purge_add(purges, start + (u << shift), n << shift);
    purged += n << shift;
    rest &= ~(n >= 64 ? ~0ull : ((1ull << n) - 1) << u);
  }
  page->hole_map |= new_holes;
  page->hole_blocks += (uint32_t)removed;
  page->flags &= (uint8_t)~QM_PAGE_FREE_ZERO;
  return purged;
}

/* Whether a page starts and ends on OS page boundaries (not so where the OS page is bigger than a
 * slice), so that its carved part can be purged as a whole. */
static bool page_on_os_pages(const qm_page_t *page) {
  size_t span_bytes = (size_t)page->slice_count << QM_SLICE_SHIFT;
  return (((uintptr_t)qm_page_start(page) | span_bytes) & (_qm_os_page_size() - 1)) == 0;
}

/* Where the carved part of a page ends, rounded up to an OS page (at most the span's end). */
static size_t carved_extent(const qm_page_t *page) {
  size_t os_page = _qm_os_page_size();
  size_t span_bytes = (size_t)page->slice_count << QM_SLICE_SHIFT;
  size_t bytes = ((size_t)page->capacity * page->block_size + os_page - 1) & ~(os_page - 1);
  return bytes < span_bytes ? bytes : span_bytes;
}

/* The memory a page's span had resident when the page was made reaches past its carved part: the
 * page inherited it from the span's last user, and only carving will use it. */
static bool page_has_resident_tail(const qm_page_t *page) {
  return ((size_t)page->resident_slices << QM_SLICE_SHIFT) > carved_extent(page) && page_on_os_pages(page);
}

/* Purges the resident memory past a page's carved part (page_has_resident_tail): a decay pass that
 * finds the page idle, or thins or uncarves it. Without this, a page made on memory that a big
 * block or an emptied page left behind kept all of it resident, though its class might only ever
 * carve a block or two there. Returns the bytes added to the purge list. */
static size_t page_purge_tail(qm_page_t *page, qm_purge_list_t *purges) {
  if (!page_has_resident_tail(page))
    return 0;
  size_t from = carved_extent(page);
  size_t to = (size_t)page->resident_slices << QM_SLICE_SHIFT;
  _qm_os_purge_add(purges, qm_page_start(page) + from, to - from);
  /* Carving past what stays resident counts as growth again (page_extend). */
  page->resident_slices = (uint32_t)((from + QM_SLICE_SIZE - 1) >> QM_SLICE_SHIFT);
  return to - from;
}

size_t _qm_page_uncarve_reset(qm_page_t *page, qm_purge_list_t *purges) {
  qm_assert_internal(page->kind == QM_SPAN_SMALL && page->used == 0);
  uint8_t *start = qm_page_start(page);
  size_t bytes = 0;
  if (page_on_os_pages(page)) {
    bytes = carved_extent(page);
    size_t resident = (size_t)page->resident_slices << QM_SLICE_SHIFT;
    if (resident > bytes)
      bytes = resident; /* the tail the page inherited goes too */
    _qm_os_purge_add(purges, start, bytes);
    page->resident_slices = 0;
  }
  page->capacity = 0;
  page->free = NULL;
  page->hole_map = 0;
  page->hole_blocks = 0;
  /* What lies past the carved part is whatever the span held before this page: not known zero. */
  page->flags &= (uint8_t)~QM_PAGE_FREE_ZERO;
  return bytes;
}

/* An empty page goes back to never carved: its carved part is purged with one system call, and the
 * page carves again from its start as it is used. Cheaper than thinning it (no walk of the free
 * list, no hole map to build, no hole blocks to thread back), and the blocks it hands out next are
 * in address order again. Falls back to thinning where the OS page is bigger than a slice (the
 * page need not start on an OS page then). */
static size_t page_uncarve(qm_page_t *page, qm_purge_list_t *purges) {
  return page_on_os_pages(page) ? _qm_page_uncarve_reset(page, purges) : page_thin(page, purges);
}

void _qm_page_refill_holes(qm_page_t *page) {
  const size_t block_size = page->block_size;
  const unsigned shift = purge_unit_shift(page);
  uint8_t *start = qm_page_start(page);
  size_t added = 0;
  /* Highest first, so that the list hands out the lowest addresses first. */
  for (size_t i = page->capacity; i-- > 0;) {
    if (block_units(i, block_size, shift) & page->hole_map) {
      qm_block_t *b = (qm_block_t *)(start + i * block_size);
      qm_block_set_next(page, b, page->free);
      page->free = b;
      added++;
    }
  }
  qm_assert_internal(added == page->hole_blocks);
  (void)added;
  page->hole_map = 0;
  page->hole_blocks = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The decay pass
 * ------------------------------------------------------------------------------------------- */

#define QM_DECAY_MIN_INTERVAL_NS (1000 * 1000ull) /* passes at most every millisecond */
/* A class that has not allocated between two passes is called idle only when the passes lie at
 * least this fraction of the purge delay apart: a growth pass and a decay pass can run in the same
 * slow path, and a busy class need not allocate in the microseconds between them. */
#define QM_IDLE_OBSERVATION_DIVISOR 16

/* A page is worth thinning when at most a quarter of its blocks are live and its free list holds
 * at least two purge units' worth of memory. */
static bool page_is_sparse(const qm_page_t *page) {
  size_t free_blocks = page->capacity - page->used - page->hole_blocks;
  return (size_t)page->used * 4 <= page->capacity &&
         free_blocks * page->block_size >= ((size_t)2 << purge_unit_shift(page));
}

/* How a pass walks the pages (decay_pages): */
typedef struct page_pass_s {
  bool force;    /* act on whatever may be purged, marked or not (malloc_trim, a purge delay of 0) */
  bool growth;   /* a growth pass: the heap is making fresh memory resident */
  bool observed; /* the previous pass was long enough ago to call a class idle that has not
                    allocated since (QM_IDLE_OBSERVATION_DIVISOR) */
} page_pass_t;

/* The current page of a class above QM_DIRECT_MAX whose class has not allocated since the last
 * pass: its free OS pages are purged (thinned), or, when the frees emptied it and a growth pass
 * runs, it is uncarved at once. True when the pass is done with the page. */
static bool decay_idle_current_page(qm_heap_t *heap, const page_pass_t *pass, qm_page_t *page,
                                    qm_purge_list_t *purges, bool *released) {
  bool allocated = (page->purge_mark & QM_PURGE_ALLOCATED) != 0;
  page->purge_mark &= (uint8_t)~QM_PURGE_ALLOCATED; /* for the next pass to see */
  if (page->used == 0) {
    size_t bytes = carved_extent(page);
    if (!(page->purge_mark & QM_PURGE_EMPTIED) || !pass->growth || page->hole_blocks == page->capacity ||
        bytes > heap->idle_uncarve_left)
      return false; /* the passes' two looks at an empty page, below */
    heap->idle_uncarve_left -= bytes;
    *released |= page_uncarve(page, purges) > 0;
    page->purge_mark = QM_PURGE_THINNED;
    return true;
  }
  if (allocated || !(pass->force || pass->observed))
    return false;
  *released |= page_thin(page, purges) > 0;
  *released |= page_purge_tail(page, purges) > 0;
  /* Not THINNED: small_alloc allocates from it without the slow path that would watch it again. */
  return true;
}

/* What a decay pass does with one small page (decay_pages, below). An idle page (empty, behind the
 * front of its queue) goes to `idle`, for the caller to release after its walk. */
static void decay_page(qm_heap_t *heap, qm_page_t *page, const page_pass_t *pass, qm_purge_list_t *purges,
                       qm_page_t **idle, size_t *idle_count, bool *released) {
  if (page->flags & QM_PAGE_IN_FULL) {
    qm_page_unwatch(page); /* nothing to do until a block comes back to it */
    return;
  }
  bool first = heap->class_queue[page->size_class].first == page;
  bool act = pass->force || qm_purge_state(page) == QM_PURGE_CANDIDATE;
  if (page->used == 0 && !first) {
    if (act) {
      qm_assert_internal(*idle_count < QM_SLICES_PER_SEGMENT / QM_SMALL_PAGE_SLICES);
      idle[(*idle_count)++] = page;
    } else {
      page->purge_mark = QM_PURGE_CANDIDATE;
      qm_page_watch(page); /* a thinned page the frees emptied was not watched */
    }
    return;
  }
  if (qm_purge_state(page) == QM_PURGE_THINNED) {
    qm_page_unwatch(page); /* nothing to do until it is allocated from again, or empties */
    return;
  }
  if (first && page->size_class >= QM_DIRECT_CLASSES &&
      decay_idle_current_page(heap, pass, page, purges, released))
    return;
  if (page->used == 0) {
    if (page->hole_blocks == page->capacity)
      return;
    if (act) {
      *released |= page_uncarve(page, purges) > 0;
      page->purge_mark = QM_PURGE_THINNED;
    } else {
      page->purge_mark = QM_PURGE_CANDIDATE;
    }
  } else if (!first && page_is_sparse(page)) {
    if (act) {
      *released |= page_thin(page, purges) > 0;
      *released |= page_purge_tail(page, purges) > 0;
      page->purge_mark = QM_PURGE_THINNED;
    } else {
      page->purge_mark = QM_PURGE_CANDIDATE;
    }
  } else if (page_has_resident_tail(page)) {
    /* Only carving reaches the tail, and carving marks the page in use (page.c). */
    if (act)
      *released |= page_purge_tail(page, purges) > 0;
    else
      page->purge_mark = QM_PURGE_CANDIDATE;
  }
}

/* Empty and sparse pages of the heap, acted on when a second pass in a row sees them so (`force`:
 * at once). The first page of each class queue is the one the fast path allocates from, which does
 * not mark it in use: it stays in place (releasing it would take a busy class's page away), but
 * when it is empty it is uncarved (its memory purged, page_uncarve), so that the classes a program
 * has stopped using (a block grown with realloc passes through many) do not each keep a page
 * resident. The classes of the inline fast path (up to QM_DIRECT_MAX) never thin it while sparse;
 * the others flag each allocation, so that a pass can tell an idle class from a busy one
 * (decay_idle_current_page, and "The current page of an idle class" above).
 *
 * Most passes read only the pages of each segment's decay_watch (types.h): a page the walk clears
 * there is full or thinned, and stays so until an allocation or a free into a full page sets its
 * bit again. The one exception is a thinned page that the frees empty, which is not watched again
 * (that would put work on the free fast path's branch for an emptied page, which a loop of single
 * malloc/free pairs takes at every free). Such a page is behind the front of its queue, and the
 * frees count every page they empty there for the sweeps (page.c): so while that count is ahead of
 * the last sweep, the pass reads every descriptor instead, as all passes once did. Either walk goes
 * in address order rather than along the class queues and asks for descriptors ahead of the one it
 * reads: the loads overlap, where the queues' links made them a chain of cache misses. */
static bool decay_pages(qm_heap_t *heap, bool force, bool growth) {
  uint64_t now = _qm_os_now_coarse_ns();
  page_pass_t pass = {force, growth,
                      now - heap->page_pass_ns >= qm_purge_delay_ns() / QM_IDLE_OBSERVATION_DIVISOR};
  heap->page_pass_ns = now;
  bool released = false;
  qm_purge_list_t purges; /* the pass's thinned holes and uncarved pages, purged a few calls at a time */
  purges.count = 0;
  bool every_page = heap->pages_emptied != heap->pages_emptied_swept;
  for (qm_segment_t *segment = heap->segments, *next_segment; segment != NULL; segment = next_segment) {
    next_segment = segment->next;
    qm_page_t *idle[QM_SLICES_PER_SEGMENT / QM_SMALL_PAGE_SLICES]; /* no small page is smaller */
    size_t idle_count = 0;
    if (every_page) {
      for (size_t i = QM_SEGMENT_FIRST_SLICE; i < QM_SLICES_PER_SEGMENT;) {
        qm_page_t *page = &segment->slices[i];
        /* Small pages span 2 slices or more: this asks for the descriptors of about 16 pages on. */
        if (i + 32 < QM_SLICES_PER_SEGMENT)
          __builtin_prefetch(&segment->slices[i + 32]);
        qm_assert_internal(page->slice_count > 0);
        i += page->slice_count;
        if (page->kind == QM_SPAN_SMALL)
          decay_page(heap, page, &pass, &purges, idle, &idle_count, &released);
      }
    } else {
      for (size_t w = 0; w < QM_SLICES_PER_SEGMENT / 64; w++) {
        for (uint64_t bits = segment->decay_watch[w]; bits != 0; bits &= bits - 1) {
          qm_page_t *page = &segment->slices[w * 64 + (size_t)__builtin_ctzll(bits)];
          uint64_t later = bits & (bits - 1);
          if (later != 0)
            __builtin_prefetch(&segment->slices[w * 64 + (size_t)__builtin_ctzll(later)]);
          qm_assert_internal(page->kind == QM_SPAN_SMALL && qm_slice_head(page) == page);
          decay_page(heap, page, &pass, &purges, idle, &idle_count, &released);
        }
      }
    }
    /* Released after the walk: freeing a span merges descriptors the walk would still read, and the
     * last may release the segment itself. None is the first of its queue. The purges go first: a
     * released page's span may join a neighbour that is on the list. */
    if (idle_count > 0)
      _qm_os_purge_flush(&purges);
    for (size_t k = 0; k < idle_count; k++) {
      qm_page_t *page = idle[k];
      qm_list_remove(&heap->class_queue[page->size_class], page);
      page->flags = 0;
      _qm_span_free(heap, page);
      released = true;
    }
  }
  _qm_os_purge_flush(&purges);
  return released;
}

/* Empty segments whose memory has been purged go to the segment cache, which unmaps them after
 * the segment decay. Not the one an adoption is freeing parked blocks into (a free there may run
 * this pass, and with a purge delay of 0 its emptied span is purged at once): the adopter still
 * looks at it (segment.c). */
static bool release_purged_segments(qm_heap_t *heap) {
  bool released = false;
  for (qm_segment_t *segment = heap->segments, *next; segment != NULL; segment = next) {
    next = segment->next;
    if (segment->used_slices == 0 && segment->slices[QM_SEGMENT_FIRST_SLICE].is_zero != QM_MEMORY_DIRTY &&
        segment != heap->adopting) {
      _qm_segment_release(heap, segment);
      released = true;
    }
  }
  return released;
}

/* ---------------------------------------------------------------------------------------------
 * The inbox of an idle heap
 *
 * Blocks other threads free into a thread heap wait in its inbox, counted as used, until the
 * owner's next slow path drains them. A thread that has stopped allocating (waiting in
 * pthread_join, in a blocking read) drains nothing, and what it made and others freed stays
 * resident for as long as it waits. So a pass that visits another heap whose owner has drained
 * nothing since the previous visit (half a purge delay or more before) takes its inbox, gives back the
 * OS pages that lie wholly inside blocks the inbox lists, and puts the inbox back, marked
 * (inbox_purged). When the owner wakes, its first drain sees the mark and collects the whole chain
 * so that a page it empties is given up without a write into its blocks (heap.c); only the blocks
 * of pages that keep a live block get their links written, which faults their purged pages in.
 * Parcels are left as they are (they carry the entries), and so is the part of the chain a
 * previous visit handled, and so are parcels the owner has taken and only partly collected (its
 * drain_parcel: its alone; a small slow path collects a share at a time, heap.c). Nothing here
 * needs the owner's help nor stops it: the inbox is taken and put back with the operations every
 * freeing thread uses, and the blocks stay the owner's.
 * ------------------------------------------------------------------------------------------- */

/* The most entries one visit sorts (a 512 KiB scratch mapping): the visit holds the heap list's
 * lock. Entries past them (the oldest) are not purged by later visits either. */
#define QM_INBOX_PURGE_MAX ((size_t)64 * 1024)

/* Moves a[root] down the max-heap a[0 .. n) until neither child is bigger. */
static void sift_down(uintptr_t *a, size_t root, size_t n) {
  for (size_t child; (child = 2 * root + 1) < n; root = child) {
    if (child + 1 < n && a[child + 1] > a[child])
      child++;
    if (a[root] >= a[child])
      return;
    uintptr_t t = a[root];
    a[root] = a[child];
    a[child] = t;
  }
}

/* A heap sort: no allocation, no recursion (internal.h). */
void _qm_sort_addresses(uintptr_t *a, size_t n) {
  for (size_t start = n / 2; start-- > 0;)
    sift_down(a, start, n);
  for (size_t end = n; end > 1; end--) {
    uintptr_t t = a[0];
    a[0] = a[end - 1];
    a[end - 1] = t;
    sift_down(a, 0, end - 1);
  }
}

/* The size of the small block of `owner` that starts at p, or 0 if p is no such block start (a
 * stray pointer the program freed, or a block of a segment that changed hands). */
static size_t inbox_block_size(const qm_heap_t *owner, uintptr_t p) {
  qm_segment_t *segment = qm_segment_of_normal((void *)p);
  if (qm_map_state((void *)p) != QM_MAP_NORMAL ||
      atomic_load_explicit(&segment->owner_heap, memory_order_relaxed) != owner)
    return 0;
  return qm_small_block_start_size(segment, (void *)p);
}

/* Adds the OS pages inside [start, end), a run of adjacent listed blocks, to the purge list. */
static bool purge_run(qm_purge_list_t *purges, uintptr_t start, uintptr_t end) {
  uintptr_t os_page = _qm_os_page_size();
  uintptr_t first = (start + os_page - 1) & ~(os_page - 1), last = end & ~(os_page - 1);
  if (last <= first)
    return false;
  _qm_os_purge_add(purges, (void *)first, last - first);
  return true;
}

/* Purges what the entries of the parcels from `first` up to `stop` (excluded) list, which hold
 * `count` entries. */
static bool inbox_purge_entries(const qm_heap_t *owner, qm_block_t *first, qm_block_t *stop, size_t count) {
  size_t os_page = _qm_os_page_size();
  size_t bytes = (count * sizeof(uintptr_t) + os_page - 1) & ~(os_page - 1);
  uintptr_t *starts = _qm_os_map(bytes);
  if (starts == NULL)
    return false;
  size_t n = 0;
  for (qm_block_t *parcel = first; parcel != stop && n < count; parcel = qm_link_get(parcel)) {
    size_t length = qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
    for (size_t i = 0; i < length && n < count; i++)
      starts[n++] = (uintptr_t)qm_parcel_get(qm_parcel_slot(parcel, i));
  }
  _qm_sort_addresses(starts, n);
  bool released = false;
  qm_purge_list_t purges;
  purges.count = 0;
  uintptr_t run_start = 0, run_end = 0;
  for (size_t i = 0; i < n; i++) {
    size_t size = inbox_block_size(owner, starts[i]);
    if (size == 0)
      continue;
    if (starts[i] >= run_start && starts[i] <= run_end) { /* adjacent (or listed twice) */
      if (starts[i] + size > run_end)
        run_end = starts[i] + size;
      continue;
    }
    released |= purge_run(&purges, run_start, run_end);
    run_start = starts[i];
    run_end = starts[i] + size;
  }
  released |= purge_run(&purges, run_start, run_end);
  _qm_os_purge_flush(&purges); /* before the chain goes back, where the owner may drain it */
  _qm_os_unmap(starts, bytes);
  return released;
}

/* Purges what the inbox of `owner`, a thread heap that is not the caller's, lists, if its owner has
 * drained nothing since the last visit (or always, when force). The caller holds owner's span lock,
 * and the heap list lock, so the owner cannot leave the list (nor exit) meanwhile. */
static bool inbox_purge(qm_heap_t *owner, bool force) {
  uint64_t drains = __atomic_load_n(&owner->inbox_drains, __ATOMIC_RELAXED);
  bool idle = drains == owner->purge_seen_drains;
  qm_block_t *handled = idle ? owner->inbox_purged : NULL; /* a drain made it meaningless */
  owner->purge_seen_drains = drains;
  __atomic_store_n(&owner->inbox_purged, handled, __ATOMIC_RELAXED);
  if ((!idle && !force) || atomic_load_explicit(&owner->inbox, memory_order_relaxed) == NULL)
    return false;
  qm_block_t *first = atomic_exchange_explicit(&owner->inbox, NULL, memory_order_acquire);
  if (first == NULL)
    return false;
  size_t parcels, count = 0;
  qm_block_t *last = _qm_inbox_chain_last(first, &parcels), *stop = NULL;
  for (qm_block_t *parcel = first; parcel != NULL; parcel = qm_link_get(parcel)) {
    if (parcel == handled) {
      stop = handled;
      break;
    }
    count += qm_parcel_length(parcel, qm_parcel_capacity_of(parcel));
  }
  if (count > QM_INBOX_PURGE_MAX)
    count = QM_INBOX_PURGE_MAX;
  bool released = count != 0 && inbox_purge_entries(owner, first, stop, count);
  /* Stored before the chain goes back: the owner's exchange that takes the chain then sees it, and
   * collects the chain without writing into the blocks of pages it empties (heap.c). */
  __atomic_store_n(&owner->inbox_purged, first, __ATOMIC_RELAXED);
  _qm_inbox_push_chain(owner, first, last, 0); /* counted when first pushed */
  return released;
}

typedef struct purge_job_s {
  qm_heap_t *self;
  uint64_t older_than;
  bool released;
} purge_job_t;

static void purge_other(qm_heap_t *heap, void *arg) {
  purge_job_t *job = arg;
  if (heap == job->self || !_qm_trylock(&heap->span_lock))
    return; /* its owner is in the span layer: it runs passes of its own */
  job->released |= _qm_heap_purge_spans(heap, job->older_than, false);
  if (!qm_heap_is_user(heap))
    job->released |= inbox_purge(heap, job->older_than == UINT64_MAX);
  _qm_unlock(&heap->span_lock);
}

bool _qm_purge_other_heaps(qm_heap_t *self, uint64_t older_than) {
  purge_job_t job = {self, older_than, false};
  _qm_heaps_visit(purge_other, &job);
  return job.released;
}

/* Free spans are purged once free for half the purge delay (a heap's own, and those of the other
 * heaps when a pass visits them), pages after the whole delay. A page that empties belongs to a class
 * the program uses and is what its next malloc of that class takes; a free span comes back only for a
 * request that needs whole slices (a large block, a new page), and a program that is growing, in
 * phases, skips over the spans it freed for bigger ones. Measured with the delay at 100 ms (full size,
 * 6 repetitions, the three in one run), a quarter / half / the whole delay: `python-malloc` 18.2k /
 * 12.8k / 9.4k page faults and 3.16 / 2.94 / 2.88 s, `python` 12.3k / 6.5k / 6.4k and 2.70 / 2.49 /
 * 2.61 s, `churn` peak RSS 24.8 / 25.0 / 25.5 MiB, `realloc` 11.06 / 11.03 / 11.26 MiB, the others'
 * peaks within 0.3%. Purging pages at a quarter of the delay as well doubled `realloc`'s page faults
 * (9.7k) and cost it 6% in time. */
#define QM_SPAN_DELAY_DIVISOR 2

/* Quick sweeps run every delay / QM_QUICK_SWEEP_DIVISOR (6.25 ms at the default 100 ms). Measured on
 * `python-malloc` (5 runs each, medians): peak RSS 26.30 MiB without them, 25.72 at a sixteenth,
 * 25.70 at a thirty-second, 25.73 at a hundredth, 26.15 at an eighth (glibc 25.57). */
#define QM_QUICK_SWEEP_DIVISOR 16

/* Purges for the peak (above): the process is near its peak when within the most of the bytes to
 * purge, the peak / QM_PEAK_MARGIN_DIVISOR and QM_PEAK_MARGIN_MIN of it. */
#define QM_PEAK_MARGIN_DIVISOR 64
#define QM_PEAK_MARGIN_MIN ((size_t)256 * 1024)
#define QM_PEAK_RECHECK_NS ((uint64_t)1000 * 1000)
/* Purges taken back at once (above): memory purged for the peak counts as taken back at once within
 * the delay / QM_REFAULT_WINDOW_DIVISOR (10 ms at the default 100 ms: the coarse clock ticks every 1-4
 * ms); a heap that has taken back QM_REFAULT_PAUSE_AFTER bytes so in its life pauses those purges at
 * the QM_REFAULT_PAUSE_STREAK-th refault in a row, each within the window << streak of the one
 * before (or of the end of the pause it started), for the window << streak, the streak counted up to
 * QM_REFAULT_STREAK_MAX (a pause of 80 to 640 ms at the default delay). */
#define QM_REFAULT_WINDOW_DIVISOR 10
#define QM_REFAULT_PAUSE_AFTER ((uint64_t)2 * 1024 * 1024)
#define QM_REFAULT_PAUSE_STREAK 3
#define QM_REFAULT_STREAK_MAX 6

static _Atomic uint64_t others_due_ns; /* when some pass should next purge the other heaps */

void _qm_heap_decay(qm_heap_t *heap, uint64_t now) {
  uint64_t delay = qm_purge_delay_ns();
  uint64_t interval = delay / 2 > QM_DECAY_MIN_INTERVAL_NS ? delay / 2 : QM_DECAY_MIN_INTERVAL_NS;
  uint64_t quick = delay / QM_QUICK_SWEEP_DIVISOR;
  quick = quick > QM_DECAY_MIN_INTERVAL_NS ? quick : QM_DECAY_MIN_INTERVAL_NS;
  /* Called when the earlier of the next quick sweep and the next pass is due. */
  _qm_heap_sweep_small_pages(heap);
  heap->decay_next_ns = now + quick;
  if (now < heap->decay_pass_ns) {
    if (heap->decay_pass_ns < heap->decay_next_ns)
      heap->decay_next_ns = heap->decay_pass_ns;
    return;
  }
  heap->decay_pass_ns = now + interval;
  heap->eager_purge_left = qm_eager_purge_budget();
  heap->idle_uncarve_left = qm_idle_uncarve_budget();
  /* Blocks held for other heaps: no later than one decay interval. */
  _qm_heap_flush_remote(heap);
  qm_span_lock_enter(heap);
  decay_pages(heap, delay == 0, false);
  uint64_t span_delay = delay / QM_SPAN_DELAY_DIVISOR;
  uint64_t spans_dirty_before = now > span_delay ? now - span_delay + 1 : 0;
  _qm_heap_purge_spans(heap, spans_dirty_before, false);
  release_purged_segments(heap);
  /* Segments of exited threads in which every block has been freed since: their memory would
   * otherwise wait for a thread that needs a segment. Not into a first-class heap (segment.c). */
  if (heap != &_qm_empty_heap && !qm_heap_is_user(heap) && _qm_segment_abandoned_count() > 0)
    _qm_segment_collect_free(heap);
  qm_span_lock_leave(heap);
  _qm_segment_cache_decay(now);
  _qm_huge_cache_decay(now);
  uint64_t due = atomic_load_explicit(&others_due_ns, memory_order_relaxed);
  if (now >= due && atomic_compare_exchange_strong_explicit(&others_due_ns, &due, now + interval,
                                                            memory_order_relaxed, memory_order_relaxed)) {
    _qm_purge_other_heaps(heap, spans_dirty_before);
    _qm_segment_abandoned_decay(now);
  }
}

qm_cold bool _qm_heap_near_peak(qm_heap_t *heap, size_t bytes) {
  uint64_t delay = qm_purge_delay_ns();
  if (delay == 0)
    return true; /* everything goes back at once */
  uint64_t now = _qm_os_now_coarse_ns();
  if (now < heap->peak_purges_off_until_ns)
    return false;
  size_t peak = 0;
  size_t resident = _qm_os_resident_bytes(&peak);
  if (resident == 0 || peak == 0)
    return true; /* unknown */
  size_t margin = peak / QM_PEAK_MARGIN_DIVISOR;
  margin = margin > bytes ? margin : bytes;
  margin = margin > QM_PEAK_MARGIN_MIN ? margin : QM_PEAK_MARGIN_MIN;
  /* What this heap purged at once since its last decay pass counts as still resident: a program
   * that frees two big blocks at its peak is at the peak for the second as for the first. */
  size_t budget = qm_eager_purge_budget();
  size_t purged = heap->eager_purge_left < budget ? budget - heap->eager_purge_left : 0;
  if (resident + purged + margin > peak)
    return true;
  heap->peak_purges_off_until_ns = now + QM_PEAK_RECHECK_NS;
  return false;
}

void _qm_heap_note_peak_purge(qm_heap_t *heap, const void *start, size_t bytes) {
  uint64_t now = _qm_os_now_coarse_ns();
  qm_purged_range_t *range = &heap->peak_purges[heap->peak_purge_count++ % QM_PEAK_PURGE_RING];
  qm_assert_internal(bytes <= QM_SEGMENT_SIZE);
  range->start = (uintptr_t)start;
  range->bytes = (uint32_t)bytes;
  range->at_tick = (uint32_t)(now >> QM_PURGED_TICK_SHIFT);
  heap->peak_purge_last_ns = now;
}

void _qm_heap_note_refault(qm_heap_t *heap, const void *start, size_t bytes) {
  uint64_t now = _qm_os_now_coarse_ns();
  uint64_t window = qm_purge_delay_ns() / QM_REFAULT_WINDOW_DIVISOR;
  /* No purge for the peak within the window (the common case), or paused (the refaults of one
   * burst count once). */
  if (heap->peak_purge_last_ns + window <= now || now < heap->peak_refault_ns)
    return;
  uintptr_t lo = (uintptr_t)start, hi = lo + bytes;
  uint32_t now_tick = (uint32_t)(now >> QM_PURGED_TICK_SHIFT);
  size_t taken_back = 0;
  for (size_t i = 0; i < QM_PEAK_PURGE_RING; i++) {
    const qm_purged_range_t *range = &heap->peak_purges[i];
    uint64_t age = (uint64_t)(uint32_t)(now_tick - range->at_tick) << QM_PURGED_TICK_SHIFT;
    uintptr_t end = range->start + range->bytes;
    if (age < window && range->start < hi && lo < end)
      taken_back += (end < hi ? end : hi) - (range->start > lo ? range->start : lo);
  }
  if (taken_back == 0)
    return;
  heap->peak_refault_bytes += taken_back;
  if (heap->peak_refault_bytes < QM_REFAULT_PAUSE_AFTER)
    return;
  uint32_t streak = heap->peak_refault_streak;
  if (now < heap->peak_refault_ns + (window << streak))
    streak = streak < QM_REFAULT_STREAK_MAX ? streak + 1 : streak;
  else
    streak = 0;
  heap->peak_refault_streak = streak;
  heap->peak_refault_ns = now;
  if (streak >= QM_REFAULT_PAUSE_STREAK)
    heap->peak_refault_ns = heap->peak_purges_off_until_ns = now + (window << streak);
}

/* Measured (full size, 4 repetitions, the library before and glibc in one run): peak RSS of
 * `python` 26.18 → 25.71 MiB, `python-malloc` 27.03 → 26.56, `cc` 39.81 → 39.24 (glibc 24.87, 25.65,
 * 37.99), page faults +0-6%; `realloc` 3.5k → 9k faults (1.58 → 1.62 s, within its spread). Purging
 * every dirty span on growth instead (any age) took `python` to 25.1 MiB, but `realloc` to a
 * million page faults: what it frees, it takes back within a millisecond. */
void _qm_heap_growth_pass(qm_heap_t *heap) {
  heap->grown_bytes = 0;
  uint64_t now = _qm_os_now_coarse_ns();
  bool near_peak = _qm_heap_near_peak(heap, 0);
  qm_span_lock_enter(heap);
  if (near_peak) { /* both halves purge for the peak ("Purges for the peak") */
    decay_pages(heap, false, true);
    _qm_heap_purge_spans(heap, heap->growth_pass_ns, true);
  }
  heap->growth_pass_ns = now;
  qm_span_lock_leave(heap);
}

bool _qm_heap_purge_all(qm_heap_t *heap) {
  qm_span_lock_enter(heap);
  bool released = decay_pages(heap, true, false);
  /* Thin every sparse page, whatever its mark. */
  qm_purge_list_t purges;
  purges.count = 0;
  for (size_t cls = 0; cls < QM_CLASS_COUNT; cls++)
    for (qm_page_t *page = heap->class_queue[cls].first; page != NULL; page = page->next)
      if (page->used > 0 && page->hole_blocks + page->used < page->capacity)
        released |= page_thin(page, &purges) > 0;
  _qm_os_purge_flush(&purges);
  released |= _qm_heap_purge_spans(heap, UINT64_MAX, false);
  released |= release_purged_segments(heap);
  qm_span_lock_leave(heap);
  return released;
}
