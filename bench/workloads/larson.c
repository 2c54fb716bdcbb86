/* larson - a server whose requests are handled by whichever thread is free.
 *
 * Models: a pool of worker threads sharing one table of live objects (sessions, buffers). Each
 * step a worker picks a random entry of the whole table, puts a new object of random size there
 * and frees the object it replaced. Most objects are therefore freed by a thread other than the
 * one that allocated them, which exercises the cross-thread free path and the way an allocator
 * returns memory to its owner. It follows the idea of the Larson and Krishnan server benchmark.
 *
 * The table has 1,000 entries per thread and is filled before the measured phase. Every thread
 * does a fixed number of rounds, so the total work grows with --threads and ops_per_sec is the
 * throughput of the thread-scaling curve. Sizes: 90% from 16 B to 1 KiB, 10% up to 8 KiB.
 * About one malloc and one free in 64 are timed, into per-thread latency histograms.
 */
#include <stdatomic.h>

#include "harness.h"

#define SLOTS_PER_THREAD 1000
#define SAMPLE_MASK 63 /* one call in 64 is timed */

struct worker {
  struct qmb_hist malloc_ns, free_ns;
  uint64_t checksum;
  struct qmb_rng rng;
};

struct larson {
  _Atomic(void *) *slots; /* every entry always holds one live stamped block */
  size_t slot_count;
  uint64_t rounds;
  struct worker **workers;
};

static size_t random_size(struct qmb_rng *r) {
  return qmb_rng_percent(r, 90) ? qmb_rng_range(r, 16, 1024) : qmb_rng_range(r, 1025, 8192);
}

static void *new_block(struct qmb_rng *r) {
  size_t n = random_size(r);
  void *p = malloc(n);
  if (!p)
    qmb_die("malloc failed");
  qmb_stamp(p, n, (uint32_t)qmb_rng_next(r));
  return p;
}

static void run_worker(void *ctx, unsigned index) {
  struct larson *l = ctx;
  struct worker *w = l->workers[index];
  struct qmb_rng *r = &w->rng;
  for (uint64_t i = 0; i < l->rounds; i++) {
    size_t n = random_size(r);
    uint32_t tag = (uint32_t)qmb_rng_next(r);
    size_t slot = (size_t)qmb_rng_below(r, l->slot_count);
    void *p;
    if ((i & SAMPLE_MASK) == 0) {
      uint64_t t0 = qmb_now_ns();
      p = malloc(n);
      qmb_hist_add(&w->malloc_ns, qmb_now_ns() - t0);
    } else {
      p = malloc(n);
    }
    if (!p)
      qmb_die("malloc failed");
    qmb_stamp(p, n, tag);
    /* The exchange hands the old block to exactly this thread; acq_rel orders its stamp (written by
     * another thread) before our check. */
    void *old = atomic_exchange_explicit(&l->slots[slot], p, memory_order_acq_rel);
    size_t old_n;
    w->checksum += qmb_check_self(old, &old_n);
    if ((i & SAMPLE_MASK) == SAMPLE_MASK / 2) {
      uint64_t t0 = qmb_now_ns();
      free(old);
      qmb_hist_add(&w->free_ns, qmb_now_ns() - t0);
    } else {
      free(old);
    }
  }
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "larson",
                 "server simulation: threads replace random entries of a shared table of blocks", 2,
                 QMB_MAX_THREADS);
  struct larson l = {
      .slot_count = (size_t)SLOTS_PER_THREAD * args.threads,
      .rounds = QMB_BY_SIZE(&args, 50000, 1000000, 8000000),
  };
  struct qmb_rng rng;
  qmb_rng_init(&rng, args.seed, 0);
  l.slots = qmb_xcalloc(l.slot_count, sizeof *l.slots);
  for (size_t i = 0; i < l.slot_count; i++)
    atomic_init(&l.slots[i], new_block(&rng));
  l.workers = qmb_xcalloc(args.threads, sizeof *l.workers);
  for (unsigned t = 0; t < args.threads; t++) {
    l.workers[t] = qmb_xcalloc(1, sizeof **l.workers);
    qmb_rng_init(&l.workers[t]->rng, args.seed, t + 1);
  }
  double overhead = qmb_timer_overhead_ns();

  double seconds = qmb_run_threads(args.threads, run_worker, &l);

  struct qmb_hist *malloc_ns = qmb_xcalloc(1, sizeof *malloc_ns);
  struct qmb_hist *free_ns = qmb_xcalloc(1, sizeof *free_ns);
  uint64_t checksum = 0;
  for (unsigned t = 0; t < args.threads; t++) {
    qmb_hist_merge(malloc_ns, &l.workers[t]->malloc_ns);
    qmb_hist_merge(free_ns, &l.workers[t]->free_ns);
    checksum += l.workers[t]->checksum;
    free(l.workers[t]);
  }
  for (size_t i = 0; i < l.slot_count; i++) {
    void *p = atomic_load_explicit(&l.slots[i], memory_order_relaxed);
    size_t n;
    checksum += qmb_check_self(p, &n);
    free(p);
  }
  qmb_result_begin(&args, l.rounds * args.threads, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("slots", l.slot_count);
  qmb_result_latency(malloc_ns, free_ns, overhead);
  qmb_result_end();
  free(malloc_ns);
  free(free_ns);
  free(l.workers);
  free(l.slots);
  return 0;
}
