/* What other threads free into the heap of a thread that has stopped allocating goes back to the
 * OS (purge.c, "The inbox of an idle heap"). The main thread fills 512 blocks of 1 KiB, and a
 * worker frees them all: they wait in the main thread's inbox, which it drains only at its next
 * slow path, while it waits in pthread_join. The worker then makes the pages they cover go back:
 *
 *   idle_inbox trim    with malloc_trim, which purges other heaps' inboxes at once;
 *   idle_inbox decay   with ordinary allocator calls only, whose decay passes purge the inbox of a
 *                      heap whose owner drained nothing between two of their visits (the worker
 *                      gives up after 10 s; nothing is timed).
 *
 * Pages are counted with mincore: of the 128 OS pages wholly inside the blocks, at most a quarter
 * may stay resident (the parcels, which carry the list of freed blocks, keep theirs). The worker
 * keeps one block in the middle, so that one page of the blocks still holds a live block, while
 * the others are full pages and the page the class allocates from.
 *
 * Then the main thread wakes and makes a large block, which collects its whole inbox. That must
 * not fault the purged pages back in (heap.c, "Collecting an inbox that was purged"): the pages it
 * empties are given up without a write into their blocks, so again at most a quarter of the OS
 * pages may be resident (the page with the kept block is collected as usual, its blocks linked).
 * The kept block still holds what was written into it, the main thread allocates the freed blocks
 * again, they hold what is written into them, and the heap validates.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "stats_api.h"

#define BLOCKS 512
#define BLOCK_SIZE 1024
#define KEPT (BLOCKS / 2) /* the block the worker does not free */

static void *blocks[BLOCKS];
static bool use_trim;
static size_t resident_after; /* what the worker saw last */

static int by_address(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* Resident OS pages among those that lie wholly inside runs of adjacent blocks; their count in
 * *total. */
static size_t resident_inside_blocks(size_t *total) {
  static uintptr_t starts[BLOCKS];
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < BLOCKS; i++)
    starts[i] = (uintptr_t)blocks[i];
  qsort(starts, BLOCKS, sizeof starts[0], by_address);
  size_t resident = 0;
  *total = 0;
  for (size_t i = 0; i < BLOCKS;) {
    size_t j = i + 1;
    while (j < BLOCKS && starts[j] == starts[j - 1] + BLOCK_SIZE)
      j++;
    uintptr_t first = (starts[i] + page - 1) & ~(page - 1), end = starts[j - 1] + BLOCK_SIZE;
    for (uintptr_t p = first; p + page <= end; p += page) {
      unsigned char vec = 0;
      if (mincore((void *)p, page, &vec) != 0)
        continue;
      (*total)++;
      resident += vec & 1;
    }
    i = j;
  }
  return resident;
}

static void sleep_ms(unsigned ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static void *worker(void *arg) {
  (void)arg;
  void *own = T_MALLOC(64); /* a heap of its own, which batches the frees */
  for (size_t i = 0; i < BLOCKS; i++)
    if (i != KEPT)
      T_FREE(blocks[i]);
  size_t total = 0;
  if (use_trim) {
    qmt_trim();
    resident_after = resident_inside_blocks(&total);
  } else {
    /* Ordinary calls (a large block now and then reaches the decay pass) until the pages go. */
    for (int round = 0; round < 1000; round++) {
      void *p = T_MALLOC(200 * 1024);
      CHECK(p != NULL);
      if (p)
        memset(p, 1, 4096);
      T_FREE(p);
      resident_after = resident_inside_blocks(&total);
      if (resident_after * 4 <= total)
        break;
      sleep_ms(10);
    }
  }
  CHECKF(total >= 100, "only %zu OS pages lie wholly inside the blocks", total);
  CHECKF(resident_after * 4 <= total, "%zu of %zu OS pages inside the freed blocks are still resident",
         resident_after, total);
  T_FREE(own);
  return NULL;
}

int main(int argc, char **argv) {
  qmt_start("idle_inbox");
  use_trim = argc > 1 && strcmp(argv[1], "trim") == 0;
  for (size_t i = 0; i < BLOCKS; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
    qmt_fill(blocks[i], BLOCK_SIZE, i);
  }
  size_t total = 0;
  CHECKF(resident_inside_blocks(&total) == total, "the filled blocks are not all resident");
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, worker, NULL) == 0);
  pthread_join(thread, NULL);

  /* The main thread wakes: a large block collects its inbox, purged pages and all. */
  void *large = T_MALLOC(256 * 1024);
  CHECK(large != NULL);
  T_FREE(large);
  CHECK(qmt_heap_validate());
  size_t resident = resident_inside_blocks(&total);
  CHECKF(resident * 4 <= total,
         "collecting the inbox made %zu of %zu purged OS pages resident again (%zu before)", resident, total,
         resident_after);
  CHECK(qmt_verify(blocks[KEPT], BLOCK_SIZE, KEPT) == SIZE_MAX);
  T_FREE(blocks[KEPT]);

  /* The main thread allocates again. */
  for (size_t i = 0; i < BLOCKS; i++) {
    blocks[i] = T_MALLOC(BLOCK_SIZE);
    CHECK(blocks[i] != NULL);
    qmt_fill(blocks[i], BLOCK_SIZE, i + 1000);
  }
  CHECK(qmt_heap_validate());
  for (size_t i = 0; i < BLOCKS; i++) {
    CHECKF(qmt_verify(blocks[i], BLOCK_SIZE, i + 1000) == SIZE_MAX, "block %zu", i);
    T_FREE(blocks[i]);
  }
  CHECK(qmt_heap_validate());
  return check_result("idle_inbox");
}
