/* Other threads' blocks are counted: the live blocks of a running thread (read from its heap while
 * it waits), and those of a thread that exited without freeing them (their segments are abandoned;
 * the statistics walk the abandoned segments too). Freeing the latter from the main thread and
 * trimming (which adopts the abandoned segments) takes them out again. At level 2 the requests of
 * an exited thread stay in the totals. Threads are synchronised with a barrier, so every snapshot
 * is taken while the others stand still. */
#include <pthread.h>

#include "stats_api.h"

enum { SIZE = 1900, CLASS_SIZE = 1920, RUNNING_COUNT = 500, EXITED_COUNT = 300 };

static pthread_barrier_t barrier;
static void *running_blocks[RUNNING_COUNT];
static void *exited_blocks[EXITED_COUNT];

static void *running_thread(void *arg) {
  (void)arg;
  for (size_t i = 0; i < RUNNING_COUNT; i++)
    running_blocks[i] = T_MALLOC(SIZE);
  pthread_barrier_wait(&barrier); /* main takes its snapshot now */
  pthread_barrier_wait(&barrier);
  for (size_t i = 0; i < RUNNING_COUNT; i++)
    T_FREE(running_blocks[i]);
  return NULL;
}

static void *exiting_thread(void *arg) {
  (void)arg;
  for (size_t i = 0; i < EXITED_COUNT; i++)
    exited_blocks[i] = T_MALLOC(SIZE);
  return NULL;
}

static long long blocks_delta(const qm_stats_t *after, const qm_stats_t *before, size_t row) {
  return (long long)after->rows[row].blocks_in_use - (long long)before->rows[row].blocks_in_use;
}

int main(void) {
  qmt_start("stats_threads");
  qm_stats_t before, during, after;
  void *own = T_MALLOC(16); /* the main thread has a heap of its own, which trim adopts into */
  if (!qmt_stats_get(&before) || !qmt_strict)
    return check_result("stats_threads");
  if (before.level == 0) {
    fprintf(stderr, "  statistics not built in (level 0): nothing to check\n");
    return check_result("stats_threads");
  }
  size_t row = qmt_stats_row(&before, SIZE);
  CHECK(before.rows[row].block_size == CLASS_SIZE);

  /* A running thread's live blocks */
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, running_thread, NULL) == 0);
  pthread_barrier_wait(&barrier);
  qmt_stats_get(&during);
  pthread_barrier_wait(&barrier);
  pthread_join(t, NULL);
  CHECKF(blocks_delta(&during, &before, row) == RUNNING_COUNT, "a running thread's blocks: +%lld",
         blocks_delta(&during, &before, row));
  CHECK(during.heaps >= 2);
  qmt_stats_get(&after);
  CHECKF(blocks_delta(&after, &before, row) == 0, "after it freed them: %+lld",
         blocks_delta(&after, &before, row));

  /* An exited thread's live blocks */
  CHECK(pthread_create(&t, NULL, exiting_thread, NULL) == 0);
  pthread_join(t, NULL);
  qmt_stats_get(&after);
  CHECKF(blocks_delta(&after, &before, row) == EXITED_COUNT, "an exited thread's blocks: +%lld",
         blocks_delta(&after, &before, row));
  CHECKF(after.segments_abandoned >= 1, "%zu abandoned segments", after.segments_abandoned);
  if (after.level >= 2) {
    long long requests = (long long)after.rows[row].requests - (long long)before.rows[row].requests;
    CHECKF(requests == RUNNING_COUNT + EXITED_COUNT, "requests of both threads: +%lld", requests);
  }

  for (size_t i = 0; i < EXITED_COUNT; i++)
    T_FREE(exited_blocks[i]);
  qmt_trim();
  qmt_stats_get(&after);
  CHECKF(blocks_delta(&after, &before, row) == 0, "after the frees and a trim: %+lld",
         blocks_delta(&after, &before, row));
  CHECK(after.segments_abandoned == 0);
  if (after.level >= 2)
    CHECK(after.peak_bytes_in_use >= (size_t)RUNNING_COUNT * CLASS_SIZE);
  pthread_barrier_destroy(&barrier);
  T_FREE(own);
  CHECK(qmt_heap_validate());
  return check_result("stats_threads");
}
