/* A read after qm_free, in a build with AddressSanitizer and QMALLOC_ASAN_POISON: qmalloc poisons
 * the freed block, so ASan stops the program at the read ("use-after-poison"). */
#include <stdio.h>
#include <string.h>

#include "qmalloc.h"

int main(void) {
  char *neighbour = qm_malloc(48);
  char *p = qm_malloc(48);
  if (!p || !neighbour)
    return 4;
  memset(p, 7, 48);
  printf("target %p\n", (void *)p);
  fflush(stdout);
  qm_free(p);
  volatile char *q = p;
  int value = q[20]; /* the bug: a read after free */
  printf("survived (read %d)\n", value);
  qm_free(neighbour);
  return 0;
}
