/* Memory of an exited thread is given back: a thread fills 64 MiB with small blocks, frees all but
 * one in 256 (so its segments stay alive, abandoned, with their free spans still resident) and
 * exits. Once the decay delay has passed, the next thread start and exit (an ordinary allocator
 * event, no trim) purges those free spans, and the resident set drops. RSS is read from
 * /proc/self/status; the sleep only lets the delay pass, nothing is timed. */
#include <pthread.h>
#include <time.h>

#include "qmt.h"

enum { BLOCK = 1024, KEEP_EVERY = 256 };
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

int main(void) {
  qmt_start("abandoned_purge");
  kept = T_CALLOC(COUNT / KEEP_EVERY, sizeof *kept);
  CHECK(kept != NULL);
  if (!kept)
    return check_result("abandoned_purge");
  size_t start = qmt_rss_kib();
  run(filler);
  size_t after_exit = qmt_rss_kib();
  struct timespec pause = {0, 200 * 1000 * 1000}; /* well past the 50 ms decay delay */
  nanosleep(&pause, NULL);
  run(small_thread);
  size_t after_decay = qmt_rss_kib();
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
