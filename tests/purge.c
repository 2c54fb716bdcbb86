/* Memory goes back to the OS: after the decay delay with no call to malloc_trim, at once with one,
 * inside partly used pages, and between the phases of a program.
 *
 *   purge decay   fill 1 GiB with small blocks, free them all; ordinary allocator calls go on (a
 *                 large block now and then) and RSS must return to within 16 MiB of the start
 *                 within the purge delay plus a generous margin.
 *   purge trim    the same, but malloc_trim(0) right after the frees must get there at once.
 *   purge sparse  fill 1 GiB with 256-byte blocks and free all but a random 1 in 64: once the delay
 *                 has passed, RSS must be near the page-granular floor (the OS pages that still
 *                 hold a live block), which the test computes.
 *   purge phases  a phase of 512 MiB of small blocks, freed, then a phase of 512 MiB of 256 KiB
 *                 blocks: the peak RSS must be near one phase, not the sum of both.
 * RSS comes from /proc/self/status. The sleeps only let the delay pass; nothing is timed. The
 * purge delay is the library's default unless QMALLOC_PURGE_DELAY is set (the test reads it too).
 */
#include <time.h>

#include "qmt.h"

#define FILL (1024 * MiB)
#define SLACK_KIB (16 * 1024)

static void sleep_ms(unsigned ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static size_t hwm_kib(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  const char *s = strstr(buf, "VmHWM:");
  return s ? (size_t)strtoull(s + 6, NULL, 10) : 0;
}

static unsigned purge_delay_ms(void) {
  const char *text = getenv("QMALLOC_PURGE_DELAY");
  return text ? (unsigned)strtoul(text, NULL, 10) : 100;
}

/* An ordinary allocator call that reaches a slow path: a large block, used and freed. */
static void ordinary_calls(void) {
  unsigned char *p = T_MALLOC(200 * KiB);
  CHECK(p != NULL);
  if (p) {
    p[0] = 1;
    T_FREE(p);
  }
  void *q = T_MALLOC(24);
  T_FREE(q);
}

/* Waits until RSS is at most `limit_kib`, making ordinary calls meanwhile; gives up after
 * `budget_ms`. Returns the last RSS seen. */
static unsigned waited_ms;
static size_t wait_for_rss(size_t limit_kib, unsigned budget_ms) {
  size_t rss = qmt_rss_kib();
  for (waited_ms = 0; rss > limit_kib && waited_ms < budget_ms; waited_ms += 10) {
    sleep_ms(10);
    ordinary_calls();
    rss = qmt_rss_kib();
  }
  return rss;
}

static void **fill(size_t count, size_t size) {
  void **blocks = T_MALLOC(count * sizeof *blocks);
  CHECK(blocks != NULL);
  if (!blocks)
    return NULL;
  memset(blocks, 0, count * sizeof *blocks);
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(size);
    CHECK(blocks[i] != NULL);
    if (blocks[i])
      memset(blocks[i], (int)(i & 0xFF), size);
  }
  return blocks;
}

static int test_all_freed(bool trim) {
  const size_t size = 128, count = FILL / size;
  void **blocks = T_MALLOC(count * sizeof *blocks);
  CHECK(blocks != NULL);
  if (!blocks)
    return 1;
  memset(blocks, 0, count * sizeof *blocks); /* resident before the start is taken */
  size_t start = qmt_rss_kib();
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(size);
    CHECK(blocks[i] != NULL);
    if (blocks[i])
      memset(blocks[i], 0x5A, size);
  }
  size_t full = qmt_rss_kib();
  for (size_t i = 0; i < count; i++)
    T_FREE(blocks[i]);
  size_t freed = qmt_rss_kib();
  size_t after;
  if (trim) {
#ifdef QMT_PREFIXED
    qm_trim(0);
#else
    malloc_trim(0);
#endif
    after = qmt_rss_kib();
  } else {
    after = wait_for_rss(start + SLACK_KIB, purge_delay_ms() * 3 + 2000);
  }
  printf("start %zu KiB, full %zu KiB, after the frees %zu KiB, after %s %zu KiB (%u ms of sleeps)\n", start,
         full, freed, trim ? "malloc_trim(0)" : "the decay delay", after, trim ? 0 : waited_ms);
  if (qmt_strict)
    CHECK(after <= start + SLACK_KIB);
  T_FREE(blocks);
  return 0;
}

static int test_sparse(void) {
  const size_t size = 256, count = FILL / size, page = 4096;
  size_t start = qmt_rss_kib();
  void **blocks = fill(count, size);
  if (!blocks)
    return 1;
  size_t full = qmt_rss_kib();
  qmt_rng rng;
  qmt_rng_seed(&rng, 64);
  /* Keep a random 1 in 64; count the distinct OS pages the kept blocks touch. */
  size_t kept = 0, kept_pages = 0;
  uintptr_t last_page = 0;
  for (size_t i = 0; i < count; i++) {
    if (qmt_below(&rng, 64) == 0) {
      uintptr_t first = (uintptr_t)blocks[i] / page, last = ((uintptr_t)blocks[i] + size - 1) / page;
      kept_pages += (first == last_page) ? last - first : last - first + 1;
      last_page = last;
      blocks[kept++] = blocks[i];
    } else {
      T_FREE(blocks[i]);
    }
  }
  size_t floor_kib = kept_pages * page / 1024;
  size_t limit = start + floor_kib + floor_kib / 4 + SLACK_KIB;
  size_t after = wait_for_rss(limit, purge_delay_ms() * 3 + 2000);
  printf("start %zu KiB, full %zu KiB, %zu blocks kept on %zu OS pages (floor %zu KiB), after the delay "
         "%zu KiB (%.1f%% of the peak) after %u ms of sleeps\n",
         start, full, kept, kept_pages, floor_kib, after,
         100.0 * (double)(after - start) / (double)(full - start), waited_ms);
  if (qmt_strict)
    CHECK(after <= limit);
  for (size_t i = 0; i < kept; i++) {
    CHECK(((unsigned char *)blocks[i])[0] == ((unsigned char *)blocks[i])[size - 1]);
    T_FREE(blocks[i]);
  }
  T_FREE(blocks);
  return 0;
}

static int test_phases(void) {
  const size_t phase = 512 * MiB;
  size_t start = qmt_rss_kib();
  size_t small_count = phase / 64;
  void **small = fill(small_count, 64);
  if (!small)
    return 1;
  size_t after_small = qmt_rss_kib();
  for (size_t i = 0; i < small_count; i++)
    T_FREE(small[i]);
  T_FREE(small);
  size_t large_count = phase / (256 * KiB);
  void **large = fill(large_count, 256 * KiB);
  if (!large)
    return 1;
  size_t after_large = qmt_rss_kib();
  size_t peak = hwm_kib();
  for (size_t i = 0; i < large_count; i++)
    T_FREE(large[i]);
  T_FREE(large);
  size_t phase_kib = phase / KiB;
  printf("start %zu KiB, small phase %zu KiB, large phase %zu KiB, peak %zu KiB (one phase: %zu KiB)\n",
         start, after_small, after_large, peak, phase_kib);
  if (qmt_strict)
    CHECK(peak <= start + phase_kib + phase_kib / 2 + SLACK_KIB);
  return 0;
}

int main(int argc, char **argv) {
  qmt_start("purge");
  const char *mode = argc > 1 ? argv[1] : "decay";
  if (strcmp(mode, "decay") == 0)
    test_all_freed(false);
  else if (strcmp(mode, "trim") == 0)
    test_all_freed(true);
  else if (strcmp(mode, "sparse") == 0)
    test_sparse();
  else if (strcmp(mode, "phases") == 0)
    test_phases();
  else {
    fprintf(stderr, "usage: purge decay|trim|sparse|phases\n");
    return 2;
  }
  return check_result("purge");
}
