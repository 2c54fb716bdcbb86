/* A page that the drain of other threads' frees empties stays in its class queue when the heap
 * allocates, and the class's next blocks come from it rather than from a new page (page.c,
 * _qm_page_free_emptied).
 *
 * The main thread fills three pages of 1000-byte blocks (class 1024 B, 64 blocks a page); a worker
 * frees every block of the first page and exits, which hands them to the main thread's inbox; a
 * large block collects the inbox. The class must still have three pages (counted for the sweeps:
 * the heap validates), and the next 64 blocks of the class must all lie in the first page's
 * memory, with no page made meanwhile. */
#include <pthread.h>

#include "stats_api.h"

#define SMALL 1000
#define PER_PAGE 64
#define PAGES 3

static void *blocks[PAGES * PER_PAGE];

static void *free_first_page(void *arg) {
  (void)arg;
  for (size_t i = 0; i < PER_PAGE; i++)
    T_FREE(blocks[i]);
  return NULL;
}

/* The stats row of the class that holds a block of SMALL bytes. */
static size_t class_row(const qm_stats_t *stats) {
  size_t row = 0;
  while (row + 1 < QM_STATS_SMALL_CLASSES && stats->rows[row].block_size < SMALL)
    row++;
  return row;
}

int main(void) {
  qmt_start("drained_page");
  for (size_t i = 0; i < PAGES * PER_PAGE; i++) {
    blocks[i] = T_MALLOC(SMALL);
    CHECK(blocks[i] != NULL);
    if (!blocks[i])
      return check_result("drained_page");
    memset(blocks[i], 0x77, SMALL);
  }
  uintptr_t first = (uintptr_t)blocks[0], last = (uintptr_t)blocks[PER_PAGE - 1];
  if (qmt_strict)
    CHECKF(last - first == (PER_PAGE - 1) * 1024, "the first %d blocks are not one page (%p .. %p)", PER_PAGE,
           (void *)first, (void *)last);

  pthread_t worker;
  CHECK(pthread_create(&worker, NULL, free_first_page, NULL) == 0);
  pthread_join(worker, NULL);
  void *large = T_MALLOC(256 * 1024); /* collects the inbox */
  CHECK(large != NULL);
  CHECK(qmt_heap_validate()); /* the emptied page was counted for the sweeps */

  qm_stats_t stats;
  if (qmt_stats_get(&stats) && qmt_strict) {
    size_t row = class_row(&stats);
    CHECKF(stats.rows[row].block_size == 1024 && stats.rows[row].pages == PAGES,
           "after the drain emptied a page, the %zu-byte class has %zu pages (want %d)",
           stats.rows[row].block_size, stats.rows[row].pages, PAGES);
  }
  void *again[PER_PAGE];
  size_t inside = 0;
  for (size_t i = 0; i < PER_PAGE; i++) {
    again[i] = T_MALLOC(SMALL);
    CHECK(again[i] != NULL);
    inside += (uintptr_t)again[i] >= first && (uintptr_t)again[i] <= last;
  }
  if (qmt_strict) {
    CHECKF(inside == PER_PAGE, "%zu of %d new blocks came from the drained page", inside, PER_PAGE);
    if (qmt_stats_get(&stats)) {
      size_t row = class_row(&stats);
      CHECKF(stats.rows[row].pages == PAGES, "the class made a page: %zu pages (want %d)",
             stats.rows[row].pages, PAGES);
    }
  }
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < PER_PAGE; i++)
    T_FREE(again[i]);
  for (size_t i = PER_PAGE; i < PAGES * PER_PAGE; i++)
    T_FREE(blocks[i]);
  T_FREE(large);
  return check_result("drained_page");
}
