/* Empty pages of the classes up to 1 KiB that sit behind the front of their queue go back to the
 * span layer at the next quick sweep, a sixteenth of the purge delay after the last (purge.c, "Quick
 * sweeps"), where the decay passes would wait two passes of half the delay; pages of the classes
 * above 1 KiB wait for the passes as before.
 *
 * The purge delay is set to 8 s: quick sweeps every 500 ms, decay passes every 4 s, so that a page
 * emptied now is released by a decay pass after 4 s at the earliest. Each case runs in a thread of
 * its own (an empty heap) and fills PAGES whole pages of one class and one block of the next page
 * (the class's current page), then frees every block of the first PAGES - 1 pages: those pages are
 * empty and behind the front of the queue.
 *   small_class_released   64-byte blocks (16 KiB pages): the class's page count in the statistics
 *                          must fall by PAGES - 1 within 3 s. The wait sleeps and makes a slow-path
 *                          call (a large block) every 10 ms, which runs the schedule when due.
 *   big_class_kept         2 KiB blocks (64 KiB pages): the count must stay as it is for 1.2 s,
 *                          more than two quick sweeps.
 *   drained_pages_kept     64-byte blocks again, freed by another thread (which then exits, so
 *                          that all of them reach the owner's inbox) and collected by the owner's
 *                          slow paths; while a third thread keeps freeing the owner's 128-byte
 *                          blocks, 32 every 10 ms, the owner drains all the time and its quick
 *                          sweeps skip: the count must stay as it is for 1.2 s.
 * Nothing is timed: the waits bound how long the test runs, and the bounds lie between what the
 * quick sweep and the decay passes take. */

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "stats_api.h"

#define PAGES 4
#define MAX_BLOCKS (PAGES * 256 + 1)

static void *blocks[MAX_BLOCKS];

static size_t class_pages(size_t size) {
  qm_stats_t stats;
  qmt_stats_get(&stats);
  return stats.rows[qmt_stats_row(&stats, size)].pages;
}

/* Fills PAGES pages of the class of `size` (per_page blocks each) and one block more. */
static void fill_pages(size_t size, size_t per_page) {
  for (size_t i = 0; i < PAGES * per_page + 1; i++) {
    blocks[i] = T_MALLOC(size);
    CHECK(blocks[i] != NULL);
    if (blocks[i])
      memset(blocks[i], 0x3c, size);
  }
}

/* Frees the blocks of the first PAGES - 1 pages that fill_pages filled. */
static void free_first_pages(size_t per_page) {
  for (size_t i = 0; i < (PAGES - 1) * per_page; i++) {
    T_FREE(blocks[i]);
    blocks[i] = NULL;
  }
}

/* fill_pages, then free_first_pages. Returns the class's page count after the frees. */
static size_t empty_pages_behind_front(size_t size, size_t per_page) {
  fill_pages(size, per_page);
  free_first_pages(per_page);
  CHECKF(qmt_heap_validate(), "the heap validator failed after the frees");
  return class_pages(size);
}

/* Waits up to `steps` times 10 ms, with a slow-path call each time, for the class's page count to
 * fall to `target` or below. Returns the last count. */
static size_t wait_for_pages(size_t size, size_t target, int steps) {
  size_t pages = class_pages(size);
  for (int step = 0; step < steps && pages > target; step++) {
    qmt_slow_path_pause();
    pages = class_pages(size);
  }
  return pages;
}

static void free_rest(size_t size, size_t per_page) {
  for (size_t i = 0; i < PAGES * per_page + 1; i++) {
    if (blocks[i]) {
      CHECKF(((unsigned char *)blocks[i])[size - 1] == 0x3c, "block %zu of %zu bytes was overwritten", i,
             size);
      T_FREE(blocks[i]);
      blocks[i] = NULL;
    }
  }
  CHECK(qmt_heap_validate());
}

static void *small_class_released(void *arg) {
  (void)arg;
  const size_t size = 64, per_page = 16 * KiB / 64;
  size_t before = empty_pages_behind_front(size, per_page);
  CHECKF(before >= PAGES + 1, "the class of %zu bytes has %zu pages after filling %d", size, before,
         PAGES + 1);
  size_t after = wait_for_pages(size, before - (PAGES - 1), 300);
  CHECKF(after <= before - (PAGES - 1),
         "the class of %zu bytes kept %zu of its %d empty pages for 3 s (pages: %zu before, %zu after)", size,
         after - (before - (PAGES - 1)), PAGES - 1, before, after);
  free_rest(size, per_page);
  return NULL;
}

static void *big_class_kept(void *arg) {
  (void)arg;
  const size_t size = 2 * KiB, per_page = 64 * KiB / (2 * KiB);
  size_t before = empty_pages_behind_front(size, per_page);
  CHECKF(before >= PAGES + 1, "the class of %zu bytes has %zu pages after filling %d", size, before,
         PAGES + 1);
  for (int step = 0; step < 120; step++)
    qmt_slow_path_pause();
  size_t after = class_pages(size);
  CHECKF(after == before, "the class of %zu bytes went from %zu to %zu pages within 1.2 s", size, before,
         after);
  free_rest(size, per_page);
  return NULL;
}

static _Atomic bool stream_stop;
#define STREAM_BLOCKS (32 * 200)
static void *stream[STREAM_BLOCKS];

static void *free_first_pages_elsewhere(void *arg) {
  free_first_pages(*(size_t *)arg);
  return NULL; /* the thread's exit sends what it still holds for the owner */
}

static void *free_stream(void *arg) {
  (void)arg;
  for (size_t i = 0; i < STREAM_BLOCKS && !atomic_load(&stream_stop); i += 32) {
    for (size_t k = i; k < i + 32; k++) {
      T_FREE(stream[k]);
      stream[k] = NULL;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void *drained_pages_kept(void *arg) {
  (void)arg;
  const size_t size = 64, per_page = 16 * KiB / 64;
  qm_stats_t stats;
  qmt_stats_get(&stats);
  size_t in_use_before = stats.rows[qmt_stats_row(&stats, size)].blocks_in_use;
  fill_pages(size, per_page);
  for (size_t i = 0; i < STREAM_BLOCKS; i++) {
    stream[i] = T_MALLOC(128);
    CHECK(stream[i] != NULL);
  }
  size_t before = class_pages(size);
  pthread_t freer;
  size_t arg_per_page = per_page;
  CHECK(pthread_create(&freer, NULL, free_first_pages_elsewhere, &arg_per_page) == 0);
  CHECK(pthread_join(freer, NULL) == 0);
  /* Collect: the slow-path calls drain the inbox. */
  size_t in_use = SIZE_MAX, live = per_page + 1;
  for (int step = 0; step < 300 && in_use > in_use_before + live; step++) {
    qmt_slow_path_pause();
    qmt_stats_get(&stats);
    in_use = stats.rows[qmt_stats_row(&stats, size)].blocks_in_use;
  }
  CHECKF(in_use <= in_use_before + live,
         "%zu blocks of %zu bytes in use after the other thread's frees (%zu live)", in_use - in_use_before,
         size, live);
  atomic_store(&stream_stop, false);
  pthread_t streamer;
  CHECK(pthread_create(&streamer, NULL, free_stream, NULL) == 0);
  for (int step = 0; step < 120; step++)
    qmt_slow_path_pause();
  size_t after = class_pages(size);
  atomic_store(&stream_stop, true);
  CHECK(pthread_join(streamer, NULL) == 0);
  CHECKF(after == before, "a heap that drained other threads' frees went from %zu to %zu pages of %zu bytes",
         before, after, size);
  for (size_t i = 0; i < STREAM_BLOCKS; i++)
    if (stream[i])
      T_FREE(stream[i]);
  free_rest(size, per_page);
  return NULL;
}

int main(void) {
  qmt_start("quick_sweep");
  int result = 0;
  if (qmt_strict && qmt_option_set("QMALLOC_PURGE_DELAY", "8s", &result)) {
    CHECK(result == 0);
    qmt_in_thread(small_class_released);
    qmt_in_thread(big_class_kept);
    qmt_in_thread(drained_pages_kept);
  }
  return check_result("quick_sweep");
}
