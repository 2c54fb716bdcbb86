/* The same huge block freed twice in a row: "double free". */
#include "death.h"

int main(void) {
  death_start();
  void *other = T_MALLOC(8 * 1024 * 1024); /* a neighbour, live throughout */
  char *p = T_MALLOC(8 * 1024 * 1024);
  if (!p || !other)
    return 4;
  memset(p, 0x5A, 8 * 1024 * 1024);
  death_target(p);
  T_FREE(p);
  T_FREE(death_launder(p));
  T_FREE(other);
  return death_survived();
}
