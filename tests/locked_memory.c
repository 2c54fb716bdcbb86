/* Memory the program has locked (mlockall, or mlock of a range) cannot be purged: the kernel
 * refuses MADV_DONTNEED on locked pages (EINVAL). What qmalloc tried to give back then still holds
 * its old contents, so it must not be counted as zero memory, which calloc hands out without
 * clearing it (os.c, _qm_os_purge). The library before this test counted it zero, and calloc
 * returned the old bytes.
 *
 * With every page of the process locked (mlockall of current and future mappings), each case
 * writes blocks whole, frees them, has them purged (or tries to), and asks calloc for the same
 * sizes, which get the same memory back; every byte must read zero, and the heap must validate:
 *   eager_purge      a freed 192 KiB block, purged by its free (span.c, "Eager purges");
 *   decay_purge      a freed 96 KiB block (below the eager purges' bound), purged by a decay pass
 *                    (purge delay 0: every pass purges every dirty free span);
 *   arena_segments   QMALLOC_ARENA_RESERVE=64m (set by ctest in the environment): twelve 2 MiB
 *                    blocks, each in a segment of its own, freed; a trim gives the empty segments
 *                    back to the arena, which hands them out again as fresh (zero) segments, their
 *                    headers included.
 * Where the process may not lock that much memory (no CAP_IPC_LOCK and a small RLIMIT_MEMLOCK),
 * the test says so and passes without checking. Nothing is timed. */

#include "stats_api.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define EAGER (192 * KiB)
#define DECAY (96 * KiB)
#define SEGMENT_BLOCK (2 * MiB)
#define SEGMENT_BLOCKS 12

/* Whether the process holds CAP_IPC_LOCK (bit 14 of CapEff in /proc/self/status), which lifts
 * RLIMIT_MEMLOCK. */
static bool may_lock_beyond_limit(void) {
  FILE *status = fopen("/proc/self/status", "r");
  if (status == NULL)
    return false;
  char line[256];
  unsigned long long caps = 0;
  bool found = false;
  while (!found && fgets(line, sizeof line, status) != NULL)
    found = sscanf(line, "CapEff: %llx", &caps) == 1;
  fclose(status);
  return found && (caps >> 14) & 1;
}

/* Whether every page of the process, now and from now on, is locked; false (with the reason in
 * *why) where the process could not lock all that the test maps. */
static bool lock_everything(const char **why) {
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &unlimited) != 0 && !may_lock_beyond_limit()) {
    *why = "RLIMIT_MEMLOCK is bounded and the process lacks CAP_IPC_LOCK";
    return false;
  }
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    *why = strerror(errno);
    return false;
  }
  return true;
}

/* calloc(size) must give back `freed` (the block just freed), reading zero. */
static void calloc_reads_zero(const unsigned char *freed, size_t size, const char *what) {
  unsigned char *p = T_CALLOC(1, size);
  CHECK(p != NULL);
  if (p == NULL)
    return;
  CHECKF(p == freed,
         "%s: calloc(%zu KiB) did not get the freed block back (%p, not %p): the test checks "
         "nothing",
         what, size / KiB, (void *)p, (const void *)freed);
  size_t nonzero = 0;
  for (size_t i = 0; i < size; i++)
    nonzero += p[i] != 0;
  CHECKF(nonzero == 0,
         "%s: calloc(%zu KiB) on memory the kernel would not purge returned %zu bytes that are "
         "not zero",
         what, size / KiB, nonzero);
  T_FREE(p);
}

/* Writes a block of `size` bytes and frees it; with decay_pass, lets a decay pass run (at most one
 * a millisecond, from a slow path: the free of a large block); then checks calloc. */
static void freed_then_calloced(size_t size, bool decay_pass, const char *what) {
  unsigned char *p = qmt_fenced_block(size, DECAY, 0xa5);
  if (p == NULL)
    return;
  T_FREE(p);
  if (decay_pass) {
    struct timespec wait = {0, 3 * 1000 * 1000};
    nanosleep(&wait, NULL);
    T_FREE(T_MALLOC(EAGER));
  }
  calloc_reads_zero(p, size, what);
  CHECK(qmt_heap_validate());
}

static void *eager_purge(void *arg) {
  (void)arg;
  freed_then_calloced(EAGER, false, "eager purge");
  return NULL;
}

static void *decay_purge(void *arg) {
  (void)arg;
  freed_then_calloced(DECAY, true, "decay pass");
  return NULL;
}

static void *arena_segments(void *arg) {
  (void)arg;
  unsigned char *blocks[SEGMENT_BLOCKS];
  for (size_t i = 0; i < SEGMENT_BLOCKS; i++) {
    blocks[i] = T_MALLOC(SEGMENT_BLOCK);
    CHECK(blocks[i] != NULL);
    if (blocks[i] != NULL)
      memset(blocks[i], 0xa5, SEGMENT_BLOCK);
  }
  for (size_t i = 0; i < SEGMENT_BLOCKS; i++)
    T_FREE(blocks[i]);
  qmt_trim();
  size_t nonzero_blocks = 0;
  for (size_t i = 0; i < SEGMENT_BLOCKS; i++) {
    unsigned char *p = blocks[i] = T_CALLOC(1, SEGMENT_BLOCK);
    CHECK(p != NULL);
    bool zero = true;
    for (size_t j = 0; p != NULL && j < SEGMENT_BLOCK && zero; j++)
      zero = p[j] == 0;
    nonzero_blocks += !zero;
  }
  CHECKF(nonzero_blocks == 0, "%zu of %d calloc'ed 2 MiB blocks on segments the arena took back are not zero",
         nonzero_blocks, SEGMENT_BLOCKS);
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < SEGMENT_BLOCKS; i++)
    T_FREE(blocks[i]);
  return NULL;
}

int main(void) {
  qmt_start("locked_memory");
  if (!qmt_strict)
    return check_result("locked_memory");
  const char *why = NULL;
  if (!lock_everything(&why)) {
    fprintf(stderr, "locked_memory: this process may not lock its memory (%s): skipped\n", why);
    return check_result("locked_memory");
  }
  int result = -1;
  qmt_in_thread(eager_purge);
  CHECK(qmt_option_set("QMALLOC_PURGE_DELAY", "0", &result) && result == 0);
  qmt_in_thread(decay_purge);
  qmt_in_thread(arena_segments);
  munlockall();
  return check_result("locked_memory");
}
