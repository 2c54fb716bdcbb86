/* Blocks other threads free into a heap are drained in shares (heap.c, "Draining the inbox in
 * shares"): a small slow path collects a few blocks of the inbox (16) while more than 128 wait or
 * before it takes a new page, and everything once more than 256 wait; a free that closes a parcel
 * of blocks for another thread collects 32 of its own; everything else that drains (a large
 * allocation, malloc_trim, thread exit) collects all of it.
 *
 * A worker allocates 192 blocks of 80 bytes and another thread frees them all into its inbox.
 * Counted with the statistics (blocks waiting in an inbox count as in use):
 *   - the worker's next slow path collects at least 16 of them and at most a quarter;
 *   - its later slow paths (8 KiB blocks, a page of 8 each) collect shares down to 128 waiting;
 *     then slow paths that switch to a page with free blocks leave the rest alone, and one that
 *     needs a new page collects a share first;
 *   - its frees of another live thread's blocks collect a share each time they close a parcel for
 *     that thread (before any batch is pushed), and the rest by the end;
 *   - with a share of a second round collected, malloc_trim collects the rest; of a third round, a
 *     large allocation; of a fourth, in another worker, that thread's exit;
 *   - of 4096 blocks (a fifth round), the next slow path collects all.
 * The heap validator runs while parcels wait half drained, and the blocks are used again.
 */
#include <pthread.h>

#include "stats_api.h"

#define BLOCKS 192       /* a backlog the shares take */
#define MANY_BLOCKS 4096 /* one a slow path collects at once */
#define BLOCK_SIZE 80
#define BIG 8192
#define MAX_BIG 4000
#define MALLOC_MIN 128  /* what the slow paths leave to the frees (QM_DRAIN_MALLOC_MIN) */
#define FOREIGN 256     /* blocks of another thread the worker frees */
#define FOREIGN_FEW 12  /* of them first: parcels closed, no batch pushed */
#define FOREIGN_SIZE 48 /* another class, so that they do not count in the worker's row */

static void *blocks[MANY_BLOCKS];
static size_t count = BLOCKS; /* how many of blocks[] a round uses */
static void *big[MAX_BIG];

static void *free_all(void *arg) {
  (void)arg;
  void *own = T_MALLOC(32); /* a heap of its own, so the frees go in batches */
  CHECK(own != NULL);
  for (size_t i = 0; i < count; i++)
    T_FREE(blocks[i]);
  T_FREE(own);
  return NULL; /* exit flushes the last batch */
}

/* A thread that allocates FOREIGN blocks and stays alive (its heap keeps its segments) until the
 * worker has freed them all. */
static void *foreign[FOREIGN];
static pthread_mutex_t foreign_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t foreign_cond = PTHREAD_COND_INITIALIZER;
static int foreign_state; /* 0 nothing yet, 1 allocated, 2 freed by the worker */

static void *foreign_owner(void *arg) {
  (void)arg;
  for (size_t i = 0; i < FOREIGN; i++) {
    foreign[i] = T_MALLOC(FOREIGN_SIZE);
    CHECK(foreign[i] != NULL);
  }
  pthread_mutex_lock(&foreign_lock);
  foreign_state = 1;
  pthread_cond_broadcast(&foreign_cond);
  while (foreign_state != 2)
    pthread_cond_wait(&foreign_cond, &foreign_lock);
  pthread_mutex_unlock(&foreign_lock);
  return NULL;
}

static size_t in_use(void) {
  qm_stats_t stats;
  qmt_stats_get(&stats);
  return stats.rows[qmt_stats_row(&stats, BLOCK_SIZE)].blocks_in_use;
}

/* Allocates the blocks (filled) and has another thread free them all: all of them wait. */
static void fill_and_free_remotely(size_t base) {
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], (int)(i & 0xff), BLOCK_SIZE);
  }
  qmt_in_thread(free_all);
  size_t waiting = in_use() - base;
  CHECKF(waiting == count, "%zu of %zu blocks counted in use after the remote frees", waiting, count);
}

/* One small slow path: the first block of a class the worker has not used yet. */
static void one_slow_path(size_t size) {
  void *p = T_MALLOC(size);
  CHECK(p != NULL);
  T_FREE(p);
}

static void *worker(void *arg) {
  (void)arg;
  size_t base = in_use();

  /* Round 1: one slow path takes a share, the following ones the rest. */
  fill_and_free_remotely(base);
  one_slow_path(3000);
  size_t collected = BLOCKS - (in_use() - base);
  CHECKF(collected >= 16 && collected <= BLOCKS / 4,
         "the first slow path after %d remote frees collected %zu blocks (expected a share: 16 to %d)",
         BLOCKS, collected, BLOCKS / 4);
  CHECKF(qmt_heap_validate(), "the heap does not validate with parcels half drained");
  size_t n = 0;
  while (n < MAX_BIG && in_use() - base > MALLOC_MIN) {
    big[n] = T_MALLOC(BIG);
    CHECK(big[n] != NULL);
    n++;
  }
  size_t waiting = in_use() - base;
  CHECKF(waiting <= MALLOC_MIN && waiting > 0,
         "%zu blocks waiting after %zu allocations of %d bytes (about %zu slow paths; expected shares down "
         "to %d or below, not all)",
         waiting, n, BIG, n / 8, MALLOC_MIN);
  /* Every other block back: the pages stay, half used. Allocating as many again switches pages
   * (slow paths that need no new page): they leave the waiting blocks alone. */
  for (size_t i = 0; i < n; i += 2)
    T_FREE(big[i]);
  for (size_t i = 0; i < n; i += 2) {
    big[i] = T_MALLOC(BIG);
    CHECK(big[i] != NULL);
  }
  CHECKF(in_use() - base == waiting,
         "slow paths that switch pages collected %zu blocks with only %zu waiting",
         waiting - (in_use() - base), waiting);
  /* A new page comes only after a share of them. */
  size_t before_new_page = n;
  while (n < before_new_page + 16 && in_use() - base == waiting) {
    big[n] = T_MALLOC(BIG);
    CHECK(big[n] != NULL);
    n++;
  }
  CHECKF(in_use() - base < waiting, "%zu allocations of %d bytes (new pages) collected none of %zu waiting",
         n - before_new_page, BIG, waiting);
  for (size_t i = 0; i < n; i++)
    T_FREE(big[i]);
  CHECK(qmt_heap_validate());

  /* Frees of another thread's blocks: each parcel closed for it collects blocks of the worker's own,
   * before any batch goes (a 48-byte block lists 5 others: 12 frees close a parcel, and a batch
   * is pushed at 32 blocks). */
  pthread_t owner;
  CHECK(pthread_create(&owner, NULL, foreign_owner, NULL) == 0);
  pthread_mutex_lock(&foreign_lock);
  while (foreign_state != 1)
    pthread_cond_wait(&foreign_cond, &foreign_lock);
  pthread_mutex_unlock(&foreign_lock);
  size_t waiting_before = in_use() - base;
  CHECK(waiting_before > 0);
  for (size_t i = 0; i < FOREIGN_FEW; i++)
    T_FREE(foreign[i]);
  CHECKF(in_use() - base < waiting_before,
         "%d frees into another live thread's heap (a parcel closed, no batch pushed) collected none of the "
         "%zu blocks waiting",
         FOREIGN_FEW, waiting_before);
  for (size_t i = FOREIGN_FEW; i < FOREIGN; i++)
    T_FREE(foreign[i]);
  CHECKF(in_use() == base, "%zu blocks still waiting after %d frees into another live thread's heap",
         in_use() - base, FOREIGN);
  pthread_mutex_lock(&foreign_lock);
  foreign_state = 2;
  pthread_cond_broadcast(&foreign_cond);
  pthread_mutex_unlock(&foreign_lock);
  CHECK(pthread_join(owner, NULL) == 0);
  CHECK(qmt_heap_validate());

  /* Round 2: malloc_trim collects what the shares left. (Each round's slow path is the first
   * block of a class new to the thread.) */
  fill_and_free_remotely(base);
  one_slow_path(3500);
  CHECK(in_use() - base < BLOCKS);
  qmt_trim();
  CHECKF(in_use() == base, "malloc_trim left %zu blocks waiting", in_use() - base);

  /* Round 3: a large allocation collects everything (its blocks may free whole spans). */
  fill_and_free_remotely(base);
  one_slow_path(4000);
  void *large = T_MALLOC(256 * 1024);
  CHECK(large != NULL);
  CHECKF(in_use() == base, "a large allocation left %zu blocks waiting", in_use() - base);
  T_FREE(large);

  /* The drained blocks serve again, and hold what is written into them. */
  for (size_t i = 0; i < BLOCKS; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], 0x5a, BLOCK_SIZE);
  }
  for (size_t i = 0; i < BLOCKS; i++) {
    CHECK(((unsigned char *)blocks[i])[0] == 0x5a && ((unsigned char *)blocks[i])[BLOCK_SIZE - 1] == 0x5a);
    T_FREE(blocks[i]);
  }
  CHECK(qmt_heap_validate());

  /* Round 5: a backlog too long for shares (the drains have fallen behind) goes at once. */
  count = MANY_BLOCKS;
  fill_and_free_remotely(base);
  one_slow_path(4500);
  CHECKF(in_use() == base, "the first slow path after %d remote frees left %zu blocks waiting", MANY_BLOCKS,
         in_use() - base);
  count = BLOCKS;
  CHECK(qmt_heap_validate());
  return NULL;
}

/* Round 4: the thread exits with parcels half drained. */
static void *worker_exit(void *arg) {
  (void)arg;
  size_t base = in_use();
  for (size_t i = 0; i < BLOCKS; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
  }
  qmt_in_thread(free_all);
  one_slow_path(3000);
  CHECK(in_use() - base < BLOCKS && in_use() - base > 0);
  return NULL;
}

int main(void) {
  qmt_start("inbox_share");
  if (!qmt_strict) {
    fprintf(stderr, "inbox_share: skipped (qmalloc is not the malloc in use)\n");
    return 0;
  }
  qmt_in_thread(worker);

  size_t base = in_use();
  qmt_in_thread(worker_exit);
  CHECKF(in_use() == base, "%zu blocks still counted in use after the thread exited", in_use() - base);
  CHECK(qmt_heap_validate());
  return check_result("inbox_share");
}
