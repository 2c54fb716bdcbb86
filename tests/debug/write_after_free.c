/* A byte written into a freed block; the report comes when the block leaves the quarantine, which
 * the frees of many other blocks force (or, with the argument "validate", from qm_heap_validate). */
#include "death.h"

#include <stdbool.h>

int main(int argc, char **argv) {
  death_start();
  void *keep = malloc(48); /* keeps the page of p in use */
  char *p = malloc(48);
  if (!p || !keep)
    return 4;
  death_target(p);
  free(p);
  ((char *)death_launder(p))[5] = 'x';
  if (argc > 1 && strcmp(argv[1], "validate") == 0) {
    bool (*validate)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "qm_heap_validate");
    if (validate)
      validate();
  } else {
    for (int i = 0; i < 20000; i++)
      free(malloc(200));
  }
  free(keep);
  return death_survived();
}
