/* Freed huge blocks are kept, resident, for the next huge allocation (huge.c): a block of the same
 * size right after a free needs no new mapping; a smaller one is placed inside a cached mapping,
 * and so is one that fits in the end a realloc cut off; a larger one gathers the pages of several
 * cached mappings; mappings are made, cut and gathered in whole page tables; the mapped bytes
 * never exceed the most the live huge blocks ever mapped; blocks made of several mappings keep
 * their contents through realloc; new mappings are advised for transparent huge pages where the
 * kernel never compacts memory in an advised fault, unless QMALLOC_HUGE_THP is off; calloc never
 * sees old contents; malloc_trim gives the cached mappings back; a free of a block whose mapping
 * waits in the cache is still a double free (death_double_free_huge). */
#include "stats_api.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* The bytes fill() wrote at multiples of 512 inside the first n bytes (after a shrink, the last
 * byte fill() wrote lies beyond the block). */
static bool filled_front(const unsigned char *p, size_t n, unsigned char value) {
  for (size_t i = 0; i < n; i += 512)
    if (p[i] != value)
      return false;
  return true;
}

/* Writes the n bytes of p, grows it to m by realloc, checks that the n bytes came along, writes all
 * m; returns the block (p itself if realloc failed). */
static unsigned char *grow_written(unsigned char *p, size_t n, size_t m, unsigned char before,
                                   unsigned char after) {
  fill(p, n, before);
  CHECK(filled(p, n, before));
  unsigned char *q = T_REALLOC(p, m);
  CHECK(q != NULL);
  if (q == NULL)
    return p;
  CHECK(filled(q, n, before));
  fill(q, m, after);
  CHECK(filled(q, m, after));
  return q;
}

/* Pages of [p, p + n) that are resident: cached pages are, fresh ones are not until written. */
static size_t resident_bytes(void *p, size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)p & ~(page - 1);
  size_t pages = ((uintptr_t)p + n - start + page - 1) / page;
  static unsigned char vec[(256 * MiB) / 4096];
  if (pages > sizeof vec || mincore((void *)start, pages * page, vec) != 0)
    return 0;
  size_t resident = 0;
  for (size_t i = 0; i < pages; i++)
    resident += vec[i] & 1;
  return resident * page;
}

static size_t huge_bytes(void) {
  qm_process_info_t info;
  return qmt_process_info(&info) ? info.huge_bytes : 0;
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
  /* Smaller: placed inside the cached mapping. */
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
  if (d != NULL)
    T_FREE(grow_written(d, 20 * MiB, 30 * MiB, 0x33, 0x44));
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

/* Puts two blocks of n bytes, written through, into an empty cache; with `gap`, a live block
 * allocated between them keeps their mappings apart (returned there, for the caller to free). */
static void cache_two_blocks(size_t n, unsigned char **gap) {
  T_TRIM(0);
  unsigned char *a = T_MALLOC(n);
  unsigned char *between = gap != NULL ? T_MALLOC(3 * MiB) : NULL;
  unsigned char *b = T_MALLOC(n);
  CHECK(a != NULL && b != NULL && (gap == NULL || between != NULL));
  fill(a, n, 1);
  fill(b, n, 2);
  T_FREE(a);
  T_FREE(b);
  if (gap != NULL)
    *gap = between;
}

/* Two cached mappings of 8 MiB and a request for 14 MiB: both give their pages (found resident
 * before the block is first written), not just the larger one. */
static void test_gather(void) {
  unsigned char *gap = NULL;
  cache_two_blocks(8 * MiB, &gap);
  unsigned char *c = T_MALLOC(14 * MiB);
  CHECK(c != NULL);
  if (c == NULL) {
    T_FREE(gap);
    return;
  }
  if (qmt_strict)
    CHECKF(resident_bytes(c, 14 * MiB) >= 11 * MiB,
           "only %zu KiB of a 14 MiB block made of 16 MiB of freed pages are resident",
           resident_bytes(c, 14 * MiB) / KiB);
  /* Grown by realloc, it keeps its contents however many mappings it is made of. */
  unsigned char *d = grow_written(c, 14 * MiB, 40 * MiB, 3, 4);
  unsigned char *e = T_REALLOC(d, 20 * MiB);
  CHECK(e != NULL && filled_front(e, 20 * MiB, 4));
  T_FREE(e);
  T_FREE(gap);
}

/* The end a shrinking realloc cuts off is cached: a block that fits in it needs no new mapping. */
static void test_shrunk_end_reused(void) {
  T_TRIM(0);
  unsigned char *a = T_MALLOC(40 * MiB);
  CHECK(a != NULL);
  fill(a, 40 * MiB, 5);
  unsigned char *b = T_REALLOC(a, 10 * MiB);
  CHECK(b != NULL && filled_front(b, 10 * MiB, 5));
  size_t before = map_calls();
  unsigned char *c = T_MALLOC(24 * MiB);
  CHECK(c != NULL);
  if (qmt_strict)
    CHECKF(map_calls() == before,
           "a 24 MiB block after a realloc cut 30 MiB off another needed %zu new mappings",
           map_calls() - before);
  fill(c, 24 * MiB, 6);
  CHECK(filled_front(b, 10 * MiB, 5));
  T_FREE(c);
  T_FREE(b);
}

/* Keeping freed pages never maps more than the live blocks once needed: 2 x 30 MiB live, both
 * freed, then 70 MiB takes the pages of both and maps only the rest. A block's mapping is whole
 * 2 MiB page tables: 70 MiB and its 4 KiB header take 72 MiB. */
static void test_budget(void) {
  cache_two_blocks(30 * MiB, NULL);
  unsigned char *c = T_MALLOC(70 * MiB);
  CHECK(c != NULL);
  if (qmt_strict)
    CHECKF(huge_bytes() <= 72 * MiB,
           "%zu KiB mapped for huge blocks with a 72 MiB mapping live and a peak of 72 MiB",
           huge_bytes() / KiB);
  fill(c, 70 * MiB, 9);
  T_FREE(c);
  T_TRIM(0);
}

/* The first boundary of a kernel mapping (VMA) strictly inside [lo, hi) that is not a multiple of
 * 2 MiB; 0 if none, or if /proc/self/maps cannot be read (nothing to check then). */
static uintptr_t misaligned_boundary(const void *lo, const void *hi) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL)
    return 0;
  char line[512];
  uintptr_t bad = 0;
  while (bad == 0 && fgets(line, sizeof line, f) != NULL) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx ", &start, &end) != 2)
      continue;
    uintptr_t edges[2] = {start, end};
    for (int i = 0; i < 2 && bad == 0; i++)
      if (edges[i] > (uintptr_t)lo && edges[i] < (uintptr_t)hi && edges[i] % (2 * MiB) != 0)
        bad = edges[i];
  }
  fclose(f);
  return bad;
}

/* Huge mappings are made, cut and gathered in whole 2 MiB page tables, so that mremap moves page
 * tables whole (huge.c): three freed blocks of odd sizes, kept apart by live ones, gathered into
 * one block and cut by a shrinking realloc, leave no kernel mapping boundary inside a page table
 * of the block. */
static void test_whole_page_tables(void) {
  T_TRIM(0);
  const size_t sizes[3] = {5 * MiB + 12345, 7 * MiB + 777, 9 * MiB + 1};
  unsigned char *blocks[3], *gaps[3];
  for (int i = 0; i < 3; i++) {
    blocks[i] = T_MALLOC(sizes[i]);
    gaps[i] = T_MALLOC(3 * MiB);
    CHECK(blocks[i] != NULL && gaps[i] != NULL);
    if (blocks[i] != NULL)
      fill(blocks[i], sizes[i], (unsigned char)(i + 1));
  }
  for (int i = 0; i < 3; i++)
    T_FREE(blocks[i]);
  size_t n = 20 * MiB + 4321;
  unsigned char *c = T_MALLOC(n);
  CHECK(c != NULL);
  if (c != NULL && qmt_strict) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    CHECKF(resident_bytes(c, n) >= 15 * MiB,
           "only %zu KiB of a block gathered from 21 MiB of freed pages are resident",
           resident_bytes(c, n) / KiB);
    uintptr_t bad = misaligned_boundary(c - page, c + qmt_round_up(n + page, 2 * MiB));
    CHECKF(bad == 0,
           "a gathered %zu-byte block at %p has a kernel mapping boundary at %#lx, inside a page table", n,
           (void *)c, (unsigned long)bad);
    fill(c, n, 7);
    unsigned char *d = T_REALLOC(c, 11 * MiB + 5);
    CHECK(d != NULL && filled_front(d, 11 * MiB, 7));
    if (d != NULL) {
      c = d;
      bad = misaligned_boundary(c - page, c + 20 * MiB);
      CHECKF(bad == 0,
             "after a shrinking realloc, a kernel mapping boundary at %#lx lies inside a page table",
             (unsigned long)bad);
    }
  }
  T_FREE(c);
  for (int i = 0; i < 3; i++)
    T_FREE(gaps[i]);
  T_TRIM(0);
}

/* Whether the kernel mapping holding p carries MADV_HUGEPAGE ("hg" in its VmFlags); -1: unknown. */
static int advised_huge(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL)
    return -1;
  char line[512];
  bool inside = false;
  int found = -1;
  while (found < 0 && fgets(line, sizeof line, f) != NULL) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, ':') != NULL && line[0] != 'V')
      inside = (uintptr_t)p >= start && (uintptr_t)p < end;
    else if (inside && strncmp(line, "VmFlags:", 8) == 0)
      found = strstr(line, " hg") != NULL;
  }
  fclose(f);
  return found;
}

/* The kernel's THP defrag setting, the choice in brackets ("madvise"), or "" where unreadable. */
static void thp_defrag(char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/defrag", "r");
  if (f == NULL)
    return;
  char line[128];
  if (fgets(line, sizeof line, f) != NULL) {
    const char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
    if (close != NULL)
      snprintf(out, size, "%.*s", (int)(close - open - 1), open + 1);
  }
  fclose(f);
}

/* A fresh huge mapping is advised for 2 MiB pages by default where that cannot make a page fault
 * wait for the kernel to compact memory (defrag "defer" or "never"), never elsewhere, and not once
 * the option is off. */
static void test_thp_advice(void) {
  T_TRIM(0);
  unsigned char *a = T_MALLOC(12 * MiB);
  CHECK(a != NULL);
  int result = -2;
  if (!qmt_strict || advised_huge(a) < 0 || !qmt_option_set("huge_thp", "0", &result)) {
    T_FREE(a);
    return;
  }
  char defrag[32];
  thp_defrag(defrag, sizeof defrag);
  int expected = strcmp(defrag, "defer") == 0 || strcmp(defrag, "never") == 0;
  CHECKF(advised_huge(a) == expected,
         "a fresh 12 MiB block is %sadvised for transparent huge pages (defrag \"%s\")",
         expected ? "not " : "", defrag);
  CHECK(result == 0);
  unsigned char *b = T_MALLOC(12 * MiB);
  CHECK(b != NULL);
  CHECKF(advised_huge(b) == 0, "with QMALLOC_HUGE_THP off, a fresh 12 MiB block is advised");
  CHECK(qmt_option_set("huge_thp", "1", &result) && result == 0);
  T_FREE(a);
  T_FREE(b);
  T_TRIM(0);
}

int main(void) {
  qmt_start("huge_cache");
  test_reuse();
  test_reuse_big();
  test_gather();
  test_shrunk_end_reused();
  test_budget();
  test_whole_page_tables();
  test_thp_advice();
  test_calloc_is_zero();
  test_trim();
  CHECK(qmt_heap_validate());
  return check_result("huge_cache");
}
