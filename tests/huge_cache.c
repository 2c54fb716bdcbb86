/* Freed huge blocks are kept, resident, for the next huge allocation (huge.c): a block of the same
 * size right after a free needs no new mapping, up to 64 MiB; smaller and larger ones reuse it too
 * (cut or grown by mremap); calloc never sees old contents; malloc_trim gives the cached mappings
 * back; a free of a block whose mapping waits in the cache is still a double free
 * (death_double_free_huge). */
#include "qmt.h"

#include <malloc.h>

#define HUGE_A (8 * MiB)

#ifdef QMT_PREFIXED
#define T_TRIM qm_trim
#else
#define T_TRIM malloc_trim
#endif

static size_t map_calls(void) {
  qm_process_info_t info;
  return qmt_process_info(&info) ? info.os_map_calls : 0;
}

static void fill(unsigned char *p, size_t n, unsigned char value) {
  for (size_t i = 0; i < n; i += 512)
    p[i] = value;
  p[n - 1] = value;
}

static bool filled(const unsigned char *p, size_t n, unsigned char value) {
  for (size_t i = 0; i < n; i += 512)
    if (p[i] != value)
      return false;
  return p[n - 1] == value;
}

static void test_reuse(void) {
  unsigned char *a = T_MALLOC(HUGE_A);
  CHECK(a != NULL);
  fill(a, HUGE_A, 0xa5);
  T_FREE(a);
  size_t before = map_calls();
  /* Same size: the cached mapping, no mmap. */
  unsigned char *b = T_MALLOC(HUGE_A);
  CHECK(b != NULL);
  if (qmt_strict)
    CHECKF(map_calls() == before, "a huge block of the size just freed needed %zu new mappings",
           map_calls() - before);
  fill(b, HUGE_A, 0x11);
  CHECK(T_USABLE_SIZE(b) >= HUGE_A);
  T_FREE(b);
  /* Smaller: the cached mapping, cut. */
  before = map_calls();
  unsigned char *c = T_MALLOC(5 * MiB);
  CHECK(c != NULL);
  if (qmt_strict) {
    CHECK(map_calls() == before);
    CHECKF(T_USABLE_SIZE(c) == qmt_round_up(5 * MiB, QMT_HUGE_UNIT), "usable %zu", T_USABLE_SIZE(c));
  }
  fill(c, 5 * MiB, 0x22);
  T_FREE(c);
  /* Larger: grown from the cached one (in place or moved by mremap), contents writable. */
  unsigned char *d = T_MALLOC(20 * MiB);
  CHECK(d != NULL);
  fill(d, 20 * MiB, 0x33);
  CHECK(filled(d, 20 * MiB, 0x33));
  unsigned char *e = T_REALLOC(d, 30 * MiB);
  CHECK(e != NULL);
  CHECK(filled(e, 20 * MiB, 0x33));
  fill(e, 30 * MiB, 0x44);
  T_FREE(e);
}

/* The biggest blocks the cache keeps: one of 60 MiB, freed and allocated again, needs no mapping. */
static void test_reuse_big(void) {
  unsigned char *a = T_MALLOC(60 * MiB);
  CHECK(a != NULL);
  if (!a)
    return;
  fill(a, 60 * MiB, 0x5a);
  T_FREE(a);
  size_t before = map_calls();
  unsigned char *b = T_MALLOC(60 * MiB);
  CHECK(b != NULL);
  if (qmt_strict)
    CHECKF(map_calls() == before, "a 60 MiB block right after one was freed needed %zu new mappings",
           map_calls() - before);
  T_FREE(b);
}

static void test_calloc_is_zero(void) {
  unsigned char *a = T_MALLOC(HUGE_A);
  CHECK(a != NULL);
  memset(a, 0xff, HUGE_A);
  T_FREE(a);
  unsigned char *z = T_CALLOC(1, HUGE_A);
  CHECK(z != NULL);
  bool zero = true;
  for (size_t i = 0; i < HUGE_A && zero; i++)
    zero = z[i] == 0;
  CHECK(zero);
  T_FREE(z);
}

static void test_trim(void) {
  unsigned char *a = T_MALLOC(16 * MiB);
  CHECK(a != NULL);
  fill(a, 16 * MiB, 0x55);
  T_FREE(a);
  qm_process_info_t info;
  if (!qmt_process_info(&info) || !qmt_strict)
    return;
  T_TRIM(0);
  CHECK(qmt_process_info(&info));
  CHECKF(info.huge_bytes == 0, "%zu bytes of huge mappings after malloc_trim", info.huge_bytes);
  CHECK(info.huge_blocks == 0);
}

int main(void) {
  qmt_start("huge_cache");
  test_reuse();
  test_reuse_big();
  test_calloc_is_zero();
  test_trim();
  CHECK(qmt_heap_validate());
  return check_result("huge_cache");
}
