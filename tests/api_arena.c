/* Arenas: blocks aligned and disjoint with intact contents across chunks and large blocks, marks and
 * reset_to, reset keeping one chunk, errors, and destruction leaking nothing. */
#include "qmt.h"

static bool check_rss = true; /* RSS bounds hold without sanitizers ("no-rss" turns them off) */

#define MAXB 20000

static unsigned char *blocks[MAXB];
static size_t sizes[MAXB];

/* Allocates random sizes (some large, some aligned) from index `from`; returns the new count. */
static size_t fill_arena(qm_arena_t *a, qmt_rng *r, size_t from, size_t to, size_t max_size) {
  for (size_t i = from; i < to; i++) {
    size_t size = qmt_random_size(r, max_size);
    size_t alignment = qmt_below(r, 8) == 0 ? (size_t)1 << (4 + qmt_below(r, 10)) : 0;
    unsigned char *p = alignment ? qm_arena_aligned_alloc(a, alignment, size) : qm_arena_alloc(a, size);
    CHECKF(p != NULL, "arena allocation %zu of %zu bytes", i, size);
    if (!p)
      return i;
    CHECK(qmt_aligned(p, alignment ? alignment : 16));
    qmt_fill(p, size, qmt_seed(p, size));
    blocks[i] = p;
    sizes[i] = size;
  }
  return to;
}

static void verify_range(size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    CHECKF(qmt_verify(blocks[i], sizes[i], qmt_seed(blocks[i], sizes[i])) == SIZE_MAX,
           "arena block %zu (%zu bytes at %p) overwritten", i, sizes[i], (void *)blocks[i]);
}

static void test_alloc_and_marks(void) {
  qmt_rng r;
  qmt_rng_seed(&r, 9);
  qm_arena_t *a = qm_arena_new(4 * KiB); /* small, so that it grows and makes large blocks often */
  CHECK(a != NULL);
  CHECK(qm_arena_mark(a) == 0);
  size_t n = fill_arena(a, &r, 0, 2000, 20 * KiB);
  verify_range(0, n);
  /* Nested marks: each level resets to its own mark; what is below stays intact. */
  size_t marks[4], counts[4];
  for (int level = 0; level < 4; level++) {
    marks[level] = qm_arena_mark(a);
    counts[level] = n;
    n = fill_arena(a, &r, n, n + 3000, 100 * KiB);
  }
  verify_range(0, n);
  for (int level = 3; level >= 0; level--) {
    qm_arena_reset_to(a, marks[level]);
    CHECK(qm_arena_mark(a) == marks[level]);
    verify_range(0, counts[level]);
    /* The space is reused: the next block starts where the mark was (an aligned mark allocates there). */
    size_t m = qm_arena_mark(a);
    void *p = qm_arena_alloc(a, 16);
    CHECK(p != NULL);
    qm_arena_reset_to(a, m);
    n = counts[level];
  }
  qm_arena_reset_to(a, qm_arena_mark(a)); /* the top itself is a valid mark */
  qm_arena_reset(a);
  CHECK(qm_arena_mark(a) == 0);
  n = fill_arena(a, &r, 0, 3000, 50 * KiB);
  verify_range(0, n);
  qm_arena_destroy(a);
}

static void test_zero_and_errors(void) {
  qm_arena_t *a = qm_arena_new(0);
  void *p = qm_arena_alloc(a, 0);
  CHECK(p != NULL);
  errno = 0;
  CHECK(qm_arena_alloc(a, SIZE_MAX) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(qm_arena_alloc(a, qmt_opaque((size_t)1 << 62)) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(qm_arena_aligned_alloc(a, 24, 10) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(qm_arena_aligned_alloc(a, 64, SIZE_MAX - 100) == NULL && errno == ENOMEM);
  void *q = qm_arena_aligned_alloc(a, 1 * MiB, 100);
  CHECK(q != NULL && qmt_aligned(q, 1 * MiB));
  void *big = qm_arena_alloc(a, 10 * MiB); /* a large block: a huge one */
  CHECK(big != NULL);
  if (big)
    memset(big, 9, 10 * MiB);
  qm_arena_destroy(a);
  qm_arena_destroy(NULL);
  errno = 0;
  CHECK(qm_arena_new(SIZE_MAX) == NULL && errno == ENOMEM);
}

/* A loop that fills and resets an arena stops growing; destroyed arenas leave nothing behind. */
static void test_reset_and_destroy_leak_nothing(void) {
  qm_process_info_t before, after;
  qm_trim(0);
  qm_process_info(&before);
  size_t rss_before = qmt_rss_kib();
  qmt_rng r;
  qmt_rng_seed(&r, 12);
  for (int round = 0; round < 20; round++) {
    qm_arena_t *a = qm_arena_new(16 * KiB);
    for (int frame = 0; frame < 10; frame++) {
      for (int i = 0; i < 20000; i++) {
        size_t size = qmt_random_size(&r, 1000);
        memset(qm_arena_alloc(a, size), 1, size);
      }
      unsigned char *huge = qm_arena_alloc(a, 3 * MiB);
      CHECK(huge != NULL);
      if (huge)
        memset(huge, 2, 3 * MiB);
      qm_arena_reset(a);
    }
    qm_arena_destroy(a);
  }
  qm_trim(0);
  qm_process_info(&after);
  size_t rss_after = qmt_rss_kib();
  fprintf(stderr, "  arenas x20: segments %zu -> %zu, huge %zu -> %zu, RSS %zu -> %zu KiB\n",
          before.segments_mapped, after.segments_mapped, before.huge_blocks, after.huge_blocks, rss_before,
          rss_after);
  CHECK(after.segments_mapped <= before.segments_mapped + 1);
  CHECK(after.huge_blocks == before.huge_blocks);
  if (check_rss) /* sanitizers' own bookkeeping grows with the work */
    CHECKF(rss_after < rss_before + 8 * 1024, "RSS grew from %zu to %zu KiB", rss_before, rss_after);
  CHECK(qm_heap_validate());
}

int main(int argc, char **argv) {
  qmt_start("api_arena");
  check_rss = !(argc > 1 && strcmp(argv[1], "no-rss") == 0);
  test_alloc_and_marks();
  test_zero_and_errors();
  test_reset_and_destroy_leak_nothing();
  return check_result("api_arena");
}
