/* A large block is placed in free memory that may still be resident before memory that reads as
 * zero (span.c, span_find): a program that frees and allocates big blocks must not fault in purged
 * memory while resident free memory waits, since the growth passes such faults bring purge the
 * memory that waited, which is fresh again when it is taken (DESIGN.md, section 7).
 *
 * In a thread of its own (an empty heap): a 96 KiB block X is freed and left until the decay passes
 * have purged it; then a 120 KiB block Z is freed (it stays resident: freed blocks are purged at
 * once only from 128 KiB). A request for 96 KiB fits in both: it must be placed in Z's memory, not
 * in X's. Live guards keep the free spans apart. Nothing is timed: the wait gives up after 5 s. */
#include "qmt.h"

#define X_SIZE (96 * KiB)
#define Z_SIZE (120 * KiB)
#define WAIT_STEPS 500

static void *resident_first(void *arg) {
  (void)arg;
  unsigned char *x = T_MALLOC(X_SIZE);
  unsigned char *guard1 = T_MALLOC(64);
  unsigned char *z = T_MALLOC(Z_SIZE);
  unsigned char *guard2 = T_MALLOC(64);
  CHECK(x != NULL && guard1 != NULL && z != NULL && guard2 != NULL);
  if (x == NULL || z == NULL)
    return NULL;
  memset(x, 1, X_SIZE);
  memset(z, 2, Z_SIZE);
  T_FREE(x);
  size_t resident = qmt_resident_os_pages(x, X_SIZE);
  for (int step = 0; step < WAIT_STEPS && resident != 0; step++) {
    qmt_slow_path_pause();
    resident = qmt_resident_os_pages(x, X_SIZE);
  }
  CHECKF(resident == 0, "a freed 96 KiB block stayed resident for 5 s: the test sets nothing up");
  T_FREE(z);
  CHECKF(qmt_resident_os_pages(z, Z_SIZE) > 0,
         "a freed 120 KiB block was purged at once: the test sets nothing up");
  unsigned char *p = T_MALLOC(X_SIZE);
  CHECK(p != NULL);
  CHECKF(p == z, "a 96 KiB block went to %s (%p) while 120 KiB of resident free memory waited at %p",
         p == x ? "the purged memory of a freed 96 KiB block" : "other memory", (void *)p, (void *)z);
  if (p != NULL)
    memset(p, 3, X_SIZE);
  CHECK(qmt_heap_validate());
  T_FREE(p);
  T_FREE(guard1);
  T_FREE(guard2);
  return NULL;
}

int main(void) {
  qmt_start("span_resident_first");
  if (qmt_strict && qmt_purges_visible())
    qmt_in_thread(resident_first);
  return check_result("span_resident_first");
}
