/* free() of the address of a stack variable: "invalid free". */
#include "death.h"

int main(void) {
  death_start();
  void *keep = T_MALLOC(100);
  char local[64];
  memset(local, 1, sizeof local);
  char *p = death_launder(local);
  death_target(p);
  T_FREE(p);
  T_FREE(keep);
  return death_survived() + local[0] - 1;
}
