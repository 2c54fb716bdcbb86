/* prodcons - blocks made by one thread and freed by another, in pairs of threads.
 *
 * Models: a pipeline stage that builds messages and hands them to the next stage, which consumes
 * and frees them (network buffers, log records, work items). Every free is a cross-thread free and
 * the producer's heap never gets its blocks back directly, so this measures how fast freed memory
 * returns to the thread that allocates. It is in the family of producer/consumer (xmalloc-style)
 * allocator tests.
 *
 * --threads must be even: threads/2 independent pairs, each with a bounded single-producer,
 * single-consumer ring of 1,024 entries. The producer allocates blocks of 16 B to 2 KiB, writes
 * them whole and pushes them; the consumer checks and frees them. A full or empty ring is waited
 * on by spinning, yielding the CPU after a few tries (there may be more threads than cores).
 */
#include <sched.h>
#include <stdatomic.h>

#include "harness.h"

#define RING 1024 /* a power of two */
#define SPINS_BEFORE_YIELD 64

/* Ring invariant: entries [tail, head) (indices mod RING) hold blocks pushed and not yet popped;
 * 0 <= head - tail <= RING. Only the producer writes head, only the consumer writes tail; the
 * release/acquire pair on each index makes the entries and the blocks' contents visible. */
struct ring {
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) void *entries[RING];
  uint64_t checksum; /* the consumer's */
};

struct prodcons {
  struct ring **rings; /* one per pair */
  uint64_t blocks;     /* per pair */
  uint64_t seed;
};

static void wait_a_little(unsigned *spins) {
  if (++*spins >= SPINS_BEFORE_YIELD) {
    *spins = 0;
    sched_yield();
  }
}

static void produce(struct ring *q, uint64_t blocks, struct qmb_rng *r) {
  uint64_t head = 0;
  for (uint64_t i = 0; i < blocks; i++) {
    size_t n = qmb_rng_range(r, 16, 2048);
    void *p = malloc(n);
    if (!p)
      qmb_die("malloc failed");
    qmb_fill(p, n, (uint32_t)qmb_rng_next(r));
    unsigned spins = 0;
    while (head - atomic_load_explicit(&q->tail, memory_order_acquire) == RING)
      wait_a_little(&spins);
    q->entries[head % RING] = p;
    atomic_store_explicit(&q->head, ++head, memory_order_release);
  }
}

static void consume(struct ring *q, uint64_t blocks) {
  uint64_t tail = 0, sum = 0;
  for (uint64_t i = 0; i < blocks; i++) {
    unsigned spins = 0;
    while (atomic_load_explicit(&q->head, memory_order_acquire) == tail)
      wait_a_little(&spins);
    void *p = q->entries[tail % RING];
    atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    size_t n;
    qmb_check_self(p, &n);
    sum += qmb_check_fill(p, n);
    free(p);
  }
  q->checksum = sum;
}

/* Thread 2k produces into ring k, thread 2k + 1 consumes from it. */
static void run_worker(void *ctx, unsigned index) {
  struct prodcons *pc = ctx;
  struct ring *q = pc->rings[index / 2];
  if (index % 2 == 0) {
    struct qmb_rng r;
    qmb_rng_init(&r, pc->seed, index);
    produce(q, pc->blocks, &r);
  } else {
    consume(q, pc->blocks);
  }
}

int main(int argc, char **argv) {
  struct qmb_args args;
  const char *about = "producer/consumer pairs passing 16 B-2 KiB blocks through rings; --threads is even";
  qmb_parse_args(&args, argc, argv, "prodcons", about, 2, QMB_MAX_THREADS);
  if (args.threads % 2) {
    fprintf(stderr, "qmb-prodcons: --threads must be even (pairs of threads)\n");
    qmb_usage(about, 2, QMB_MAX_THREADS);
    return 2;
  }
  unsigned pairs = args.threads / 2;
  struct prodcons pc = {.blocks = QMB_BY_SIZE(&args, 50000, 1500000, 12000000), .seed = args.seed};
  pc.rings = qmb_xcalloc(pairs, sizeof *pc.rings);
  for (unsigned i = 0; i < pairs; i++) {
    pc.rings[i] = aligned_alloc(64, sizeof *pc.rings[i]);
    if (!pc.rings[i])
      qmb_die("out of memory for the rings");
    memset(pc.rings[i]->entries, 0, sizeof pc.rings[i]->entries);
    atomic_init(&pc.rings[i]->head, 0);
    atomic_init(&pc.rings[i]->tail, 0);
    pc.rings[i]->checksum = 0;
  }

  double seconds = qmb_run_threads(args.threads, run_worker, &pc);

  uint64_t checksum = 0;
  for (unsigned i = 0; i < pairs; i++) {
    checksum += pc.rings[i]->checksum;
    free(pc.rings[i]);
  }
  free(pc.rings);
  qmb_result_begin(&args, pc.blocks * pairs, seconds, checksum, "blocks passed (malloc+free pairs)");
  qmb_result_u64("pairs", pairs);
  qmb_result_end();
  return 0;
}
