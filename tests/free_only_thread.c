/* A thread that never allocates, only frees other threads' blocks (the consumer of a pipeline),
 * batches those frees as any other thread does (free.c): it takes a heap of its own for its remote
 * batches at its first such free, instead of pushing every block onto the owner's inbox with a
 * compare-and-swap of its own.
 *
 * Counted with the statistics (blocks waiting for their owner count as in use):
 *   - a consumer frees HELD blocks, fewer than a batch, and waits: the main thread's trim (which
 *     collects its inbox) finds none of them, since they are still in the consumer's batch;
 *   - the consumer's exit hands the batch over: the next trim collects every one;
 *   - a consumer frees MANY blocks and stays alive: all but the last open batch have arrived;
 *   - after its exit, every block is collected, the heap validates and the blocks are used again;
 *   - a consumer that has called qm_thread_done (a thread that has given its heap back, as one
 *     whose exit has begun) takes no heap for its frees: HELD blocks freed arrive at once.
 */
#include <pthread.h>

#include "stats_api.h"

#define HELD 20 /* fewer than a batch (QM_REMOTE_BATCH, 32) */
#define MANY 3000
#define BATCH_MAX 63 /* the most blocks a batch holds before it is pushed */
#define BLOCK_SIZE 80

static void *blocks[MANY];
static size_t count;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int state;       /* 0 started, 1 freed everything, 2 may exit */
static bool done_first; /* the consumer calls qm_thread_done before its frees */

static void set_state(int value) {
  pthread_mutex_lock(&lock);
  state = value;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
}

static void wait_state(int value) {
  pthread_mutex_lock(&lock);
  while (state != value)
    pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
}

/* Frees blocks[0 .. count) and stays alive until told to exit; allocates nothing. */
static void *consumer(void *arg) {
  (void)arg;
  if (done_first)
    CHECK(qmt_thread_done());
  for (size_t i = 0; i < count; i++)
    T_FREE(blocks[i]);
  set_state(1);
  wait_state(2);
  return NULL;
}

static size_t in_use(void) {
  qm_stats_t stats;
  qmt_stats_get(&stats);
  return stats.rows[qmt_stats_row(&stats, BLOCK_SIZE)].blocks_in_use;
}

/* Allocates count blocks (filled), has a new consumer free them all, trims while it waits, and
 * returns how many of them were still counted in use then. After the consumer's exit, checks that
 * a trim collects every block. */
static size_t round_of(size_t n, size_t base) {
  count = n;
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], (int)(i & 0xff), BLOCK_SIZE);
  }
  state = 0;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, consumer, NULL) == 0);
  wait_state(1);
  qmt_trim();
  size_t waiting = in_use() - base;
  set_state(2);
  CHECK(pthread_join(t, NULL) == 0);
  qmt_trim();
  CHECKF(in_use() == base, "%zu blocks still counted in use after the consumer exited and a trim",
         in_use() - base);
  CHECK(qmt_heap_validate());
  return waiting;
}

int main(void) {
  qmt_start("free_only_thread");
  if (!qmt_strict) {
    fprintf(stderr, "free_only_thread: skipped (qmalloc is not the malloc in use)\n");
    return 0;
  }
  void *own = T_MALLOC(16); /* the main thread's heap */
  CHECK(own != NULL);
  size_t base = in_use();

  size_t waiting = round_of(HELD, base);
  CHECKF(waiting == HELD,
         "%zu of %d blocks freed by a thread that never allocates reached their owner before a batch "
         "was full (expected none: they wait in its batch)",
         HELD - waiting, HELD);

  waiting = round_of(MANY, base);
  CHECKF(waiting < BATCH_MAX, "%zu of %d blocks freed by a thread that never allocates had not arrived",
         waiting, MANY);

  done_first = true;
  waiting = round_of(HELD, base);
  CHECKF(waiting == 0,
         "%zu of %d blocks freed by a thread that had called qm_thread_done waited (expected none: no "
         "heap, no batch)",
         waiting, HELD);
  done_first = false;

  /* The blocks are used again. */
  for (size_t i = 0; i < MANY; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
  }
  CHECK(in_use() - base == MANY);
  for (size_t i = 0; i < MANY; i++)
    T_FREE(blocks[i]);
  T_FREE(own);
  CHECK(qmt_heap_validate());
  return check_result("free_only_thread");
}
