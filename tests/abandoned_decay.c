/* The memory of an exited thread decays on schedule even when no thread starts or exits after it:
 * a thread fills 64 MiB with small blocks, frees all but one in 256 (so its segments stay alive,
 * abandoned, with their free spans still resident) and exits. The main thread then only goes on
 * with ordinary calls (a large block allocated and freed, which passes through the slow paths that
 * run the decay passes), and within a generous multiple of the purge delay the resident set drops.
 * Before the passes looked at the abandoned list, only a later thread start or exit purged it.
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

int main(void) {
  qmt_start("abandoned_decay");
  kept = T_CALLOC(COUNT / KEEP_EVERY, sizeof *kept);
  CHECK(kept != NULL);
  if (!kept)
    return check_result("abandoned_decay");
  /* Room for the main thread's large block in its own segment, so that its calls below never need
   * a segment (which could adopt the filler's). */
  T_FREE(T_MALLOC(LARGE));
  size_t start = qmt_rss_kib();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, filler, NULL) == 0);
  pthread_join(t, NULL);
  size_t after_exit = qmt_rss_kib(), now = after_exit;
  CHECKF(after_exit > start + 48 * 1024, "the filler should have left its free memory resident (%zu KiB)",
         after_exit - start);
  int rounds = 0;
  for (; rounds < 500 && now + 32 * 1024 >= after_exit; rounds++) { /* up to about 5 s */
    unsigned char *p = T_MALLOC(LARGE);
    CHECK(p != NULL);
    if (p)
      p[0] = p[LARGE - 1] = 1;
    T_FREE(p);
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
    now = qmt_rss_kib();
  }
  fprintf(stderr,
          "  RSS: %zu KiB at start, %zu KiB after the filler exited, %zu KiB after %d rounds of 10 ms\n",
          start, after_exit, now, rounds);
  if (qmt_strict)
    CHECKF(now + 32 * 1024 < after_exit,
           "RSS did not drop without a thread start or exit: %zu KiB -> %zu KiB", after_exit, now);
  for (size_t i = 0; i < COUNT / KEEP_EVERY; i++) {
    if (kept[i])
      CHECK(kept[i][0] == (unsigned char)((i * KEEP_EVERY) & 0xFF) && kept[i][BLOCK - 1] == kept[i][0]);
    T_FREE(kept[i]);
  }
  T_FREE(kept);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("abandoned_decay");
}
