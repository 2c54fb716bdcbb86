/* A block freed twice, the second time after it has left the quarantine (and gone back to the
 * allocator below): "double free". */
#include "death.h"

int main(void) {
  death_start();
  void *keep = malloc(48); /* keeps the page of p in use */
  char *p = malloc(48);
  if (!p || !keep)
    return 4;
  death_target(p);
  free(p);
  for (int i = 0; i < 20000; i++) /* pushes p out of the quarantine */
    free(malloc(2000));
  free(death_launder(p));
  free(keep);
  return death_survived();
}
