/* A page whose free list runs dry does not carve fresh memory while another page of its class, or
 * of the next two classes, has a block the program freed (page.c, page_find): freed blocks are
 * reused first, so a class's resident memory follows what it holds rather than the most it ever
 * held. Carving a page makes no more of it resident than the blocks it hands out (page_extend).
 * And the page a class allocates from, once it has stayed empty for the purge delay, no longer
 * holds resident memory (purge.c, decay_pages), and carves again from its start when the class is
 * used again.
 *
 * Each check runs in a thread of its own, so that it starts from an empty heap. */
#include <time.h>
#include <unistd.h>

#include "qmt.h"

#define BLOCK 1024 /* a class of exactly 1 KiB: 64 blocks in a 64 KiB page */
#define PER_PAGE 64
#define MAX_BLOCKS 4096

/* The first block of a class of 16 KiB, in a fresh segment: the blocks after it are not carved
 * yet, so none of their memory is resident. */
static void *carve_touches_little(void *arg) {
  (void)arg;
  unsigned char *p = T_MALLOC(16 * KiB);
  CHECK(p != NULL);
  if (!p || !qmt_strict || qmt_thp_always()) /* THP may back the whole segment with one 2 MiB page */
    return NULL;
  size_t count = qmt_resident_os_pages(p + 16 * KiB, 3 * 16 * KiB);
  CHECK(count != (size_t)-1);
  CHECKF(count == 0, "%zu OS pages of the next 3 blocks of the class are resident before any is handed out",
         count);
  T_FREE(p);
  return NULL;
}

/* Fills one page, starts a second one, frees a block of the first: the next allocation of the
 * class must be that block, not a block carved further into the second page. */
static void *freed_block_first(void *arg) {
  (void)arg;
  unsigned char *blocks[PER_PAGE + 4];
  for (size_t i = 0; i < PER_PAGE + 4; i++) {
    blocks[i] = T_MALLOC(BLOCK);
    CHECK(blocks[i] != NULL);
    if (!blocks[i])
      return NULL;
    memset(blocks[i], (int)i, BLOCK);
  }
  unsigned char *freed = blocks[PER_PAGE / 2];
  T_FREE(freed);
  unsigned char *next = T_MALLOC(BLOCK);
  if (qmt_strict)
    CHECKF(next == freed, "malloc carved a new block (%p) while %p was free in another page", (void *)next,
           (void *)freed);
  blocks[PER_PAGE / 2] = next;
  for (size_t i = 0; i < PER_PAGE + 4; i++)
    T_FREE(blocks[i]);
  return NULL;
}

/* A class rises to MAX_BLOCKS live blocks, falls to a tenth of that by random frees, and rises
 * again, many times over: the pages it carves stay those of the first rise. */
static void *rise_and_fall(void *arg) {
  (void)arg;
  static unsigned char *live[MAX_BLOCKS];
  uint64_t rng = 12345;
  size_t count = 0, lowest = (uintptr_t)-1, highest = 0;
  for (int round = 0; round < 20; round++) {
    while (count < MAX_BLOCKS) {
      live[count] = T_MALLOC(BLOCK);
      CHECK(live[count] != NULL);
      if (!live[count])
        return NULL;
      uintptr_t a = (uintptr_t)live[count];
      if (round == 0) {
        lowest = a < lowest ? a : lowest;
        highest = a > highest ? a : highest;
      } else if (qmt_strict && (a < lowest || a > highest)) {
        CHECKF(false, "round %d: a block at %p lies outside the %zu KiB the first rise used", round,
               (void *)a, (size_t)(highest - lowest) / 1024);
        round = 20;
        break;
      }
      count++;
    }
    while (count > MAX_BLOCKS / 10) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      size_t i = (size_t)(rng >> 33) % count;
      T_FREE(live[i]);
      live[i] = live[--count];
    }
  }
  while (count > 0)
    T_FREE(live[--count]);
  return NULL;
}

/* Every block of a 40 KiB class is freed, so that its only page (the one its fast path allocates
 * from) is empty; other calls go on. Within a generous multiple of the purge delay, the memory of
 * those blocks must no longer be resident. Skipped where purged memory may stay resident (MADV_FREE)
 * or where transparent huge pages back whole segments. */
#define IDLE_BLOCK (40 * KiB)
#define IDLE_COUNT 8
static void *idle_class_page_purged(void *arg) {
  (void)arg;
  if (!qmt_strict || !qmt_purges_visible())
    return NULL;
  unsigned char *blocks[IDLE_COUNT];
  for (size_t i = 0; i < IDLE_COUNT; i++) {
    blocks[i] = T_MALLOC(IDLE_BLOCK);
    CHECK(blocks[i] != NULL);
    if (!blocks[i])
      return NULL;
    memset(blocks[i], 0x5a, IDLE_BLOCK);
  }
  unsigned char *watched = blocks[0];
  for (size_t i = 0; i < IDLE_COUNT; i++)
    T_FREE(blocks[i]);
  size_t resident = qmt_resident_os_pages(watched + 8 * KiB, 16 * KiB);
  for (int step = 0; step < 500 && resident != 0; step++) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
    unsigned char *other = T_MALLOC(200 * KiB); /* a slow path, which runs the decay passes when due */
    CHECK(other != NULL);
    if (other)
      other[0] = 1;
    T_FREE(other);
    resident = qmt_resident_os_pages(watched + 8 * KiB, 16 * KiB);
  }
  CHECKF(resident == 0, "%zu OS pages of a freed block of an idle class are still resident after 5 s",
         resident);
  /* The page was given back its memory as a whole (purge.c, page_uncarve): it carves again from its
   * start, and what it hands out is sound. */
  for (size_t i = 0; i < IDLE_COUNT; i++) {
    blocks[i] = T_CALLOC(1, IDLE_BLOCK);
    CHECK(blocks[i] != NULL);
    if (!blocks[i])
      return NULL;
    CHECKF(blocks[i][0] == 0 && blocks[i][IDLE_BLOCK / 2] == 0 && blocks[i][IDLE_BLOCK - 1] == 0,
           "calloc block %zu of the idle class again is not zeroed", i);
    memset(blocks[i], 0x33, IDLE_BLOCK);
  }
  CHECKF(blocks[0] == watched, "the idle class's page hands out %p first again, not its first block %p",
         (void *)blocks[0], (void *)watched);
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < IDLE_COUNT; i++)
    T_FREE(blocks[i]);
  return NULL;
}

/* Borrowing (page.c): a class with no free block takes a block that the program freed in one of
 * the next two classes, rather than carving memory of its own. Requests of 1100 B are of the class
 * of 1152 B; the next classes are 1280 and 1408 B. */
static void *take_blocks(unsigned char **blocks, size_t count, size_t size) {
  for (size_t i = 0; i < count; i++) {
    blocks[i] = T_MALLOC(size);
    CHECK(blocks[i] != NULL);
    if (!blocks[i])
      return NULL;
    memset(blocks[i], 0x11, size);
  }
  return blocks[0];
}

static bool is_one_of(const unsigned char *p, unsigned char **blocks, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (p == blocks[i])
      return true;
  return false;
}

#define LENT_COUNT 12 /* blocks of 576 B or more: more than one carving (4 KiB) */

/* Blocks that a class has to lend: allocated, then all freed again. */
static bool leave_freed(unsigned char **blocks, size_t size) {
  if (!take_blocks(blocks, LENT_COUNT, size))
    return false;
  for (size_t i = 0; i < LENT_COUNT; i++)
    T_FREE(blocks[i]);
  return true;
}

static void *borrows_freed_neighbour(void *arg) {
  (void)arg;
  unsigned char *lent[LENT_COUNT];
  if (!leave_freed(lent, 1408))
    return NULL;
  /* Two classes up: the 1280 B class has no page at all. */
  unsigned char *p = T_MALLOC(1100);
  CHECK(p != NULL);
  if (qmt_strict) {
    CHECKF(is_one_of(p, lent, LENT_COUNT) && T_USABLE_SIZE(p) == 1408,
           "malloc(1100) made a block of its own (%p, %zu usable) while 1408 B blocks were free", (void *)p,
           T_USABLE_SIZE(p));
  }
  memset(p, 0x22, 1100);
  CHECK(qmt_heap_validate());
  T_FREE(p);
  CHECK(qmt_heap_validate());
  return NULL;
}

/* A program that only grows never borrows: a neighbour's page that is still carving holds blocks it
 * carved for itself, not blocks the program freed. */
static void *growing_does_not_borrow(void *arg) {
  (void)arg;
  unsigned char *own[2];
  if (!take_blocks(own, 2, 1280)) /* one carving of 3 blocks: one left */
    return NULL;
  unsigned char *p = T_MALLOC(1100);
  CHECK(p != NULL);
  if (qmt_strict)
    CHECKF(T_USABLE_SIZE(p) == 1152, "malloc(1100) took a %zu-byte block from a growing neighbour",
           T_USABLE_SIZE(p));
  T_FREE(p);
  T_FREE(own[0]);
  T_FREE(own[1]);
  return NULL;
}

/* An aligned request keeps its class, whose block size is what makes it aligned: 1536 B blocks are
 * 512-byte aligned from the page's start, the next class's (1664 B) are not. And classes of 512 B
 * or less never borrow. */
static void *exact_classes_do_not_borrow(void *arg) {
  (void)arg;
  unsigned char *lent[LENT_COUNT];
  if (!leave_freed(lent, 1664))
    return NULL;
  unsigned char *p = T_ALIGNED_ALLOC(512, 1536);
  CHECK(p != NULL && ((uintptr_t)p & 511) == 0);
  if (qmt_strict)
    CHECKF(T_USABLE_SIZE(p) == 1536, "aligned_alloc(512, 1536) got a %zu-byte block", T_USABLE_SIZE(p));
  T_FREE(p);
  if (!leave_freed(lent, 576))
    return NULL;
  p = T_MALLOC(500);
  CHECK(p != NULL);
  if (qmt_strict)
    CHECKF(T_USABLE_SIZE(p) == 512, "malloc(500) got a %zu-byte block", T_USABLE_SIZE(p));
  T_FREE(p);
  CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("page_reuse");
  qmt_in_thread(carve_touches_little); /* first: its heap needs a segment never used */
  qmt_in_thread(freed_block_first);
  qmt_in_thread(rise_and_fall);
  qmt_in_thread(idle_class_page_purged);
  qmt_in_thread(borrows_freed_neighbour);
  qmt_in_thread(growing_does_not_borrow);
  qmt_in_thread(exact_classes_do_not_borrow);
  return check_result("page_reuse");
}
