/* large - large and huge blocks, each of them used in full.
 *
 * Models: programs that work on big buffers (images, decompression windows, matrices, I/O
 * buffers) and replace them now and then. A set of 8 live blocks; each step frees a random one
 * and allocates a new one of a size between 64 KiB and 64 MiB, log-uniform (as many blocks of
 * 64-128 KiB as of 32-64 MiB). Every 4 KiB page of a new block is written and checked before the
 * free, so the resident set is real. The cost is mostly the allocator's dealings with the kernel:
 * mapping and unmapping, page faults, and whether freed memory is kept for reuse.
 *
 * Single-threaded.
 */
#include "harness.h"

#define SLOTS 8
#define MIN_LOG2 16 /* 64 KiB */
#define MAX_LOG2 26 /* 64 MiB */

struct slot {
  void *p; /* a live block of n bytes written by qmb_touch_pages, or NULL */
  size_t n;
};

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "large",
                 "8 live blocks of 64 KiB to 64 MiB (log-uniform), every page written", 1, 1);
  uint64_t steps = QMB_BY_SIZE(&args, 6, 30, 200);
  struct qmb_rng rng;
  qmb_rng_init(&rng, args.seed, 0);
  struct slot slots[SLOTS] = {{0}};
  uint64_t checksum = 0, bytes = 0;

  uint64_t t0 = qmb_now_ns();
  for (uint64_t i = 0; i < steps; i++) {
    struct slot *s = &slots[qmb_rng_below(&rng, SLOTS)];
    if (s->p) {
      checksum += qmb_check_pages(s->p, s->n);
      free(s->p);
    }
    s->n = qmb_rng_log_uniform(&rng, MIN_LOG2, MAX_LOG2);
    s->p = malloc(s->n);
    if (!s->p)
      qmb_die("malloc failed");
    qmb_touch_pages(s->p, s->n, (uint32_t)qmb_rng_next(&rng));
    bytes += s->n;
  }
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p) {
      checksum += qmb_check_pages(slots[i].p, slots[i].n);
      free(slots[i].p);
    }
  double seconds = qmb_seconds_since(t0);

  qmb_result_begin(&args, steps, seconds, checksum, "malloc+free pairs");
  qmb_result_u64("bytes_allocated", bytes);
  qmb_result_u64("peak_rss_bytes", qmb_peak_rss_bytes());
  qmb_result_end();
  return 0;
}
