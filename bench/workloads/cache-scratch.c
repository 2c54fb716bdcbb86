/* cache-scratch - passive false sharing: does a freed block go back near its old neighbours?
 *
 * Models: a main thread that prepares one small object per worker (a task descriptor) and hands
 * them out; each worker frees its object and then works on small objects of its own. The objects
 * made by main are adjacent, likely in one cache line. An allocator that gives a freed block to
 * the next malloc of the freeing thread hands every worker memory in that shared line, and the
 * workers' writes then bounce it between cores. It belongs to the family of the cache-scratch
 * test of the Hoard allocator papers.
 *
 * All blocks have one size (16 B, so several share a line in every allocator). Each worker frees
 * its block from main, then repeatedly mallocs a block, writes it 1,000 times and frees it; the
 * number of iterations per thread is fixed.
 */
#include "harness.h"

#define BLOCK 16
#define WRITES 1000

struct scratch {
  uint64_t iterations;  /* per thread */
  unsigned char **gift; /* gift[i]: the block main made for worker i */
  uint64_t checksum[QMB_MAX_THREADS];
};

static void hammer(unsigned char *p, uint32_t tag) {
  volatile unsigned char *v = p;
  for (int i = 0; i < WRITES; i++)
    v[i % BLOCK] = (unsigned char)(v[i % BLOCK] + 1);
  qmb_stamp(p, BLOCK, tag);
}

static void run_worker(void *ctx, unsigned index) {
  struct scratch *s = ctx;
  uint64_t sum = qmb_check(s->gift[index], BLOCK);
  free(s->gift[index]);
  for (uint64_t i = 0; i < s->iterations; i++) {
    unsigned char *p = malloc(BLOCK);
    if (!p)
      qmb_die("malloc failed");
    hammer(p, (uint32_t)i);
    sum += qmb_check(p, BLOCK);
    free(p);
  }
  s->checksum[index] = sum;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "cache-scratch",
                 "passive false sharing: workers free adjacent 16 B blocks made by main, then reuse", 2,
                 QMB_MAX_THREADS);
  static struct scratch s;
  s.iterations = QMB_BY_SIZE(&args, 20000, 500000, 4000000);
  s.gift = qmb_xcalloc(args.threads, sizeof *s.gift);
  for (unsigned i = 0; i < args.threads; i++) {
    s.gift[i] = malloc(BLOCK);
    if (!s.gift[i])
      qmb_die("malloc failed");
    qmb_stamp(s.gift[i], BLOCK, 0xC0DE0000u + i);
  }

  double seconds = qmb_run_threads(args.threads, run_worker, &s);

  uint64_t checksum = 0;
  for (unsigned i = 0; i < args.threads; i++)
    checksum += s.checksum[i];
  free(s.gift);
  qmb_result_begin(&args, s.iterations * args.threads, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("block_bytes", BLOCK);
  qmb_result_u64("writes_per_block", WRITES);
  qmb_result_end();
  return 0;
}
