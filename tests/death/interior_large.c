/* free() of a pointer 4096 bytes into a 100 KiB (large) block: "invalid free". */
#include "death.h"

int main(void) {
  death_start();
  char *block = T_MALLOC(100 * 1024);
  if (!block)
    return 4;
  memset(block, 0, 100 * 1024);
  char *p = death_launder(block + 4096);
  death_target(p);
  T_FREE(p);
  T_FREE(block);
  return death_survived();
}
