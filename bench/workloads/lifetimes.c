/* lifetimes - objects of very different lifetimes, and threads that come and go.
 *
 * Models: a long-running service with a large, slowly changing cache (a table of 20,000 blocks of
 * 32 B to 4 KiB) whose main thread starts short-lived worker threads in waves, as a thread-per-
 * request server or a job runner does. Each worker allocates bursts of short-lived temporaries,
 * keeps some medium-lived blocks for its whole life, and hands some results back to main, which
 * frees them after the worker has exited. While a wave runs, main replaces random table entries.
 * It combines the ideas of the generational-lifetime and thread-churn allocator benchmarks.
 *
 * The measured phase covers all the waves, thread creation and exit included; --threads is the
 * number of workers per wave (default 2).
 */
#include "harness.h"

#define TABLE 20000
#define BURSTS 40    /* per worker */
#define BURST 64     /* short-lived blocks per burst */
#define KEPT 256     /* medium-lived blocks per worker, freed when it ends */
#define HANDED 64    /* blocks per worker that outlive it; main frees them */
#define REPLACED 400 /* table entries main replaces per wave */

struct slot {
  void *p; /* a live stamped block of n bytes */
  size_t n;
};

struct worker {
  pthread_t id;
  struct qmb_rng rng;
  struct slot handed[HANDED]; /* written by the worker, read by main after the join */
  uint64_t checksum;
  uint64_t ops;
};

static void new_block(struct slot *s, size_t lo, size_t hi, struct qmb_rng *r) {
  s->n = qmb_rng_range(r, lo, hi);
  s->p = malloc(s->n);
  if (!s->p)
    qmb_die("malloc failed");
  qmb_stamp(s->p, s->n, (uint32_t)qmb_rng_next(r));
}

static uint64_t drop_block(struct slot *s) {
  uint32_t tag = qmb_check(s->p, s->n);
  free(s->p);
  return tag;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct slot kept[KEPT], burst[BURST];
  struct qmb_rng r = w->rng; /* a local copy: workers' structs are neighbours in memory */
  uint64_t sum = 0, ops = 0;
  for (int i = 0; i < KEPT; i++)
    new_block(&kept[i], 16, 1024, &r);
  for (int b = 0; b < BURSTS; b++) {
    for (int i = 0; i < BURST; i++)
      new_block(&burst[i], 8, 256, &r);
    for (int i = 0; i < BURST; i++)
      sum += drop_block(&burst[i]);
    /* Medium lifetime: a kept block is now and then replaced. */
    struct slot *k = &kept[qmb_rng_below(&r, KEPT)];
    sum += drop_block(k);
    new_block(k, 16, 1024, &r);
    ops += BURST + 1;
  }
  for (int i = 0; i < HANDED; i++)
    new_block(&w->handed[i], 32, 2048, &r);
  for (int i = 0; i < KEPT; i++)
    sum += drop_block(&kept[i]);
  w->checksum = sum;
  w->ops = ops + KEPT + HANDED;
  return NULL;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "lifetimes",
                 "long-lived table, short-lived bursts and waves of short worker threads", 2, 64);
  unsigned waves = QMB_BY_SIZE(&args, 20, 500, 4000);
  struct qmb_rng rng;
  qmb_rng_init(&rng, args.seed, 0);
  struct slot *table = qmb_xcalloc(TABLE, sizeof *table);
  for (size_t i = 0; i < TABLE; i++)
    new_block(&table[i], 32, 4096, &rng);
  struct worker *workers = qmb_xcalloc(args.threads, sizeof *workers);
  uint64_t checksum = 0, ops = 0;

  uint64_t t0 = qmb_now_ns();
  for (unsigned wave = 0; wave < waves; wave++) {
    for (unsigned i = 0; i < args.threads; i++) {
      qmb_rng_init(&workers[i].rng, args.seed, (uint64_t)wave * args.threads + i + 1);
      if (pthread_create(&workers[i].id, NULL, worker_main, &workers[i]) != 0)
        qmb_die("cannot create a thread");
    }
    for (int i = 0; i < REPLACED; i++) {
      struct slot *s = &table[qmb_rng_below(&rng, TABLE)];
      checksum += drop_block(s);
      new_block(s, 32, 4096, &rng);
    }
    ops += REPLACED;
    for (unsigned i = 0; i < args.threads; i++) {
      pthread_join(workers[i].id, NULL);
      for (int h = 0; h < HANDED; h++)
        checksum += drop_block(&workers[i].handed[h]);
      checksum += workers[i].checksum;
      ops += workers[i].ops;
    }
  }
  double seconds = qmb_seconds_since(t0);

  for (size_t i = 0; i < TABLE; i++)
    checksum += drop_block(&table[i]);
  free(table);
  free(workers);
  qmb_result_begin(&args, ops, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("waves", waves);
  qmb_result_u64("threads_started", (uint64_t)waves * args.threads);
  qmb_result_end();
  return 0;
}
