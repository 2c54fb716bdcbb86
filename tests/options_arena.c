/* QMALLOC_ARENA_RESERVE=64m and QMALLOC_THP=1 (set by ctest in the environment): segments come
 * from the reserved arena until it is used up, then from ordinary mappings; a trim gives the
 * arena's segments back (their pages leave the resident set, the address space stays reserved)
 * and later allocations reuse them. Contents are checked throughout; resident sizes are read from
 * /proc/self/status, nothing is timed.
 * usage: options_arena [check-rss]   (0: report the resident set without checking it, for
 * sanitizer builds, whose own bookkeeping grows with the work) */
#include "stats_api.h"

enum { BLOCK = 1024 };
#define FILL (96 * MiB) /* more than the arena holds */
#define COUNT (FILL / BLOCK)
#define ARENA (64 * MiB)

static unsigned char **blocks;

static void fill(size_t count) {
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(BLOCK);
    CHECK(blocks[i] != NULL);
    if (blocks[i])
      qmt_fill(blocks[i], BLOCK, qmt_seed(blocks[i], BLOCK));
  }
}

static void verify_and_free(size_t count) {
  size_t bad = 0;
  for (size_t i = 0; i < count; i++) {
    if (blocks[i] && qmt_verify(blocks[i], BLOCK, qmt_seed(blocks[i], BLOCK)) != SIZE_MAX)
      bad++;
    T_FREE(blocks[i]);
  }
  CHECKF(bad == 0, "%zu blocks lost their contents", bad);
}

int main(int argc, char **argv) {
  qmt_start("options_arena");
  bool check_rss = argc < 2 || atoi(argv[1]) != 0;
  qm_stats_t s;
  if (!qmt_stats_get(&s) || !qmt_strict)
    return check_result("options_arena");
  blocks = T_MALLOC(COUNT * sizeof *blocks);
  CHECK(blocks != NULL);
  if (!blocks)
    return check_result("options_arena");

  fill(COUNT);
  qmt_stats_get(&s);
  size_t rss_full = qmt_rss_kib();
  fprintf(stderr, "  full: arena %zu MiB reserved, %zu MiB used; %zu segments; RSS %zu KiB\n",
          s.arena_reserved / MiB, s.arena_used / MiB, s.segments, rss_full);
  CHECKF(s.arena_reserved == ARENA, "arena reserved: %zu bytes", s.arena_reserved);
  CHECKF(s.arena_used == ARENA, "arena used: %zu bytes (all of it should be)", s.arena_used);
  CHECKF(s.segments * 4 * MiB > ARENA, "%zu segments: more than the arena's 16 expected", s.segments);

  verify_and_free(COUNT);
  qmt_trim();
  qmt_stats_get(&s);
  size_t rss_trimmed = qmt_rss_kib();
  fprintf(stderr, "  trimmed: arena %zu MiB used; %zu segments; RSS %zu KiB\n", s.arena_used / MiB,
          s.segments, rss_trimmed);
  CHECKF(s.arena_used <= 8 * MiB, "after the trim %zu bytes of the arena are still in segments",
         s.arena_used);
  if (check_rss)
    CHECKF(rss_trimmed + 80 * 1024 < rss_full, "RSS %zu KiB -> %zu KiB: the trim gave little back", rss_full,
           rss_trimmed);

  fill(COUNT / 2);
  qmt_stats_get(&s);
  fprintf(stderr, "  refilled half: arena %zu MiB used; %zu segments\n", s.arena_used / MiB, s.segments);
  CHECKF(s.arena_used >= 32 * MiB, "the arena's segments were not reused (%zu bytes used)", s.arena_used);
  verify_and_free(COUNT / 2);
  T_FREE(blocks);
  CHECK(qmt_heap_validate());
  return check_result("options_arena");
}
