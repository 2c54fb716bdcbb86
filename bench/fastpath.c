/* fastpath - a fixed sequence of malloc/free calls for counting instructions under callgrind.
 *
 * usage: qmb-fastpath BYTES own|cross
 *   own    after a warm-up, fastpath_pairs() does 1,000 rounds of 64 malloc(BYTES) followed by
 *          their 64 frees: 64,000 pairs, all in one thread;
 *   cross  a second thread mallocs the blocks, 64 at a time, in fastpath_mallocs(); each batch is
 *          handed over to the main thread, which frees it in fastpath_frees(): 64,000 blocks
 *          freed by a thread other than the one that allocated them.
 * The measured functions are external and never inlined, so that
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='fastpath_*' qmb-fastpath 64 own
 * counts only them; callgrind_annotate --inclusive=yes then gives the instructions of malloc and
 * free, to divide by 64,000. The hand-over (an atomic flag, waited on by yielding) lies outside
 * them. Prints one JSON line: {"bytes":..,"mode":..,"pairs":64000,"checksum":..}.
 */
#include <sched.h>
#include <stdatomic.h>

#include "harness.h"

#define BATCH 64
#define ROUNDS 1000
#define WARMUP_ROUNDS 16 /* 1,024 pairs */

void fastpath_pairs(size_t bytes, unsigned rounds);
void fastpath_mallocs(size_t bytes, void **batch);
void fastpath_frees(void **batch);

/* volatile: every malloc result is stored and every free argument loaded, whatever the optimiser
 * thinks of the pairs. The warm-up loops are written out in place, not as functions: a warm-up
 * function identical to a measured one would be merged with it (identical code folding), and
 * callgrind would then see only one of the two names. */
static void *volatile own_blocks[BATCH];
static uint64_t checksum;

__attribute__((noinline)) void fastpath_pairs(size_t bytes, unsigned rounds) {
  for (unsigned r = 0; r < rounds; r++) {
    for (int i = 0; i < BATCH; i++)
      own_blocks[i] = malloc(bytes);
    for (int i = 0; i < BATCH; i++)
      free(own_blocks[i]);
  }
}

__attribute__((noinline)) void fastpath_mallocs(size_t bytes, void **batch) {
  for (int i = 0; i < BATCH; i++)
    batch[i] = malloc(bytes);
}

__attribute__((noinline)) void fastpath_frees(void **batch) {
  for (int i = 0; i < BATCH; i++)
    free(batch[i]);
}

/* The hand-over between the two threads of cross mode: full is set (release) by the allocating
 * thread once batch[] holds a new batch, and cleared (release) by the freeing thread once it has
 * copied the batch out. */
struct handover {
  _Atomic int full;
  void *batch[BATCH];
  size_t bytes;
};

static void wait_for(struct handover *h, int full) {
  while (atomic_load_explicit(&h->full, memory_order_acquire) != full)
    sched_yield();
}

/* Stamps every block of a batch (outside the measured functions) and checks them before they are
 * freed, so that a broken cross-thread path is caught. */
static void stamp_batch(void **batch, size_t bytes, unsigned round) {
  for (int i = 0; i < BATCH; i++) {
    if (!batch[i])
      qmb_die("malloc failed");
    qmb_stamp(batch[i], bytes, round * BATCH + (unsigned)i);
  }
}
static void check_batch(void **batch, size_t bytes) {
  for (int i = 0; i < BATCH; i++)
    checksum += qmb_check(batch[i], bytes);
}

static void *allocating_thread(void *arg) {
  struct handover *h = arg;
  void *batch[BATCH];
  for (unsigned r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    if (r >= WARMUP_ROUNDS) {
      fastpath_mallocs(h->bytes, batch);
    } else {
      for (int i = 0; i < BATCH; i++)
        batch[i] = malloc(h->bytes);
    }
    stamp_batch(batch, h->bytes, r);
    wait_for(h, 0);
    memcpy(h->batch, batch, sizeof batch);
    atomic_store_explicit(&h->full, 1, memory_order_release);
  }
  return NULL;
}

static void usage(void) {
  fprintf(stderr,
          "usage: qmb-fastpath BYTES own|cross\n"
          "  64,000 malloc/free pairs of BYTES bytes (BYTES >= %d), in fastpath_pairs (own) or\n"
          "  malloc in another thread (fastpath_mallocs), free here (fastpath_frees) (cross)\n",
          QMB_MIN_BLOCK);
  exit(2);
}

int main(int argc, char **argv) {
  qmb_name = "fastpath";
  uint64_t bytes;
  if (argc != 3 || !qmb_parse_u64(argv[1], &bytes) || bytes < QMB_MIN_BLOCK || bytes > ((uint64_t)1 << 31))
    usage();
  bool cross = strcmp(argv[2], "cross") == 0;
  if (!cross && strcmp(argv[2], "own") != 0)
    usage();

  if (!cross) {
    for (unsigned r = 0; r < WARMUP_ROUNDS; r++) {
      for (int i = 0; i < BATCH; i++)
        own_blocks[i] = malloc(bytes);
      for (int i = 0; i < BATCH; i++)
        free(own_blocks[i]);
    }
    fastpath_pairs(bytes, ROUNDS);
    /* The measured loop keeps no content; touch and check one block of each kind here. */
    void *p = malloc(bytes);
    if (!p)
      qmb_die("malloc failed");
    qmb_stamp(p, bytes, 1);
    checksum += qmb_check(p, bytes);
    free(p);
  } else {
    static struct handover h;
    h.bytes = bytes;
    atomic_init(&h.full, 0);
    pthread_t id;
    if (pthread_create(&id, NULL, allocating_thread, &h) != 0)
      qmb_die("cannot create a thread");
    void *batch[BATCH];
    for (unsigned r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
      wait_for(&h, 1);
      memcpy(batch, h.batch, sizeof batch);
      atomic_store_explicit(&h.full, 0, memory_order_release);
      check_batch(batch, bytes);
      if (r < WARMUP_ROUNDS) {
        for (int i = 0; i < BATCH; i++)
          free(batch[i]);
      } else {
        fastpath_frees(batch);
      }
    }
    pthread_join(id, NULL);
  }
  printf("{\"bytes\":%llu,\"mode\":\"%s\",\"pairs\":%d,\"checksum\":%llu}\n", (unsigned long long)bytes,
         cross ? "cross" : "own", BATCH * ROUNDS, (unsigned long long)checksum);
  return 0;
}
