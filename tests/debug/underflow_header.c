/* One byte written before the start of a block (into its header), then the block is freed. */
#include "death.h"

int main(void) {
  death_start();
  char *p = malloc(100);
  if (!p)
    return 4;
  death_target(p);
  ((char *)death_launder(p))[-1] = 'x';
  free(p);
  return death_survived();
}
