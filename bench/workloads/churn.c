/* churn - a long-running single-threaded program with a bounded working set.
 *
 * Models: a compiler or a constraint solver, which keeps a working set of objects of very mixed
 * sizes (mostly small nodes, some buffers, a few big arrays) and keeps replacing them. It belongs
 * to the family of random-replacement benchmarks: a table of 10,000 live blocks, each step frees
 * the block of a random entry and allocates a new one of a random size into it.
 *
 * Sizes: 70% from 8 to 128 B, 25% up to 4 KiB, 5% up to 64 KiB. Filling the table at the start and
 * emptying it at the end are part of the measured work (10,000 pairs beside millions of steps).
 * With --threads=N, N threads each run their own table (nothing is shared).
 */
#include "harness.h"

#define SLOTS 10000

struct slot {
  void *p; /* a live stamped block of n bytes */
  size_t n;
};

struct churn {
  uint64_t steps; /* per thread */
  uint64_t seed;
  uint64_t checksum[QMB_MAX_THREADS];
};

static size_t random_size(struct qmb_rng *r) {
  uint64_t pick = qmb_rng_below(r, 100);
  if (pick < 70)
    return qmb_rng_range(r, 8, 128);
  if (pick < 95)
    return qmb_rng_range(r, 129, 4096);
  return qmb_rng_range(r, 4097, 65536);
}

static void fill_slot(struct slot *s, struct qmb_rng *r) {
  s->n = random_size(r);
  s->p = malloc(s->n);
  if (!s->p)
    qmb_die("malloc failed");
  qmb_stamp(s->p, s->n, (uint32_t)qmb_rng_next(r));
}

static void run_worker(void *ctx, unsigned index) {
  struct churn *c = ctx;
  struct qmb_rng r;
  qmb_rng_init(&r, c->seed, index);
  struct slot *slots = qmb_xcalloc(SLOTS, sizeof *slots);
  for (size_t i = 0; i < SLOTS; i++)
    fill_slot(&slots[i], &r);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < c->steps; i++) {
    struct slot *s = &slots[qmb_rng_below(&r, SLOTS)];
    sum += qmb_check(s->p, s->n);
    free(s->p);
    fill_slot(s, &r);
  }
  for (size_t i = 0; i < SLOTS; i++) {
    sum += qmb_check(slots[i].p, slots[i].n);
    free(slots[i].p);
  }
  free(slots);
  c->checksum[index] = sum;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "churn",
                 "random replacement in a table of 10,000 blocks of mixed sizes (8 B to 64 KiB)", 1,
                 QMB_MAX_THREADS);
  static struct churn c;
  c.steps = QMB_BY_SIZE(&args, 100000, 4000000, 25000000);
  c.seed = args.seed;

  double seconds = qmb_run_threads(args.threads, run_worker, &c);

  uint64_t checksum = 0;
  for (unsigned i = 0; i < args.threads; i++)
    checksum += c.checksum[i];
  qmb_result_begin(&args, (c.steps + SLOTS) * args.threads, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("slots", SLOTS);
  qmb_result_end();
  return 0;
}
