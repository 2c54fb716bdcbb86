/* Memory of an exited thread is given back: a thread fills 64 MiB with small blocks, frees all but
 * one in 256 (so its segments stay alive, abandoned, with their free spans still resident) and
 * exits. Once the decay delay has passed, an ordinary allocator event (no trim) purges those free
 * spans, and the resident set drops. The mode names the event:
 *   thread  the next thread start and exit, after a pause;
 *   passes  none: the main thread only goes on allocating and freeing a large block (which passes
 *           through the slow paths that run the decay passes) every 10 ms, and the resident set
 *           must drop within a generous multiple of the purge delay. Before the passes looked at
 *           the abandoned list, only a thread start or exit purged it, and it stayed resident.
 * RSS is read from /proc/self/status; the sleeps only let time pass, nothing is timed. */
#include <pthread.h>
#include <time.h>

#include "qmt.h"

enum { BLOCK = 1024, KEEP_EVERY = 256, LARGE = 256 * 1024 };
#define FILL (64 * MiB)
#define COUNT (FILL / BLOCK)

static unsigned char **kept;

static void *filler(void *arg) {
  (void)arg;
  unsigned char **all = T_MALLOC(COUNT * sizeof *all);
  CHECK(all != NULL);
  if (!all)
    return NULL;
  for (size_t i = 0; i < COUNT; i++) {
    all[i] = T_MALLOC(BLOCK);
    CHECK(all[i] != NULL);
    if (all[i])
      memset(all[i], (int)(i & 0xFF), BLOCK);
  }
  for (size_t i = 0; i < COUNT; i++) {
    if (i % KEEP_EVERY == 0)
      kept[i / KEEP_EVERY] = all[i];
    else
      T_FREE(all[i]);
  }
  T_FREE(all);
  return NULL;
}

static void *small_thread(void *arg) {
  (void)arg;
  void *p = T_MALLOC(100);
  T_FREE(p);
  return NULL;
}

static void run(void *(*fn)(void *)) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, NULL) == 0);
  pthread_join(t, NULL);
}

/* The next thread start and exit, after a pause well past the decay delay. */
static size_t decay_by_thread(void) {
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  run(small_thread);
  return qmt_rss_kib();
}

/* Only the main thread's own calls, until the resident set drops or about 5 s have passed. */
static size_t decay_by_passes(size_t after_exit) {
  size_t now = after_exit;
  int rounds = 0;
  for (; rounds < 500 && now + 32 * 1024 >= after_exit; rounds++) {
    unsigned char *p = T_MALLOC(LARGE);
    CHECK(p != NULL);
    if (p)
      p[0] = p[LARGE - 1] = 1;
    T_FREE(p);
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
    now = qmt_rss_kib();
  }
  fprintf(stderr, "  %d rounds of 10 ms\n", rounds);
  return now;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "thread";
  bool passes = strcmp(mode, "passes") == 0;
  qmt_start(passes ? "abandoned_purge (passes)" : "abandoned_purge (thread)");
  kept = T_CALLOC(COUNT / KEEP_EVERY, sizeof *kept);
  CHECK(kept != NULL);
  if (!kept)
    return check_result("abandoned_purge");
  /* Room for the main thread's large block in its own segment, so that its calls in `passes` never
   * need a segment (taking one could adopt the filler's). */
  T_FREE(T_MALLOC(LARGE));
  size_t start = qmt_rss_kib();
  run(filler);
  size_t after_exit = qmt_rss_kib();
  size_t after_decay = passes ? decay_by_passes(after_exit) : decay_by_thread();
  fprintf(stderr, "  RSS: %zu KiB at start, %zu KiB after the filler exited, %zu KiB after the decay\n",
          start, after_exit, after_decay);
  CHECKF(after_exit > start + 48 * 1024, "the filler should have left its free memory resident (%zu KiB)",
         after_exit - start);
  if (qmt_strict)
    CHECKF(after_decay + 32 * 1024 < after_exit, "RSS did not drop: %zu KiB -> %zu KiB", after_exit,
           after_decay);
  for (size_t i = 0; i < COUNT / KEEP_EVERY; i++) {
    if (kept[i])
      CHECK(kept[i][0] == (unsigned char)((i * KEEP_EVERY) & 0xFF) && kept[i][BLOCK - 1] == kept[i][0]);
    T_FREE(kept[i]);
  }
  T_FREE(kept);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("abandoned_purge");
}
