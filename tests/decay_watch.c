/* The decay passes read only the pages of each segment's watch bitmap (types.h, decay_watch;
 * purge.c): a pass stops watching a page that is full or thinned, and whatever can give the pass
 * something to do with it again must watch it once more. A page left unwatched wrongly is never
 * thinned or released by the passes; the heap validator checks that every page not watched is full
 * or thinned.
 *
 * In a thread of its own (an empty heap), with 256-byte blocks (64 to a 16 KiB page):
 *   1. fill a few dozen pages, and one more that stays at the front of the class's queue (the
 *      passes never thin the page the class allocates from); the decay passes see the others full
 *      and stop watching them;
 *   2. free all but every 32nd block of those pages, and the whole front page: the first free into
 *      each full page must watch it again, so that the passes thin it: every OS page that holds no
 *      kept block must be given back;
 *   2b. allocate a few blocks: they come from a thinned page, which must be watched again;
 *   3. free the kept blocks: the free fast path empties thinned pages, which the passes no longer
 *      watch; while the count of emptied pages is ahead of the last sweep (no small allocation
 *      runs the periodic one here), a pass must read every descriptor, find them, and give them
 *      back to the span layer: the class's page count, from the statistics, falls to at most the
 *      front page.
 * The passes run from the slow paths when due: the waits below sleep and make a slow-path call
 * (a large block) every 10 ms. Nothing is timed; the waits give up after 5 s. */
#include <unistd.h>

#include "qmt.h"
#include "stats_api.h"

#define SIZE 256
#define PER_PAGE 64
#define COUNT (PER_PAGE * 48) /* 48 pages */
#define KEEP_EVERY 32         /* one kept block in every other OS page */
#define WAIT_STEPS 500
#define AGAIN 16 /* blocks allocated from a thinned page */

static void *blocks[COUNT];
static void *front[PER_PAGE];

static bool is_kept(size_t i) { return i % KEEP_EVERY == 0; }

/* Freed blocks that lie on a resident OS page holding no kept block. */
static size_t freed_blocks_resident(void) {
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  size_t resident = 0;
  for (size_t i = 0; i < COUNT; i++) {
    if (is_kept(i))
      continue;
    uintptr_t first = (uintptr_t)blocks[i] / os_page, last = ((uintptr_t)blocks[i] + SIZE - 1) / os_page;
    bool shared = false;
    for (size_t k = 0; k < COUNT && !shared; k += KEEP_EVERY) {
      uintptr_t kept_first = (uintptr_t)blocks[k] / os_page;
      uintptr_t kept_last = ((uintptr_t)blocks[k] + SIZE - 1) / os_page;
      shared = kept_first <= last && first <= kept_last;
    }
    if (!shared)
      resident += qmt_resident_os_pages(blocks[i], SIZE);
  }
  return resident;
}

/* Pages of the class of SIZE-byte blocks. */
static size_t class_pages(void) {
  qm_stats_t stats;
  if (!qmt_stats_get(&stats))
    return 0;
  for (size_t row = 0; row < QM_STATS_SMALL_CLASSES; row++)
    if (stats.rows[row].block_size == SIZE)
      return stats.rows[row].pages;
  CHECKF(false, "no class of %d-byte blocks", SIZE);
  return 0;
}

static void *watched_again(void *arg) {
  (void)arg;
  for (size_t i = 0; i < COUNT; i++) {
    blocks[i] = T_MALLOC(SIZE);
    CHECK(blocks[i] != NULL);
    if (blocks[i] == NULL)
      return NULL;
    memset(blocks[i], (int)(i & 0xFF), SIZE);
  }
  for (size_t i = 0; i < PER_PAGE; i++) {
    front[i] = T_MALLOC(SIZE);
    CHECK(front[i] != NULL);
  }
  /* 1. Enough passes to see the full pages twice. */
  for (int step = 0; step < 30; step++)
    qmt_slow_path_pause();
  CHECKF(qmt_heap_validate(), "the heap validator failed with full pages");

  /* 2. Sparse pages, thinned by the passes. */
  for (size_t i = 0; i < COUNT; i++)
    if (!is_kept(i))
      T_FREE(blocks[i]);
  for (size_t i = 0; i < PER_PAGE; i++)
    T_FREE(front[i]);
  size_t resident = freed_blocks_resident();
  for (int step = 0; step < WAIT_STEPS && resident != 0; step++) {
    qmt_slow_path_pause();
    resident = freed_blocks_resident();
  }
  CHECKF(resident == 0,
         "%zu freed blocks lie on OS pages that hold no live block and stayed resident for 5 s: "
         "pages freed into after they were full were not thinned",
         resident);
  CHECKF(qmt_heap_validate(), "the heap validator failed with thinned pages");

  /* 2b. A pass after the one that thinned them stops watching the thinned pages. The class
   * allocates again: freed blocks come before fresh memory, so from a thinned page, which is in
   * use again and must be watched. */
  for (int step = 0; step < 30; step++)
    qmt_slow_path_pause();
  void *again[AGAIN];
  for (size_t i = 0; i < AGAIN; i++) {
    again[i] = T_MALLOC(SIZE);
    CHECK(again[i] != NULL);
  }
  CHECKF(qmt_heap_validate(), "the heap validator failed after a thinned page was allocated from again");
  for (size_t i = 0; i < AGAIN; i++)
    T_FREE(again[i]);

  /* 3. The thinned pages empty through the free fast path. */
  for (size_t i = 0; i < COUNT; i += KEEP_EVERY) {
    CHECK(((unsigned char *)blocks[i])[SIZE - 1] == (unsigned char)(i & 0xFF));
    T_FREE(blocks[i]);
  }
  CHECKF(qmt_heap_validate(), "the heap validator failed after thinned pages emptied");
  size_t pages = class_pages();
  for (int step = 0; step < WAIT_STEPS && pages > 1; step++) {
    qmt_slow_path_pause();
    pages = class_pages();
  }
  CHECKF(pages <= 1, "the %d-byte class kept %zu pages for 5 s after every block was freed", SIZE, pages);
  CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("decay_watch");
  if (qmt_strict && qmt_purges_visible())
    qmt_in_thread(watched_again);
  return check_result("decay_watch");
}
