/* A block freed twice in a row, while it is still in the quarantine: "double free". */
#include "death.h"

int main(void) {
  death_start();
  char *p = malloc(48);
  if (!p)
    return 4;
  death_target(p);
  free(p);
  free(death_launder(p));
  return death_survived();
}
