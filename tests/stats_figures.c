/* The statistics of one thread against known allocation patterns: 1,000 live 100-byte blocks are
 * 1,000 blocks of class 112 and 112,000 bytes in use, in pages of 16 KiB; freeing them takes both
 * back; large blocks count at span size and huge ones at their page-rounded size; requests (level 2
 * for small blocks, level 1 for large and huge), the peak (level 2), and mallinfo2 agree with
 * qm_stats_get.
 * Figures are compared as differences between two snapshots, with nothing allocated between
 * them but the blocks under test. A library built without statistics (level 0) is only checked
 * for saying so. */
#include "stats_api.h"

enum { SMALL_COUNT = 1000, SMALL_SIZE = 100, SMALL_CLASS_SIZE = 112, LARGE_COUNT = 3 };
#define LARGE_SIZE ((size_t)100000)
#define LARGE_SPAN ((size_t)13 * 8 * KiB) /* 100,000 bytes rounded up to 8 KiB slices */
#define HUGE_SIZE ((size_t)5 * MiB + 1)
#define HUGE_USABLE ((size_t)5 * MiB + 4 * KiB) /* rounded up to the OS page */

static void *volatile small[SMALL_COUNT];
static void *volatile large[LARGE_COUNT];
static void *volatile huge;

/* after - before, for one field of a row and of the totals */
#define ROW_DELTA(a, b, row, field) ((long long)(a).rows[row].field - (long long)(b).rows[row].field)
#define TOTAL_DELTA(a, b, field) ((long long)(a).field - (long long)(b).field)

static void check_consistent(const qm_stats_t *s) {
  CHECK(s->row_count == QM_STATS_ROWS);
  CHECKF(s->committed >= s->bytes_in_use, "committed %zu < in use %zu", s->committed, s->bytes_in_use);
  CHECK(s->fragmentation >= 0.0 && s->fragmentation <= 1.0);
  CHECK(s->mapped >= s->committed);
  CHECK(s->peak_mapped >= s->mapped);
  CHECK(s->resident_estimate >= s->committed);
  for (size_t r = 0; r < QM_STATS_SMALL_CLASSES; r++) {
    const qm_class_stats_t *row = &s->rows[r];
    CHECKF(row->bytes_in_use == row->blocks_in_use * row->block_size, "class %zu", r);
    CHECKF(row->committed >= row->bytes_in_use, "class %zu", r);
  }
  if (s->level >= 2)
    CHECKF(s->peak_bytes_in_use >= s->bytes_in_use, "peak %zu < in use %zu", s->peak_bytes_in_use,
           s->bytes_in_use);
}

#ifndef QMT_PREFIXED
/* mallinfo2 is qmalloc's only when qmalloc is the malloc; see its mapping in override.c. */
static void check_mallinfo2(void) {
  qm_stats_t s;
  qmt_stats_get(&s);
  struct mallinfo2 m = mallinfo2();
  const qm_class_stats_t *huge_row = &s.rows[QM_STATS_ROW_HUGE];
  CHECKF(m.uordblks == s.bytes_in_use - huge_row->bytes_in_use, "uordblks %zu, stats %zu", m.uordblks,
         s.bytes_in_use - huge_row->bytes_in_use);
  CHECKF(m.arena == s.committed - huge_row->committed, "arena %zu, stats %zu", m.arena,
         s.committed - huge_row->committed);
  CHECK(m.fordblks == m.arena - m.uordblks);
  CHECK(m.hblks == s.huge_blocks);
  CHECK(m.hblkhd == huge_row->committed);
}
#endif

int main(void) {
  qmt_start("stats_figures");
  qm_stats_t before, after;
  if (!qmt_stats_get(&before) || !qmt_strict)
    return check_result("stats_figures");
  fprintf(stderr, "  statistics level %d\n", before.level);
  if (before.level == 0) {
    CHECK(before.row_count == QM_STATS_ROWS);
    CHECK(before.bytes_in_use == 0 && before.blocks_in_use == 0);
    return check_result("stats_figures");
  }
  size_t row = qmt_stats_row(&before, SMALL_SIZE);
  CHECKF(before.rows[row].block_size == SMALL_CLASS_SIZE, "class of %d: %zu", SMALL_SIZE,
         before.rows[row].block_size);
  check_consistent(&before);

  /* 1,000 small blocks, half of them from calloc */
  for (size_t i = 0; i < SMALL_COUNT; i++)
    small[i] = i % 2 ? T_MALLOC(SMALL_SIZE) : T_CALLOC(1, SMALL_SIZE);
  qmt_stats_get(&after);
  CHECKF(ROW_DELTA(after, before, row, blocks_in_use) == SMALL_COUNT, "blocks in use +%lld",
         ROW_DELTA(after, before, row, blocks_in_use));
  CHECKF(ROW_DELTA(after, before, row, bytes_in_use) == SMALL_COUNT * SMALL_CLASS_SIZE, "bytes in use +%lld",
         ROW_DELTA(after, before, row, bytes_in_use));
  CHECK(TOTAL_DELTA(after, before, blocks_in_use) == SMALL_COUNT);
  CHECK(TOTAL_DELTA(after, before, bytes_in_use) == SMALL_COUNT * SMALL_CLASS_SIZE);
  /* Classes up to 256 B live in pages of 16 KiB (internal.h, qm_class_page_slices). */
  CHECKF(after.rows[row].pages >= 7, "%zu pages hold 112,000 bytes in pages of 16 KiB",
         after.rows[row].pages);
  CHECKF(after.rows[row].committed == after.rows[row].pages * 16 * KiB,
         "%zu pages of class 112 commit %zu bytes", after.rows[row].pages, after.rows[row].committed);
  if (after.level >= 2) {
    CHECKF(ROW_DELTA(after, before, row, requests) == SMALL_COUNT, "requests +%lld",
           ROW_DELTA(after, before, row, requests));
    CHECK(ROW_DELTA(after, before, row, bytes_requested) == SMALL_COUNT * SMALL_SIZE);
    CHECK(TOTAL_DELTA(after, before, requests) == SMALL_COUNT);
  } else {
    CHECK(after.rows[row].requests == 0);
  }
  check_consistent(&after);
  size_t small_in_use = after.bytes_in_use;

  for (size_t i = 0; i < SMALL_COUNT; i++)
    T_FREE(small[i]);
  qmt_stats_get(&after);
  CHECKF(ROW_DELTA(after, before, row, blocks_in_use) == 0, "blocks in use %+lld after the frees",
         ROW_DELTA(after, before, row, blocks_in_use));
  CHECK(TOTAL_DELTA(after, before, bytes_in_use) == 0);
  if (after.level >= 2)
    CHECKF(after.peak_bytes_in_use >= small_in_use, "peak %zu < %zu", after.peak_bytes_in_use, small_in_use);

  /* large and huge blocks */
  for (size_t i = 0; i < LARGE_COUNT; i++)
    large[i] = T_MALLOC(LARGE_SIZE);
  huge = T_MALLOC(HUGE_SIZE);
  qmt_stats_get(&after);
  const size_t L = QM_STATS_ROW_LARGE, H = QM_STATS_ROW_HUGE;
  CHECK(ROW_DELTA(after, before, L, blocks_in_use) == LARGE_COUNT);
  CHECKF(ROW_DELTA(after, before, L, bytes_in_use) == (long long)(LARGE_COUNT * LARGE_SPAN), "large +%lld",
         ROW_DELTA(after, before, L, bytes_in_use));
  CHECK(ROW_DELTA(after, before, L, requests) == LARGE_COUNT);
  CHECK(ROW_DELTA(after, before, L, bytes_requested) == (long long)(LARGE_COUNT * LARGE_SIZE));
  CHECK(ROW_DELTA(after, before, H, blocks_in_use) == 1);
  CHECKF(ROW_DELTA(after, before, H, bytes_in_use) == (long long)HUGE_USABLE, "huge +%lld",
         ROW_DELTA(after, before, H, bytes_in_use));
  CHECK(ROW_DELTA(after, before, H, requests) == 1);
  CHECK(ROW_DELTA(after, before, H, bytes_requested) == (long long)HUGE_SIZE);
  CHECK(after.rows[H].committed >= after.rows[H].bytes_in_use);
  CHECK(TOTAL_DELTA(after, before, bytes_in_use) == (long long)(LARGE_COUNT * LARGE_SPAN + HUGE_USABLE));
  CHECK(after.huge_blocks == before.huge_blocks + 1);
  check_consistent(&after);
  size_t big_in_use = after.bytes_in_use;
#ifndef QMT_PREFIXED
  check_mallinfo2();
#endif

  for (size_t i = 0; i < LARGE_COUNT; i++)
    T_FREE(large[i]);
  T_FREE(huge);
  qmt_stats_get(&after);
  CHECK(ROW_DELTA(after, before, L, blocks_in_use) == 0);
  CHECK(ROW_DELTA(after, before, H, blocks_in_use) == 0);
  CHECK(TOTAL_DELTA(after, before, bytes_in_use) == 0);
  if (after.level >= 2)
    CHECKF(after.peak_bytes_in_use >= big_in_use, "peak %zu < %zu", after.peak_bytes_in_use, big_in_use);
  CHECK(after.peak_mapped >= HUGE_USABLE);
  check_consistent(&after);
#ifndef QMT_PREFIXED
  check_mallinfo2();
#endif
  CHECK(qmt_heap_validate());
  return check_result("stats_figures");
}
