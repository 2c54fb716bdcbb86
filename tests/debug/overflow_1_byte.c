/* One byte written past the end of a 24-byte block, then the block is freed: "heap overflow". */
#include "death.h"

int main(void) {
  death_start();
  char *p = malloc(24);
  if (!p)
    return 4;
  death_target(p);
  ((char *)death_launder(p))[24] = 'x';
  free(p);
  return death_survived();
}
