/* The page a class above 1 KiB allocates from gives back the OS pages of its free blocks once the
 * class stops allocating (purge.c, "Idle current pages"): a program that used a size for a while
 * and moved on (a compiler's buffers of one pass) must not keep that size's page resident, free
 * blocks and all, for as long as it runs.
 *
 * Each case runs in a thread of its own (an empty heap), with 4 KiB blocks (16 to a 64 KiB page,
 * one OS page each):
 *   thinned        fill one page, free all but every fourth block and allocate nothing of the class
 *                  any more: the decay passes must purge the freed blocks' OS pages. The class then
 *                  allocates the freed blocks again: they must be usable, the kept blocks must hold
 *                  what was written into them, and the heap must validate.
 *   busy_kept      the same page, but between the waits the class allocates and frees one block:
 *                  the passes must leave its free blocks resident while it does (a page switch
 *                  or a page fault per block would cost a busy class far more than it saves).
 * The passes run from the slow paths when due: the waits sleep and make a slow-path call (a large
 * block) every 10 ms, and give up after 5 s. Nothing is timed. */
#include "qmt.h"

#define SIZE (4 * KiB)
#define PER_PAGE 16
#define KEEP_EVERY 4
#define WAIT_STEPS 500
#define BUSY_STEPS 60 /* 0.6 s: several purge delays of the default 100 ms */

static bool is_kept(size_t i) { return i % KEEP_EVERY == 0; }

/* Fills one page of the class; false (and the blocks freed) where they do not share one page. */
static bool fill_page(unsigned char **blocks) {
  for (size_t i = 0; i < PER_PAGE; i++) {
    blocks[i] = T_MALLOC(SIZE);
    CHECK(blocks[i] != NULL);
    if (blocks[i] == NULL)
      return false;
    memset(blocks[i], (int)(i + 1), SIZE);
  }
  for (size_t i = 1; i < PER_PAGE; i++)
    if (blocks[i] != blocks[0] + i * SIZE) {
      CHECKF(!qmt_strict, "the %d blocks of %d KiB do not lie side by side in one page", PER_PAGE,
             (int)(SIZE / KiB));
      for (size_t k = 0; k < PER_PAGE; k++)
        T_FREE(blocks[k]);
      return false;
    }
  for (size_t i = 0; i < PER_PAGE; i++)
    if (!is_kept(i))
      T_FREE(blocks[i]);
  return true;
}

static size_t freed_resident(unsigned char **blocks) {
  size_t resident = 0;
  for (size_t i = 0; i < PER_PAGE; i++)
    if (!is_kept(i))
      resident += qmt_resident_os_pages(blocks[i], SIZE);
  return resident;
}

static void check_kept(unsigned char **blocks) {
  for (size_t i = 0; i < PER_PAGE; i += KEEP_EVERY)
    CHECKF(blocks[i][0] == (unsigned char)(i + 1) && blocks[i][SIZE - 1] == (unsigned char)(i + 1),
           "kept block %zu changed while its page was thinned", i);
}

static void free_all(unsigned char **blocks) {
  for (size_t i = 0; i < PER_PAGE; i++)
    if (is_kept(i))
      T_FREE(blocks[i]);
}

static void *thinned(void *arg) {
  (void)arg;
  unsigned char *blocks[PER_PAGE];
  if (!fill_page(blocks))
    return NULL;
  size_t resident = freed_resident(blocks);
  CHECKF(resident > 0, "the freed blocks were not resident to begin with: the test sets nothing up");
  for (int step = 0; step < WAIT_STEPS && resident != 0; step++) {
    qmt_slow_path_pause();
    resident = freed_resident(blocks);
  }
  CHECKF(resident == 0,
         "%zu OS pages of free blocks in the page of an idle class stayed resident for 5 s: the page a "
         "class allocates from is never thinned",
         resident);
  check_kept(blocks);
  CHECK(qmt_heap_validate());
  /* The class wakes up: its freed blocks come back, from the purged memory. */
  unsigned char *again[PER_PAGE];
  size_t count = 0;
  for (size_t i = 0; i < PER_PAGE; i++)
    if (!is_kept(i)) {
      again[count] = T_MALLOC(SIZE);
      CHECK(again[count] != NULL);
      if (again[count])
        memset(again[count], 0xA5, SIZE);
      count++;
    }
  check_kept(blocks);
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < count; i++) {
    if (again[i])
      CHECK(again[i][0] == 0xA5 && again[i][SIZE - 1] == 0xA5);
    T_FREE(again[i]);
  }
  free_all(blocks);
  return NULL;
}

static void *busy_kept(void *arg) {
  (void)arg;
  unsigned char *blocks[PER_PAGE];
  if (!fill_page(blocks))
    return NULL;
  size_t resident = freed_resident(blocks);
  size_t lowest = resident;
  for (int step = 0; step < BUSY_STEPS; step++) {
    unsigned char *p = T_MALLOC(SIZE);
    CHECK(p != NULL);
    if (p)
      p[0] = 1;
    T_FREE(p);
    qmt_slow_path_pause();
    size_t now = freed_resident(blocks);
    if (now < lowest)
      lowest = now;
  }
  CHECKF(lowest == resident,
         "the page of a class that allocated between the decay passes was thinned (%zu of %zu freed "
         "blocks' OS pages purged)",
         resident - lowest, resident);
  check_kept(blocks);
  free_all(blocks);
  return NULL;
}

int main(void) {
  qmt_start("idle_class_page");
  if (qmt_strict && qmt_purges_visible()) {
    qmt_in_thread(thinned);
    qmt_in_thread(busy_kept);
  }
  return check_result("idle_class_page");
}
