/* A free span knows how much of its memory may still be resident (span.c, resident_slices): a
 * freed block merged with memory never touched does not make that memory count as dirty, a purge
 * gives back only the part that may be resident, and the part of a split span that lies beyond it
 * is known to read as zero, while the part before it is not.
 *
 *   counts_own_memory   a 256 KiB large block, written and freed in a fresh segment, adds 256 KiB
 *                       to the dirty free memory of the statistics (not the whole rest of the
 *                       segment it merges with), and malloc_trim purges that part (up to the
 *                       end of its 2 MiB transparent huge page: less than 3 MiB in all).
 *   calloc_after_merge  two adjacent blocks, written and freed (in both orders): calloc of the same
 *                       sizes gets them back, zeroed.
 *   calloc_after_grow   a block grows in place into a freed, written neighbour: calloc of the rest
 *                       of the neighbour gets it zeroed.
 *   calloc_keeps_zero_tail  a 256 KiB block written and freed where malloc_trim had purged a 1 MiB
 *                       one: calloc of 1 MiB there clears the written part only, and leaves the
 *                       rest (which reads as zero) not resident (where mincore can tell).
 * Each check runs in a thread of its own, so that it starts from an empty heap; the purge delay is
 * set to a minute, so that no decay pass purges anything meanwhile. */

#include "stats_api.h"

#define BLOCK (256 * KiB) /* a large block: 32 slices */

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

static void *counts_own_memory(void *arg) {
  (void)arg;
  qm_stats_t before, freed, trimmed;
  unsigned char *p = T_MALLOC(BLOCK);
  CHECK(p != NULL);
  if (!p)
    return NULL;
  memset(p, 0x5a, BLOCK);
  if (!qmt_stats_get(&before)) {
    T_FREE(p);
    return NULL;
  }
  T_FREE(p);
  qmt_stats_get(&freed);
  size_t added = freed.free_dirty - before.free_dirty;
  CHECKF(freed.free_dirty >= before.free_dirty && added >= BLOCK && added < BLOCK + 256 * KiB,
         "freeing a written %zu KiB block took the dirty free memory from %zu to %zu KiB", BLOCK / KiB,
         before.free_dirty / KiB, freed.free_dirty / KiB);
  qmt_trim();
  qmt_stats_get(&trimmed);
  size_t purged = trimmed.bytes_purged - freed.bytes_purged;
  CHECKF(purged >= BLOCK && purged < 3 * MiB, "malloc_trim purged %zu KiB after a %zu KiB block was freed",
         purged / KiB, BLOCK / KiB);
  CHECKF(trimmed.free_dirty < before.free_dirty + 64 * KiB,
         "after malloc_trim, %zu KiB of free memory is dirty", trimmed.free_dirty / KiB);
  return NULL;
}

/* Two adjacent written blocks freed in the given order, then calloc'd again. */
static void merge_and_calloc(bool first_freed_first) {
  unsigned char *a = T_MALLOC(BLOCK), *b = T_MALLOC(BLOCK);
  CHECK(a != NULL && b != NULL);
  if (!a || !b)
    return;
  if (qmt_strict)
    CHECKF(b == a + BLOCK, "two large blocks in a fresh heap are not adjacent (%p, %p)", (void *)a,
           (void *)b);
  memset(a, 0xab, BLOCK);
  memset(b, 0xcd, BLOCK);
  T_FREE(first_freed_first ? a : b);
  T_FREE(first_freed_first ? b : a);
  unsigned char *c = T_CALLOC(1, BLOCK), *d = T_CALLOC(1, BLOCK);
  CHECK(c != NULL && d != NULL);
  if (c && d) {
    if (qmt_strict)
      CHECKF(c == a && d == b, "calloc did not take the freed blocks back (%p, %p for %p, %p)", (void *)c,
             (void *)d, (void *)a, (void *)b);
    CHECKF(all_zero(c, BLOCK) && all_zero(d, BLOCK),
           "calloc returned memory that is not zero (freed %s first)",
           first_freed_first ? "the first block" : "the second block");
  }
  T_FREE(c);
  T_FREE(d);
  CHECK(qmt_heap_validate());
}

static void *calloc_after_merge(void *arg) {
  (void)arg;
  merge_and_calloc(true);
  merge_and_calloc(false);
  return NULL;
}

static void *calloc_after_grow(void *arg) {
  (void)arg;
  unsigned char *a = T_MALLOC(BLOCK), *b = T_MALLOC(BLOCK);
  CHECK(a != NULL && b != NULL);
  if (!a || !b)
    return NULL;
  if (qmt_strict)
    CHECKF(b == a + BLOCK, "two large blocks in a fresh heap are not adjacent (%p, %p)", (void *)a,
           (void *)b);
  memset(a, 0x11, BLOCK);
  memset(b, 0x22, BLOCK);
  T_FREE(b);
  unsigned char *grown = T_REALLOC(a, BLOCK + BLOCK / 2);
  CHECK(grown != NULL);
  if (!grown)
    return NULL;
  if (qmt_strict)
    CHECKF(grown == a, "realloc did not grow the block in place into its free neighbour");
  unsigned char *rest = T_CALLOC(1, BLOCK / 2);
  CHECK(rest != NULL);
  if (rest) {
    if (qmt_strict && grown == a)
      CHECKF(rest == a + BLOCK + BLOCK / 2, "calloc did not take the rest of the freed neighbour (%p)",
             (void *)rest);
    CHECKF(all_zero(rest, BLOCK / 2), "calloc returned memory that is not zero after an in-place growth");
  }
  T_FREE(rest);
  T_FREE(grown);
  CHECK(qmt_heap_validate());
  return NULL;
}

static void *calloc_keeps_zero_tail(void *arg) {
  (void)arg;
  unsigned char *a = T_MALLOC(4 * BLOCK);
  CHECK(a != NULL);
  if (!a)
    return NULL;
  memset(a, 0x33, 4 * BLOCK);
  T_FREE(a);
  qmt_trim(); /* the span reads as zero again */
  unsigned char *b = T_MALLOC(BLOCK);
  CHECK(b != NULL);
  if (!b)
    return NULL;
  memset(b, 0x44, BLOCK);
  T_FREE(b); /* resident: its first 32 slices */
  unsigned char *c = T_CALLOC(1, 4 * BLOCK);
  CHECK(c != NULL);
  if (!c)
    return NULL;
  if (qmt_strict)
    CHECKF(c == b, "calloc did not take the span of the freed block (%p for %p)", (void *)c, (void *)b);
  if (qmt_strict && c == b && qmt_purges_visible()) {
    size_t resident = qmt_resident_os_pages(c + 2 * BLOCK, BLOCK);
    CHECKF(resident == 0, "calloc made %zu OS pages resident past the written part of the span", resident);
  }
  CHECKF(all_zero(c, 4 * BLOCK), "calloc returned memory that is not zero over a partly written span");
  T_FREE(c);
  CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("span_resident");
  int result = 0;
  qmt_option_set("QMALLOC_PURGE_DELAY", "60s", &result);
  qmt_in_thread(counts_own_memory); /* first: its heap needs a segment never used */
  qmt_in_thread(calloc_after_merge);
  qmt_in_thread(calloc_after_grow);
  qmt_in_thread(calloc_keeps_zero_tail);
  return check_result("span_resident");
}
