/* free() of a static array, which qmalloc never returned: "invalid free". */
#include "death.h"

static char array[256];

int main(void) {
  death_start();
  void *keep = T_MALLOC(100); /* the heap is initialised and in use */
  char *p = death_launder(array);
  death_target(p);
  T_FREE(p);
  T_FREE(keep);
  return death_survived();
}
