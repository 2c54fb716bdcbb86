/* Pages that the program empties with plain frees are found by the next sweep (page.c): a sweep
 * that keeps each class's current page runs only when an empty page may have been left behind the
 * front of a queue since the last sweep, so every path that can leave one there must count it, the
 * free fast path included.
 *
 * In a thread of its own: fill one segment with 1 KiB blocks (until a block lands in a second
 * segment), free every block of the first segment, then allocate 256 KiB blocks. Once the second
 * segment's free span is used up, the span layer runs short, the sweep gives the emptied pages of the
 * first segment back, and the rest of the blocks fit there: no third segment. A sweep skipped
 * wrongly maps one. The heap validator checks, after the frees, that an empty page in a queue is
 * matched by a count.
 *
 * An empty page at the front of its queue (the page its class allocates from) is left in place by
 * the sweeps; once the decay pass has given its memory back (purge.c, page_uncarve), the class's
 * next allocation moves it behind a page that has a free block. That move must count too: the
 * second check builds exactly that case after a sweep, and the heap validator then finds an empty
 * page behind the front with nothing counted if it did not.
 *
 * The same holds for a new page put in front of an empty one: a thread adopts the segment of an
 * exited thread whose blocks were all freed after it exited (parked in the segment), its first
 * adopted page of a class empties as the parked frees are applied, and the new page the thread
 * was making for that class goes in front of it (the third check). */
#include <time.h>
#include <unistd.h>

#include "qmt.h"

#define SMALL 1024
#define MAX_SMALL 8192
#define LARGE (256 * KiB)
#define LARGE_COUNT 28 /* 7 MiB: more than one segment's free span holds, less than two */

static void *emptied_pages_reused(void *arg) {
  (void)arg;
  static unsigned char *small[MAX_SMALL];
  size_t n = 0;
  unsigned char *next = NULL;
  while (n < MAX_SMALL) {
    unsigned char *p = T_MALLOC(SMALL);
    CHECK(p != NULL);
    if (p == NULL)
      return NULL;
    if (n > 0 && qmt_segment_of(p) != qmt_segment_of(small[0])) {
      next = p;
      break;
    }
    small[n++] = p;
  }
  CHECKF(next != NULL, "%zu blocks of %d bytes stayed in one segment", n, SMALL);
  if (next == NULL)
    return NULL;
  uintptr_t first_segment = qmt_segment_of(small[0]), second_segment = qmt_segment_of(next);
  for (size_t i = 0; i < n; i++)
    T_FREE(small[i]);
  CHECKF(qmt_heap_validate(), "the heap validator failed after the frees");

  void *large[LARGE_COUNT];
  size_t elsewhere = 0;
  for (size_t i = 0; i < LARGE_COUNT; i++) {
    large[i] = T_MALLOC(LARGE);
    CHECK(large[i] != NULL);
    uintptr_t s = qmt_segment_of(large[i]);
    elsewhere += s != first_segment && s != second_segment;
  }
  CHECKF(elsewhere == 0,
         "%zu of %d blocks of %zu KiB went to a third segment: the emptied pages were not found", elsewhere,
         LARGE_COUNT, LARGE / KiB);
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < LARGE_COUNT; i++)
    T_FREE(large[i]);
  T_FREE(next);
  return NULL;
}

#define MID (40 * KiB) /* pages of blocks above 8 KiB hold 8 of them */
#define MID_PER_PAGE 8
#define OTHER (48 * KiB) /* each allocation of this class is a slow path (one block carved at a time) */
#define OTHER_COUNT 1100 /* more than the 1,024 slow paths between two periodic sweeps */

static void *demoted_empty_page(void *arg) {
  (void)arg;
  if (!qmt_purges_visible())
    return NULL; /* the page's memory may stay resident: the wait below could not see the purge */
  /* A full page P1 (behind) with one free block, and P2 at the front, empty. */
  unsigned char *mid[MID_PER_PAGE + 1];
  for (size_t i = 0; i <= MID_PER_PAGE; i++) {
    mid[i] = T_MALLOC(MID);
    CHECK(mid[i] != NULL);
    if (mid[i] == NULL)
      return NULL;
  }
  T_FREE(mid[0]);
  unsigned char *front = mid[MID_PER_PAGE];
  T_FREE(front);
  /* Enough slow paths of another class for a periodic sweep, which keeps P2 and counts nothing
   * left behind. */
  static void *other[OTHER_COUNT];
  for (size_t i = 0; i < OTHER_COUNT; i++) {
    other[i] = T_MALLOC(OTHER);
    CHECK(other[i] != NULL);
  }
  /* Wait for the decay passes to give P2's memory back. */
  size_t resident = qmt_resident_os_pages(front, 16 * KiB);
  for (int step = 0; step < 500 && resident != 0; step++) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
    unsigned char *large = T_MALLOC(200 * KiB); /* a slow path, which runs the decay passes when due */
    CHECK(large != NULL);
    T_FREE(large);
    resident = qmt_resident_os_pages(front, 16 * KiB);
  }
  CHECKF(resident == 0, "the empty page of a %zu KiB class kept %zu OS pages resident for 5 s", MID / KiB,
         resident);
  /* P2 has nothing to hand out: the class takes P1's free block, and P2 goes behind it, empty. */
  unsigned char *again = T_MALLOC(MID);
  CHECKF(again == mid[0], "the class handed out %p, not the block %p freed in its full page", (void *)again,
         (void *)mid[0]);
  CHECKF(qmt_heap_validate(), "the heap validator failed after an empty page left the front of its queue");
  T_FREE(again);
  for (size_t i = 1; i < MID_PER_PAGE; i++)
    T_FREE(mid[i]);
  for (size_t i = 0; i < OTHER_COUNT; i++)
    T_FREE(other[i]);
  CHECK(qmt_heap_validate());
  return NULL;
}

#define PARKED 100
static void *parked[PARKED];

static void *leave_blocks(void *arg) {
  (void)arg;
  for (size_t i = 0; i < PARKED; i++) {
    parked[i] = T_MALLOC(16);
    CHECK(parked[i] != NULL);
  }
  return NULL;
}

static void *adopt_emptied_page(void *arg) {
  (void)arg;
  void *p = T_MALLOC(16); /* adopts the segment, applies the parked frees, makes a page */
  CHECK(p != NULL);
  CHECKF(qmt_heap_validate(), "the heap validator failed after adopting a segment whose page emptied");
  T_FREE(p);
  return NULL;
}

int main(void) {
  qmt_start("sweep_emptied");
  if (qmt_strict) {
    qmt_in_thread(emptied_pages_reused);
    qmt_in_thread(demoted_empty_page);
    qmt_in_thread(leave_blocks);
    for (size_t i = 0; i < PARKED; i++)
      T_FREE(parked[i]); /* into the exited thread's segment, which nobody owns now */
    qmt_in_thread(adopt_emptied_page);
  }
  return check_result("sweep_emptied");
}
