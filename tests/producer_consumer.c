/* Producer/consumer: one thread allocates every block, another checks and frees it, for many
 * rounds. Memory freed by the consumer must find its way back to the producer: the resident set
 * stays bounded.
 *
 * usage: producer_consumer [blocks-per-pair [pairs [rss-bound-MiB]]]   (defaults: 1000000, 2, 64)
 *   rss-bound-MiB 0: report the resident set but do not check it (sanitizer builds)
 */
#include <pthread.h>

#include "qmt.h"

#define BATCH 256
#define QUEUE 16 /* batches in flight per pair */

struct item {
  unsigned char *p;
  size_t n;
};

struct pair {
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  struct item q[QUEUE][BATCH];
  unsigned head, tail; /* batches taken, batches put */
  bool done;
  int id;
};

static size_t blocks_per_pair = 1000000;
static size_t rss_start, rss_bound_kib = 64 * 1024;
static atomic_size_t rss_max;
static atomic_bool overflow;

static void note_rss(void) {
  size_t rss = qmt_rss_kib();
  size_t m = atomic_load(&rss_max);
  while (rss > m && !atomic_compare_exchange_weak(&rss_max, &m, rss))
    ;
  if (rss_bound_kib && rss > rss_start + 4 * rss_bound_kib)
    atomic_store(&overflow, true); /* clearly unbounded: stop early */
}

static void *producer(void *arg) {
  struct pair *pp = arg;
  qmt_rng r;
  qmt_rng_seed(&r, 100 + (uint64_t)pp->id);
  size_t made = 0;
  while (made < blocks_per_pair && !atomic_load(&overflow)) {
    struct item batch[BATCH];
    for (int i = 0; i < BATCH; i++) {
      size_t n =
          (qmt_below(&r, 1024) == 0) ? 64 * KiB + qmt_below(&r, 3 * MiB) : qmt_random_size(&r, 16 * KiB);
      unsigned char *p = T_MALLOC(n);
      CHECKF(p != NULL, "malloc(%zu)", n);
      if (p)
        qmt_fill(p, n, qmt_seed(p, n));
      batch[i].p = p;
      batch[i].n = n;
    }
    made += BATCH;
    pthread_mutex_lock(&pp->lock);
    while (pp->tail - pp->head == QUEUE)
      pthread_cond_wait(&pp->not_full, &pp->lock);
    memcpy(pp->q[pp->tail % QUEUE], batch, sizeof batch);
    pp->tail++;
    pthread_cond_signal(&pp->not_empty);
    pthread_mutex_unlock(&pp->lock);
    if ((made / BATCH) % 64 == 0)
      note_rss();
  }
  pthread_mutex_lock(&pp->lock);
  pp->done = true;
  pthread_cond_signal(&pp->not_empty);
  pthread_mutex_unlock(&pp->lock);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return NULL;
}

static void *consumer(void *arg) {
  struct pair *pp = arg;
  for (;;) {
    struct item batch[BATCH];
    pthread_mutex_lock(&pp->lock);
    while (pp->head == pp->tail && !pp->done)
      pthread_cond_wait(&pp->not_empty, &pp->lock);
    if (pp->head == pp->tail) {
      pthread_mutex_unlock(&pp->lock);
      break;
    }
    memcpy(batch, pp->q[pp->head % QUEUE], sizeof batch);
    pp->head++;
    pthread_cond_signal(&pp->not_full);
    pthread_mutex_unlock(&pp->lock);
    for (int i = 0; i < BATCH; i++) {
      if (!batch[i].p)
        continue;
      size_t bad = qmt_verify(batch[i].p, batch[i].n, qmt_seed(batch[i].p, batch[i].n));
      CHECKF(bad == SIZE_MAX, "block %p of %zu bytes corrupted at %zu", (void *)batch[i].p, batch[i].n, bad);
      T_FREE(batch[i].p);
    }
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1)
    blocks_per_pair = strtoull(argv[1], NULL, 10);
  int pairs = argc > 2 ? atoi(argv[2]) : 2;
  if (argc > 3)
    rss_bound_kib = strtoull(argv[3], NULL, 10) * 1024;
  if (pairs < 1 || pairs > 64 || blocks_per_pair == 0) {
    fprintf(stderr, "usage: %s [blocks-per-pair [pairs [rss-bound-MiB]]]\n", argv[0]);
    return 2;
  }
  qmt_start("producer_consumer");
  fprintf(stderr, "  %d pair(s), %zu blocks each\n", pairs, blocks_per_pair);
  struct pair *pp = calloc((size_t)pairs, sizeof *pp);
  pthread_t *tid = calloc((size_t)pairs * 2, sizeof *tid);
  CHECK(pp && tid);
  if (!pp || !tid)
    return check_result("producer_consumer");
  rss_start = qmt_rss_kib();
  atomic_store(&rss_max, rss_start);
  for (int i = 0; i < pairs; i++) {
    pthread_mutex_init(&pp[i].lock, NULL);
    pthread_cond_init(&pp[i].not_full, NULL);
    pthread_cond_init(&pp[i].not_empty, NULL);
    pp[i].id = i;
    CHECK(pthread_create(&tid[2 * i], NULL, producer, &pp[i]) == 0);
    CHECK(pthread_create(&tid[2 * i + 1], NULL, consumer, &pp[i]) == 0);
  }
  for (int i = 0; i < 2 * pairs; i++)
    pthread_join(tid[i], NULL);
  note_rss();
  size_t peak = atomic_load(&rss_max);
  fprintf(stderr, "  RSS: %zu KiB at the start, peak %zu KiB, %zu KiB at the end\n", rss_start, peak,
          qmt_rss_kib());
  CHECKF(!atomic_load(&overflow), "RSS grew past %zu MiB: freed memory is not reused",
         4 * rss_bound_kib / 1024);
  if (rss_bound_kib)
    CHECKF(peak < rss_start + rss_bound_kib, "RSS grew by %zu KiB (bound %zu KiB)", peak - rss_start,
           rss_bound_kib);
  for (int i = 0; i < pairs; i++) {
    pthread_mutex_destroy(&pp[i].lock);
    pthread_cond_destroy(&pp[i].not_full);
    pthread_cond_destroy(&pp[i].not_empty);
  }
  free(pp);
  free(tid);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("producer_consumer");
}
