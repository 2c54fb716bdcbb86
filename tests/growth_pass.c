/* A heap that grows gives back the free memory it left idle meanwhile, however long the purge
 * delay (purge.c, "Growth passes"). The purge delay is set to a minute, so that no decay pass
 * purges anything during the test.
 *
 *   idle_memory_purged   an emptied page of 1000-byte blocks (behind its class's current page)
 *                        and a freed 256 KiB block are given back to the OS while the heap makes
 *                        3 MiB of fresh large blocks resident.
 *   no_growth_no_purge   the same idle memory, while the heap makes one 512 KiB block and then
 *                        takes the same memory back again and again: nothing is purged.
 * Each case runs in a thread of its own, so that it starts from an empty heap. */

#include "stats_api.h"

#include <time.h>

#define SMALL 1000             /* class 1024 B: 64 blocks on a 64 KiB page */
#define SMALL_COUNT 128        /* two pages */
#define IDLE_BLOCK (256 * KiB) /* a large block */
#define GROW_BLOCK (512 * KiB) /* bigger than the idle block, so never placed in its span */
#define GROW_COUNT 6

static void sleep_ms(unsigned ms) {
  struct timespec t = {0, (long)ms * 1000 * 1000};
  nanosleep(&t, NULL);
}

static void *small[SMALL_COUNT], *fence;

/* Makes the idle memory: the first page of SMALL_COUNT blocks emptied, and a written block freed,
 * with a live block after it (else its span would join the free rest of the segment, which the
 * growth takes). Returns the blocks still live on the second page; free_rest frees them. */
static void **make_idle_memory(void) {
  for (size_t i = 0; i < SMALL_COUNT; i++) {
    small[i] = T_MALLOC(SMALL);
    CHECK(small[i] != NULL);
    if (small[i])
      memset(small[i], 0x33, SMALL);
  }
  unsigned char *idle = T_MALLOC(IDLE_BLOCK);
  fence = T_MALLOC(IDLE_BLOCK);
  CHECK(idle != NULL && fence != NULL);
  if (idle)
    memset(idle, 0x44, IDLE_BLOCK);
  for (size_t i = 0; i < SMALL_COUNT / 2; i++)
    T_FREE(small[i]);
  T_FREE(idle);
  return small + SMALL_COUNT / 2;
}

static void free_rest(void **rest) {
  for (size_t i = 0; i < SMALL_COUNT / 2; i++)
    T_FREE(rest[i]);
  T_FREE(fence);
}

static void *idle_memory_purged(void *arg) {
  (void)arg;
  void **rest = make_idle_memory();
  qm_stats_t before, after;
  if (!qmt_stats_get(&before))
    return NULL;
  void *grow[GROW_COUNT];
  /* Each pass needs the coarse clock to move on: a span counts as idle when it was dirty before
   * the previous pass. */
  qmt_at_peak(); /* growth passes purge near the process's peak (purge.c, "Purges for the peak") */
  for (size_t i = 0; i < GROW_COUNT; i++) {
    sleep_ms(10);
    grow[i] = T_MALLOC(GROW_BLOCK);
    CHECK(grow[i] != NULL);
    if (grow[i])
      memset(grow[i], 0x55, GROW_BLOCK);
  }
  qmt_stats_get(&after);
  size_t purged = after.bytes_purged - before.bytes_purged;
  CHECKF(purged >= IDLE_BLOCK + 64 * KiB,
         "the heap grew by %zu KiB and purged %zu KiB of its %zu KiB of idle memory",
         GROW_COUNT * GROW_BLOCK / KiB, purged / KiB, (IDLE_BLOCK + 64 * KiB) / KiB);
  for (size_t i = 0; i < GROW_COUNT; i++)
    T_FREE(grow[i]);
  free_rest(rest);
  CHECK(qmt_heap_validate());
  return NULL;
}

static void *no_growth_no_purge(void *arg) {
  (void)arg;
  void **rest = make_idle_memory();
  qm_stats_t before, after;
  if (!qmt_stats_get(&before))
    return NULL;
  for (size_t i = 0; i < GROW_COUNT; i++) {
    sleep_ms(10);
    unsigned char *p = T_MALLOC(GROW_BLOCK);
    CHECK(p != NULL);
    if (p)
      memset(p, 0x66, GROW_BLOCK);
    T_FREE(p);
  }
  qmt_stats_get(&after);
  CHECKF(after.bytes_purged == before.bytes_purged,
         "a heap that reused its memory purged %zu KiB with a purge delay of a minute",
         (after.bytes_purged - before.bytes_purged) / KiB);
  free_rest(rest);
  CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("growth_pass");
  int result = 0;
  qmt_option_set("QMALLOC_PURGE_DELAY", "60s", &result);
  qmt_in_thread(idle_memory_purged);
  qmt_in_thread(no_growth_no_purge);
  return check_result("growth_pass");
}
