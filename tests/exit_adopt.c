/* A thread's exit and another thread's adoption of its segments do not touch the same metadata.
 *
 * Each round, a worker allocates 256 KiB blocks until one lands in a second segment, keeps that one
 * and frees the rest, so that it exits with an empty older segment (released at exit) and a newer
 * one in use (abandoned at exit) whose free span is in the same span bin as the empty one's. Once
 * the worker is about to return, main allocates blocks that each need a segment of their own, so
 * that it adopts abandoned segments as soon as they appear, until the worker has been joined.
 * An exit that abandoned a segment and then, while releasing the other, unlinked a span from its
 * bins wrote the abandoned segment's span links after another thread could own it: ThreadSanitizer
 * reports that as a race, and a real overlap could cut the adopter's span list, which the heap
 * validator finds. */
#include <pthread.h>
#include <stdatomic.h>

#include "qmt.h"

#ifdef QMT_PREFIXED
#define T_TRIM qm_trim
#else
#define T_TRIM malloc_trim
#endif

#define BLOCK (256 * KiB)
#define MAX_BLOCKS 64
#define HELD 32

/* Set by the worker, read by main only after joining it. */
static void *kept_block;
static bool two_segments;
/* Set by the worker as it returns; a relaxed flag, so that it orders nothing between the two. */
static atomic_bool leaving;

static void *worker(void *arg) {
  (void)arg;
  void *blocks[MAX_BLOCKS];
  size_t n = 0;
  kept_block = NULL;
  two_segments = false;
  while (n < MAX_BLOCKS) {
    void *p = T_MALLOC(BLOCK);
    CHECK(p != NULL);
    if (p == NULL)
      break;
    memset(p, 0x5A, 64);
    if (n > 0 && qmt_segment_of(p) != qmt_segment_of(blocks[0])) {
      kept_block = p;
      two_segments = true;
      break;
    }
    blocks[n++] = p;
  }
  for (size_t i = 0; i < n; i++)
    T_FREE(blocks[i]);
  atomic_store_explicit(&leaving, true, memory_order_relaxed);
  return NULL;
}

int main(int argc, char **argv) {
  qmt_start("exit_adopt");
  int rounds = argc > 1 ? atoi(argv[1]) : 200;
  int layouts = 0;
  unsigned long adopt_tries = 0;
  for (int round = 0; round < rounds; round++) {
    pthread_t t;
    atomic_store_explicit(&leaving, false, memory_order_relaxed);
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    /* Until the join, no synchronisation with the worker. Once it is about to exit, allocate
     * without pause: each 2 MiB block needs a segment of its own, and a heap that needs a segment
     * adopts an abandoned one first, so the worker's segment in use is adopted while its exit
     * goes on. */
    while (!atomic_load_explicit(&leaving, memory_order_relaxed)) {
    }
    void *held[HELD];
    size_t n_held = 0;
    while (pthread_tryjoin_np(t, NULL) != 0) {
      if (n_held == HELD) {
        while (n_held > 0)
          T_FREE(held[--n_held]);
      }
      held[n_held] = T_MALLOC(QMT_LARGE_MAX);
      CHECK(held[n_held] != NULL);
      n_held += held[n_held] != NULL;
      adopt_tries++;
    }
    while (n_held > 0)
      T_FREE(held[--n_held]);
    T_TRIM(0);
    layouts += two_segments;
    if (kept_block != NULL) {
      CHECK(((unsigned char *)kept_block)[63] == 0x5A);
      T_FREE(kept_block);
    }
    if (round % 16 == 0 && qmt_strict)
      CHECKF(qmt_heap_validate(), "the heap validator failed after round %d", round);
  }
  if (qmt_strict) {
    CHECKF(layouts == rounds, "only %d of %d rounds had a block in a second segment", layouts, rounds);
    CHECK(qmt_heap_validate());
  }
  fprintf(stderr, "  %d rounds, %lu segment-sized blocks allocated while a worker ran\n", rounds,
          adopt_tries);
  return check_result("exit_adopt");
}
