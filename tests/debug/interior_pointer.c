/* free() of a pointer 16 bytes into a small block: "invalid free", naming the pointer. */
#include "death.h"

int main(void) {
  death_start();
  char *p = malloc(64);
  if (!p)
    return 4;
  char *inside = (char *)death_launder(p) + 16;
  death_target(inside);
  free(inside);
  return death_survived();
}
