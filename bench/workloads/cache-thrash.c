/* cache-thrash - active false sharing: do threads' small blocks share cache lines?
 *
 * Models: threads that each keep a small, hot, private object (a counter, a small state record)
 * for a while, then replace it. Each thread repeatedly mallocs a block of 8 to 64 bytes, writes
 * to it 1,000 times and frees it. An allocator that gives blocks of one cache line to different
 * threads makes those writes bounce the line between cores, and the run slows down a lot. It
 * belongs to the family of the cache-thrash test of the Hoard allocator papers.
 *
 * Each thread does a fixed number of iterations, so the total work grows with --threads.
 */
#include "harness.h"

#define WRITES 1000

struct thrash {
  uint64_t iterations; /* per thread */
  uint64_t seed;
  uint64_t checksum[QMB_MAX_THREADS];
};

/* Writes the block many times through a volatile pointer, so every write reaches memory (the
 * cache), then stamps it. */
static void hammer(unsigned char *p, size_t n, uint32_t tag) {
  volatile unsigned char *v = p;
  size_t k = 0;
  for (int i = 0; i < WRITES; i++) {
    v[k] = (unsigned char)(v[k] + 1);
    if (++k == n)
      k = 0;
  }
  qmb_stamp(p, n, tag);
}

static void run_worker(void *ctx, unsigned index) {
  struct thrash *t = ctx;
  struct qmb_rng r;
  qmb_rng_init(&r, t->seed, index);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < t->iterations; i++) {
    size_t n = qmb_rng_range(&r, 8, 64);
    unsigned char *p = malloc(n);
    if (!p)
      qmb_die("malloc failed");
    hammer(p, n, (uint32_t)i);
    sum += qmb_check(p, n);
    free(p);
  }
  t->checksum[index] = sum;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "cache-thrash",
                 "active false sharing: threads malloc 8-64 B blocks, write each 1,000 times, free", 2,
                 QMB_MAX_THREADS);
  static struct thrash t;
  t.iterations = QMB_BY_SIZE(&args, 20000, 400000, 3000000);
  t.seed = args.seed;

  double seconds = qmb_run_threads(args.threads, run_worker, &t);

  uint64_t checksum = 0;
  for (unsigned i = 0; i < args.threads; i++)
    checksum += t.checksum[i];
  qmb_result_begin(&args, t.iterations * args.threads, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("writes_per_block", WRITES);
  qmb_result_end();
  return 0;
}
