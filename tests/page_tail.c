/* A small page made on memory that an earlier block left resident gives back the part it has not
 * carved once the decay passes find it idle (purge.c, page_purge_tail): carving is the only way
 * into that memory, so until the class carves again it is free memory like any other.
 *
 * Each case runs in a thread of its own (an empty heap). A 120 KiB block is written and freed, so
 * that the segment's free span starts with 120 KiB of resident memory; then one 16 KiB block is
 * allocated, whose class makes a 128 KiB page (8 blocks) on the start of that span and carves one
 * block. The other 104 KiB of resident memory in the page stay resident until:
 *   purged_by_passes   a decay pass purges them. The passes run from the slow paths when due: the
 *                      wait sleeps and makes a slow-path call (a large block, placed after the
 *                      page) every 10 ms, and gives up after 5 s. Nothing is timed.
 *   purged_by_trim     malloc_trim purges them at once.
 * Then the class allocates the page's other seven blocks (carving into the purged memory): every
 * block must be usable, and the first must still hold what was written into it. */

#include "stats_api.h"

/* Below the size of the large blocks that are purged as soon as they are freed (span.c, "Eager
 * purges"), so that its memory stays resident; above the page's 128 KiB but for one slice. */
#define OLD_BLOCK (120 * KiB)
#define SIZE (16 * KiB) /* a class of 8-block pages: 128 KiB */
#define PER_PAGE 8
#define TAIL_BYTES ((PER_PAGE - 1) * SIZE) /* 28 OS pages of 4 KiB */
#define WAIT_STEPS 500

/* Writes and frees a big block, then allocates a SIZE block, which its class's new page places
 * where the big block was: blocks[0], written with 0x5c. False when the block landed elsewhere
 * (allowed only where the test cannot tell where memory comes from). */
static bool make_page_with_tail(unsigned char **blocks) {
  unsigned char *old = T_MALLOC(OLD_BLOCK);
  CHECK(old != NULL);
  if (old == NULL)
    return false;
  memset(old, 0x77, OLD_BLOCK);
  T_FREE(old);
  blocks[0] = T_MALLOC(SIZE);
  CHECK(blocks[0] != NULL);
  if (blocks[0] == NULL)
    return false;
  memset(blocks[0], 0x5c, SIZE);
  /* The page lies where the old block was (the start of the free span), so its tail is resident. */
  if (blocks[0] != old) {
    CHECKF(!qmt_strict, "the 16 KiB block is not where the freed 120 KiB block was (%p, %p)",
           (void *)blocks[0], (void *)old);
    T_FREE(blocks[0]);
    return false;
  }
  size_t resident = qmt_resident_os_pages(blocks[0] + SIZE, TAIL_BYTES);
  CHECKF(resident != (size_t)-1 && resident > 0,
         "the page's tail was not resident to begin with (%zu OS pages): the test sets nothing up", resident);
  return true;
}

/* The class carves the rest of the page, into the purged memory: every block must be usable, and
 * the first must hold what was written into it. Frees them all. */
static void use_rest_of_page(unsigned char **blocks) {
  for (size_t i = 1; i < PER_PAGE; i++) {
    blocks[i] = T_MALLOC(SIZE);
    CHECK(blocks[i] != NULL);
    if (blocks[i])
      memset(blocks[i], (int)i, SIZE);
  }
  for (size_t i = 0; i < SIZE; i++)
    if (blocks[0][i] != 0x5c) {
      CHECKF(false, "byte %zu of the live block changed when the page's tail was purged", i);
      break;
    }
  for (size_t i = 1; i < PER_PAGE; i++)
    if (blocks[i])
      CHECK(blocks[i][0] == (unsigned char)i && blocks[i][SIZE - 1] == (unsigned char)i);
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < PER_PAGE; i++)
    T_FREE(blocks[i]);
}

static void *purged_by_passes(void *arg) {
  (void)arg;
  unsigned char *blocks[PER_PAGE];
  if (!make_page_with_tail(blocks))
    return NULL;
  size_t resident = qmt_resident_os_pages(blocks[0] + SIZE, TAIL_BYTES);
  for (int step = 0; step < WAIT_STEPS && resident != 0; step++) {
    qmt_slow_path_pause();
    resident = qmt_resident_os_pages(blocks[0] + SIZE, TAIL_BYTES);
  }
  CHECKF(resident == 0,
         "%zu OS pages of a page's uncarved part, resident since before the page was made, stayed "
         "resident for 5 s while the page was idle",
         resident);
  CHECK(qmt_heap_validate());
  use_rest_of_page(blocks);
  return NULL;
}

static void *purged_by_trim(void *arg) {
  (void)arg;
  unsigned char *blocks[PER_PAGE];
  if (!make_page_with_tail(blocks))
    return NULL;
  qmt_trim();
  size_t resident = qmt_resident_os_pages(blocks[0] + SIZE, TAIL_BYTES);
  CHECKF(resident == 0, "%zu OS pages of a page's uncarved part stayed resident after malloc_trim", resident);
  CHECK(qmt_heap_validate());
  use_rest_of_page(blocks);
  return NULL;
}

int main(void) {
  qmt_start("page_tail");
  if (qmt_purges_visible()) {
    qmt_in_thread(purged_by_passes);
    qmt_in_thread(purged_by_trim);
  }
  return check_result("page_tail");
}
