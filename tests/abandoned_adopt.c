/* Which abandoned segment a thread adopts, and what happens to one in which nothing is live.
 *
 * full-front: FULL_THREADS threads each fill a segment to the last slice with large blocks and
 *   exit holding them, after a thread that left a segment with one small block in it: the full
 *   segments lie in front of the roomy one on the abandoned list. A new thread's large block must
 *   then land in the roomy segment. Taking only the front segments, a thread adopted four full
 *   ones and mapped a new segment; in a program of short-lived threads that repeats and segments
 *   pile up (tests/thread_churn.c once ended with 355 mapped where 10 do).
 * none-live: a thread exits holding 100 blocks that the main thread then frees; nothing is live
 *   in its segment any more. The main thread, which has room in its own segment and so never needs
 *   to adopt one, only goes on allocating and freeing a large block every 10 ms: its decay passes
 *   must adopt and release the segment, within a generous multiple of the decay interval. Before,
 *   it waited for a thread that needed a segment.
 * The sleeps only let time pass, nothing is timed. */
#include <pthread.h>
#include <time.h>

#include "qmt.h"

#define FULL_THREADS 6 /* more than the segments a thread adopts before it looks further */
#define FILL_BLOCKS 64
#define HANDED 100

static pthread_barrier_t filled, leave;
static void *roomy_block;
static void *handed[HANDED];

/* Fills the segment of its first large block exactly: the first block shows where the usable
 * slices start, and blocks of 9 and 10 slices tile what follows. */
static void *filler(void *arg) {
  bool *tiled = arg;
  void *blocks[FILL_BLOCKS];
  size_t n = 0;
  blocks[n++] = T_MALLOC(10 * QMT_LARGE_UNIT);
  CHECK(blocks[0] != NULL);
  *tiled = false;
  if (blocks[0] != NULL) {
    uintptr_t segment = qmt_segment_of(blocks[0]);
    size_t first = ((uintptr_t)blocks[0] - segment) / QMT_LARGE_UNIT;
    size_t slices = QMT_SEGMENT_SIZE / QMT_LARGE_UNIT - first - 10;
    size_t nines = 0;
    while ((slices - 9 * nines) % 10 != 0)
      nines++;
    size_t tens = (slices - 9 * nines) / 10;
    uintptr_t expect = (uintptr_t)blocks[0] + 10 * QMT_LARGE_UNIT;
    *tiled = 9 * nines <= slices && 1 + tens + nines <= FILL_BLOCKS;
    for (size_t i = 0; *tiled && i < tens + nines; i++) {
      size_t size = (i < tens ? 10 : 9) * QMT_LARGE_UNIT;
      blocks[n] = T_MALLOC(size);
      CHECK(blocks[n] != NULL);
      *tiled = blocks[n] != NULL && (uintptr_t)blocks[n] == expect;
      n += blocks[n] != NULL;
      expect += size;
    }
  }
  pthread_barrier_wait(&filled);
  pthread_barrier_wait(&leave);
  /* Exits holding its blocks; main frees them. */
  for (size_t i = 0; i < n; i++)
    ((void **)arg)[1 + i] = blocks[i];
  return NULL;
}

static void *roomy(void *arg) {
  (void)arg;
  roomy_block = T_MALLOC(64);
  CHECK(roomy_block != NULL);
  return NULL;
}

static void *newcomer(void *arg) {
  void **out = arg;
  *out = T_MALLOC(10 * QMT_LARGE_UNIT);
  CHECK(*out != NULL);
  return NULL;
}

static void *hander(void *arg) {
  (void)arg;
  for (size_t i = 0; i < HANDED; i++) {
    handed[i] = T_MALLOC(1000);
    CHECK(handed[i] != NULL);
  }
  return NULL;
}

static void full_front(void) {
  qm_process_info_t info;
  if (qmt_process_info(&info))
    CHECKF(info.segments_abandoned == 0, "%zu segments abandoned at the start", info.segments_abandoned);
  /* Each filler's result: [0] whether it tiled its segment, then its blocks. */
  static union {
    bool tiled;
    void *slot[1 + FILL_BLOCKS];
  } result[FULL_THREADS];
  pthread_t fillers[FULL_THREADS];
  pthread_barrier_init(&filled, NULL, FULL_THREADS + 1);
  pthread_barrier_init(&leave, NULL, FULL_THREADS + 1);
  memset(result, 0, sizeof result);
  for (int i = 0; i < FULL_THREADS; i++)
    CHECK(pthread_create(&fillers[i], NULL, filler, &result[i]) == 0);
  pthread_barrier_wait(&filled);
  /* The roomy segment is abandoned first, so the full ones go in front of it. */
  qmt_in_thread(roomy);
  int tiled = 0;
  for (int i = 0; i < FULL_THREADS; i++)
    tiled += result[i].tiled;
  pthread_barrier_wait(&leave);
  for (int i = 0; i < FULL_THREADS; i++)
    CHECK(pthread_join(fillers[i], NULL) == 0);
  CHECKF(tiled == FULL_THREADS, "only %d of %d threads filled their segment to the last slice", tiled,
         FULL_THREADS);

  void *block = NULL;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, newcomer, &block) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  if (qmt_strict && roomy_block != NULL && block != NULL)
    CHECKF(qmt_segment_of(block) == qmt_segment_of(roomy_block),
           "a new thread's block went to segment %#lx, not to the one with room at %#lx",
           (unsigned long)qmt_segment_of(block), (unsigned long)qmt_segment_of(roomy_block));
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  T_FREE(block);
  T_FREE(roomy_block);
  for (int i = 0; i < FULL_THREADS; i++)
    for (size_t k = 1; k <= FILL_BLOCKS && result[i].slot[k] != NULL; k++)
      T_FREE(result[i].slot[k]);
  pthread_barrier_destroy(&filled);
  pthread_barrier_destroy(&leave);
}

static void none_live(void) {
  qm_process_info_t info;
  /* Room for the main thread's large block in its own segment, kept busy by a held block: its
   * calls below never need a segment (taking one would adopt the abandoned one). */
  void *held = T_MALLOC(256 * KiB);
  T_FREE(T_MALLOC(256 * KiB));
  qmt_in_thread(hander);
  for (size_t i = 0; i < HANDED; i++)
    T_FREE(handed[i]);
  size_t abandoned_before = qmt_process_info(&info) ? info.segments_abandoned : 0;
  int rounds = 0;
  for (; rounds < 500; rounds++) {
    if (qmt_process_info(&info) && info.segments_abandoned == 0)
      break;
    void *p = T_MALLOC(256 * KiB);
    CHECK(p != NULL);
    T_FREE(p);
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  fprintf(stderr, "  none-live: %zu segments abandoned after the frees, %zu after %d rounds of 10 ms\n",
          abandoned_before, info.segments_abandoned, rounds);
  if (qmt_strict) {
    CHECKF(abandoned_before >= 1, "the exited thread's segment should be abandoned (%zu)", abandoned_before);
    CHECKF(rounds < 500, "%zu segments still abandoned after 5 s", info.segments_abandoned);
    CHECK(qmt_heap_validate());
  }
  T_FREE(held);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "full-front";
  qmt_start(strcmp(mode, "none-live") == 0 ? "abandoned_adopt (none-live)" : "abandoned_adopt (full-front)");
  if (strcmp(mode, "none-live") == 0)
    none_live();
  else
    full_front();
  return check_result("abandoned_adopt");
}
