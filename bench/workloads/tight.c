/* tight - the allocator's fast paths in isolation.
 *
 * Models: code that allocates and frees small objects of one size in a hot loop (temporary
 * buffers, list nodes). For each of 16, 32, 64, 128 and 256 bytes it runs two loops: a batch loop
 * that mallocs 100 blocks and then frees them all, and a loop of single malloc/free pairs. This
 * is the family of micro-benchmarks that time a malloc/free pair in a loop; nearly every call
 * stays on the allocator's thread-local fast path.
 *
 * Each block gets its first and last bytes written and checked before it is freed. With
 * --threads=N, N threads each run the whole sequence on their own (no sharing). Besides the total,
 * the result gives the nanoseconds per pair of each loop as measured by the first thread.
 */
#include "harness.h"

#define BATCH 100
#define NSIZES 5
static const size_t sizes[NSIZES] = {16, 32, 64, 128, 256};

struct tight {
  uint64_t batch_rounds; /* batches of BATCH pairs per size */
  uint64_t single_pairs; /* single pairs per size */
  uint64_t checksum[QMB_MAX_THREADS];
  double loop_ns[NSIZES][2]; /* thread 0's ns per pair: [size][0 batch, 1 single] */
};

static uint64_t batch_loop(size_t n, uint64_t rounds, uint32_t tag) {
  void *blocks[BATCH];
  uint64_t sum = 0;
  for (uint64_t r = 0; r < rounds; r++) {
    for (int i = 0; i < BATCH; i++) {
      blocks[i] = malloc(n);
      if (!blocks[i])
        qmb_die("malloc failed");
      qmb_stamp(blocks[i], n, tag + (uint32_t)i);
    }
    for (int i = 0; i < BATCH; i++) {
      sum += qmb_check(blocks[i], n);
      qmb_escape(blocks[i]);
      free(blocks[i]);
    }
  }
  return sum;
}

static uint64_t single_loop(size_t n, uint64_t pairs, uint32_t tag) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < pairs; i++) {
    void *p = malloc(n);
    if (!p)
      qmb_die("malloc failed");
    qmb_stamp(p, n, tag + (uint32_t)i);
    qmb_escape(p);
    sum += qmb_check(p, n);
    free(p);
  }
  return sum;
}

static void run_worker(void *ctx, unsigned index) {
  struct tight *t = ctx;
  uint64_t sum = 0;
  for (int s = 0; s < NSIZES; s++) {
    uint64_t t0 = qmb_now_ns();
    sum += batch_loop(sizes[s], t->batch_rounds, (uint32_t)index << 24);
    uint64_t t1 = qmb_now_ns();
    sum += single_loop(sizes[s], t->single_pairs, (uint32_t)index << 24);
    uint64_t t2 = qmb_now_ns();
    if (index == 0) {
      t->loop_ns[s][0] = (double)(t1 - t0) / (double)(t->batch_rounds * BATCH);
      t->loop_ns[s][1] = (double)(t2 - t1) / (double)t->single_pairs;
    }
  }
  t->checksum[index] = sum;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "tight",
                 "fixed-size malloc/free loops (batches of 100 and single pairs) at 16-256 bytes", 1,
                 QMB_MAX_THREADS);
  static struct tight t;
  t.batch_rounds = QMB_BY_SIZE(&args, 1000, 40000, 250000);
  t.single_pairs = t.batch_rounds * BATCH;

  double seconds = qmb_run_threads(args.threads, run_worker, &t);

  uint64_t checksum = 0;
  for (unsigned i = 0; i < args.threads; i++)
    checksum += t.checksum[i];
  uint64_t pairs_per_thread = NSIZES * (t.batch_rounds * BATCH + t.single_pairs);
  qmb_result_begin(&args, pairs_per_thread * args.threads, seconds, checksum, "malloc+free pairs");
  qmb_json_add(",\"ns_per_pair\":{");
  for (int s = 0; s < NSIZES; s++)
    qmb_json_add("%s\"batch%zu\":%.2f,\"single%zu\":%.2f", s ? "," : "", sizes[s], t.loop_ns[s][0], sizes[s],
                 t.loop_ns[s][1]);
  qmb_json_add("}");
  qmb_result_end();
  return 0;
}
