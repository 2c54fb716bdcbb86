/* The same small block freed twice in a row: "double free". */
#include "death.h"

int main(void) {
  death_start();
  void *other = T_MALLOC(48); /* a neighbour, live throughout */
  char *p = T_MALLOC(48);
  if (!p || !other)
    return 4;
  memset(p, 0x5A, 48);
  death_target(p);
  T_FREE(p);
  T_FREE(death_launder(p));
  T_FREE(other);
  return death_survived();
}
