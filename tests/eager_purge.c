/* A freed large block of 128 KiB or more goes back to the OS at once, within a budget of bytes
 * between two decay passes of its heap that shrinks as the purge delay grows (span.c, "Eager
 * purges"): 2 MiB at the default 100 ms, 204 KiB at 1 s, 102 KiB at 2 s.
 *
 * Each case runs in a thread of its own (an empty heap), writes its blocks whole and checks which
 * of their OS pages are resident (mincore) right after each free:
 *   purged_within_budget   purge delay 1 s: a freed 192 KiB block is not resident any more (nor
 *                          counted as dirty free memory in the statistics); a second one freed at
 *                          once after it stays resident (the pass's budget is spent); after the
 *                          next decay pass (due half a second later: the test sleeps 0.6 s, then
 *                          frees a block, which runs it), a third one goes back again, and
 *                          calloc gets zeroed memory there;
 *   smaller_block_kept     purge delay 1 s: a freed 96 KiB block (a large block, below 128 KiB)
 *                          stays resident;
 *   below_peak_keeps       purge delay 1 s, after the process has written and unmapped 64 MiB of
 *                          its own (its peak resident set is now 64 MiB above it): a freed 192 KiB
 *                          block stays resident, since purging it could not lower the peak
 *                          (purge.c, "Purges for the peak"); skipped where /proc cannot be read;
 *   refault_pauses         default purge delay (100 ms: a budget of 2 MiB, ten such blocks, a
 *                          pass; a refault window of 10 ms): 400 times, half a millisecond apart, a
 *                          192 KiB block is allocated, written and freed, so that each malloc takes
 *                          back what the free before it purged. Some of the first 40 frees are
 *                          purged; once the heap has taken back 2 MiB, and then three times in a
 *                          row, the purges for the peak pause (purge.c, "Purges taken back at
 *                          once"), and at most 4 of the last 100 frees are purged (the library
 *                          before purged up to ten every pass, and those 100 span one or more);
 *   long_delay_keeps       purge delay 2 s: a freed 192 KiB block stays resident.
 * A decay pass purges a free span only once it has been dirty for half the delay, so nothing else
 * gives the blocks back within the checks. Nothing is timed: the frees that must fall in one pass
 * run microseconds apart, and the sleep only has to outlast the half second to the next pass (in
 * refault_pauses, a round of about a millisecond has only to stay under the 10 ms window). Before
 * each free that must be purged, the test puts the process at a new peak of its resident set
 * (qmt_at_peak), where the eager purges run. */

#include "stats_api.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BIG (192 * KiB)  /* 48 OS pages of 4 KiB */
#define SMALL (96 * KiB) /* a large block (above 64 KiB), below the eager purges' 128 KiB */
#define OS_PAGE 4096

static bool set_delay(const char *value) {
  int result = -1;
  return qmt_option_set("QMALLOC_PURGE_DELAY", value, &result) && result == 0;
}

/* Frees p (size bytes, written) and returns how many of its OS pages are still resident. */
static size_t resident_after_free(unsigned char *p, size_t size) {
  T_FREE(p);
  size_t resident = qmt_resident_os_pages(p, size);
  CHECK(resident != (size_t)-1);
  return resident;
}

static void *purged_within_budget(void *arg) {
  (void)arg;
  unsigned char *first = qmt_fenced_block(BIG, SMALL, 0x5a), *second = qmt_fenced_block(BIG, SMALL, 0x5a);
  if (first == NULL || second == NULL)
    return NULL;
  qm_stats_t before, after;
  CHECK(qmt_stats_get(&before));
  qmt_at_peak();
  size_t first_left = resident_after_free(first, BIG);
  CHECK(qmt_stats_get(&after));
  size_t second_left = resident_after_free(second, BIG);
  CHECKF(first_left == 0, "a freed %zu KiB block kept %zu of its %zu OS pages", BIG / KiB, first_left,
         BIG / OS_PAGE);
  /* Its span is counted clean: the statistics do not call it dirty, nor does a pass purge it again. */
  CHECKF(after.free_dirty < before.free_dirty + BIG / 2,
         "the purged %zu KiB block's span is counted as dirty free memory (%zu KiB more)", BIG / KiB,
         (after.free_dirty - before.free_dirty) / KiB);
  CHECKF(second_left == BIG / OS_PAGE,
         "a second %zu KiB block freed in the same decay pass (past its budget) kept only %zu of its %zu "
         "OS pages",
         BIG / KiB, second_left, BIG / OS_PAGE);
  /* The next decay pass sets the budget back: it is due half a second after the one the thread's
   * first slow path ran, and the next slow path (the free of a large block) runs it. */
  struct timespec wait = {0, 600 * 1000 * 1000};
  nanosleep(&wait, NULL);
  T_FREE(T_MALLOC(SMALL));
  unsigned char *third = qmt_fenced_block(BIG, SMALL, 0x5a);
  if (third == NULL)
    return NULL;
  qmt_at_peak(); /* the first block's purge took the process under its peak */
  size_t third_left = resident_after_free(third, BIG);
  CHECKF(third_left == 0, "after the next decay pass a freed %zu KiB block kept %zu of its %zu OS pages",
         BIG / KiB, third_left, BIG / OS_PAGE);
  /* The purged span counts as zero memory, so calloc may leave it as it is: it must read as zero. */
  unsigned char *zeroed = T_CALLOC(1, BIG);
  CHECK(zeroed != NULL);
  size_t nonzero = 0;
  for (size_t i = 0; zeroed != NULL && i < BIG; i++)
    nonzero += zeroed[i] != 0;
  CHECKF(nonzero == 0, "calloc of %zu KiB on purged memory returned %zu bytes that are not zero", BIG / KiB,
         nonzero);
  T_FREE(zeroed);
  CHECK(qmt_heap_validate());
  return NULL;
}

/* Writes and frees a block of `size` bytes, which must keep every OS page resident. */
static void freed_block_kept(size_t size, const char *when) {
  unsigned char *p = qmt_fenced_block(size, SMALL, 0x5a);
  if (p == NULL)
    return;
  size_t left = resident_after_free(p, size);
  CHECKF(left == size / OS_PAGE, "%s, a freed %zu KiB block kept only %zu of its %zu OS pages", when,
         size / KiB, left, size / OS_PAGE);
}

static void *smaller_block_kept(void *arg) {
  (void)arg;
  freed_block_kept(SMALL, "below 128 KiB");
  return NULL;
}

static void *below_peak_keeps(void *arg) {
  (void)arg;
  if (access("/proc/self/status", R_OK) != 0) {
    fprintf(stderr, "eager_purge: /proc/self/status cannot be read: below_peak_keeps skipped\n");
    return NULL;
  }
  size_t size = 64 * MiB;
  unsigned char *own = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(own != MAP_FAILED);
  if (own == MAP_FAILED)
    return NULL;
  for (size_t i = 0; i < size; i += OS_PAGE)
    own[i] = 1;
  CHECK(munmap(own, size) == 0);
  freed_block_kept(BIG, "64 MiB below the process's peak resident set");
  return NULL;
}

static void *refault_pauses(void *arg) {
  (void)arg;
  enum { ROUNDS = 400, FIRST = 40, LAST = 100 };
  size_t purged_first = 0, purged_last = 0;
  qmt_at_peak();
  for (int i = 0; i < ROUNDS; i++) {
    unsigned char *p = T_MALLOC(BIG);
    CHECK(p != NULL);
    if (p == NULL)
      return NULL;
    memset(p, 0x5a, BIG);
    if (resident_after_free(p, BIG) == 0) {
      purged_first += i < FIRST;
      purged_last += i >= ROUNDS - LAST;
    }
    struct timespec wait = {0, 500 * 1000};
    nanosleep(&wait, NULL);
  }
  CHECKF(purged_first > 0, "none of the first %d freed %zu KiB blocks was purged at the process's peak",
         FIRST, BIG / KiB);
  CHECKF(purged_last <= 4,
         "%zu of the last %d freed %zu KiB blocks were purged, each taken back by the next malloc at once",
         purged_last, LAST, BIG / KiB);
  CHECK(qmt_heap_validate());
  return NULL;
}

static void *long_delay_keeps(void *arg) {
  (void)arg;
  freed_block_kept(BIG, "with a purge delay of 2 s");
  return NULL;
}

int main(void) {
  qmt_start("eager_purge");
  if (!qmt_strict)
    return check_result("eager_purge");
  if (sysconf(_SC_PAGESIZE) != OS_PAGE || qmt_thp_always()) {
    fprintf(stderr, "eager_purge: the residency checks need 4 KiB pages and no transparent huge pages "
                    "set to always: skipped\n");
    return check_result("eager_purge");
  }
  CHECK(set_delay("1s"));
  qmt_in_thread(purged_within_budget);
  qmt_in_thread(smaller_block_kept);
  CHECK(set_delay("100ms"));
  qmt_in_thread(refault_pauses); /* before below_peak_keeps, which leaves the peak 64 MiB up */
  CHECK(set_delay("1s"));
  qmt_in_thread(below_peak_keeps);
  CHECK(set_delay("2s"));
  qmt_in_thread(long_delay_keeps);
  return check_result("eager_purge");
}
