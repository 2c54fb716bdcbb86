/* A pointer into the middle of a large block, freed after the block itself was freed and its first
 * slices were made into a small page: the pointer's slice now lies in a free span, and the free
 * must be reported ("not in an allocated block"), never taken for a block of the new page (the
 * slices of a freed span stop naming its head, span.c). */
#include "death.h"

int main(void) {
  death_start();
  char *big = T_MALLOC(300 * 1024);
  if (!big)
    return 4;
  memset(big, 0x5A, 300 * 1024);
  char *inner = big + 200 * 1024;
  T_FREE(big);
  /* A block of a class not used yet: its new page is carved from the free span that begins where
   * the large block began. */
  char *small = T_MALLOC(3000);
  if (!small)
    return 4;
  small[0] = 1;
  death_target(inner);
  T_FREE(death_launder(inner));
  T_FREE(small);
  return death_survived();
}
