/* free() of a pointer malloc never returned (a static object): "invalid free". */
#include "death.h"

static char not_from_malloc[64];

int main(void) {
  death_start();
  char *p = death_launder(not_from_malloc + 16);
  death_target(p);
  free(p);
  return death_survived();
}
