/* A page whose free list runs dry does not carve fresh memory while another page of its class has
 * a free block (page.c, page_find): freed blocks are reused first, so a class's resident memory
 * follows what it holds rather than the most it ever held. And carving a page makes no more of it
 * resident than the blocks it hands out (page_extend).
 *
 * Each check runs in a thread of its own, so that it starts from an empty heap. */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qmt.h"

#define BLOCK 1024 /* a class of exactly 1 KiB: 64 blocks in a 64 KiB page */
#define PER_PAGE 64
#define MAX_BLOCKS 4096

static bool thp_always(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f)
    return false;
  char line[128] = "";
  bool always = fgets(line, sizeof line, f) != NULL && strstr(line, "[always]") != NULL;
  fclose(f);
  return always;
}

/* The first block of a class of 16 KiB, in a fresh segment: the blocks after it are not carved
 * yet, so none of their memory is resident. */
static void *carve_touches_little(void *arg) {
  (void)arg;
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *p = T_MALLOC(16 * KiB);
  CHECK(p != NULL);
  if (!p || !qmt_strict || thp_always()) /* THP may back the whole segment with one 2 MiB page */
    return NULL;
  unsigned char *next = p + 16 * KiB;
  size_t length = 3 * 16 * KiB;
  unsigned char resident[3 * 16 * KiB / 4096];
  CHECK(mincore(next, length, resident) == 0);
  size_t count = 0;
  for (size_t i = 0; i < length / os_page; i++)
    count += resident[i] & 1;
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

static void in_thread(void *(*fn)(void *)) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

int main(void) {
  qmt_start("page_reuse");
  in_thread(carve_touches_little); /* first: its heap needs a segment never used */
  in_thread(freed_block_first);
  in_thread(rise_and_fall);
  return check_result("page_reuse");
}
