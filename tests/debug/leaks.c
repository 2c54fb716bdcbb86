/* Leaves blocks allocated at exit from three functions, with different totals; the leak report
 * must list them largest first: leak_big (2 x 5000), leak_medium (3 x 1000), leak_small (10 x 10).
 * Writes nothing on stdout (stdio's buffer would be a leak of its own). Exits 0. */
#include <stdlib.h>
#include <string.h>

/* Each leaking function must keep its own name in the stacks: not inlined, and not copied by gcc
 * into a specialised clone (leak_big.constprop.0) when it sees the constant arguments. */
#if defined(__clang__)
#define KEEP_NAME __attribute__((noinline))
#else
#define KEEP_NAME __attribute__((noinline, noclone))
#endif

void *leak_small(size_t n);
void *leak_medium(size_t n);
void *leak_big(size_t n);
static void *volatile sink[32];
/* Loop counts the compiler cannot see, so that it does not unroll the loops (each unrolled call
 * would be a call stack of its own). */
static volatile int small_count = 10, medium_count = 3, big_count = 2;

/* Each writes into its block before returning, so that its call of malloc is not a tail call and
 * the function shows in the stack. */
KEEP_NAME void *leak_small(size_t n) {
  char *p = malloc(n);
  if (p)
    p[0] = 1;
  return p;
}
KEEP_NAME void *leak_medium(size_t n) {
  char *p = calloc(1, n);
  if (p)
    p[0] = 1;
  return p;
}
KEEP_NAME void *leak_big(size_t n) {
  char *p = realloc(malloc(n / 2), n);
  if (p)
    p[0] = 1;
  return p;
}

int main(void) {
  int k = 0;
  for (int i = 0; i < small_count; i++)
    sink[k++] = leak_small(10);
  for (int i = 0; i < medium_count; i++)
    sink[k++] = leak_medium(1000);
  for (int i = 0; i < big_count; i++)
    sink[k++] = leak_big(5000);
  free(malloc(777)); /* freed: not a leak */
  for (int i = 0; i < k; i++)
    memset(sink[i], 1, 10);
  return 0;
}
