/* A planted read after free. Run under valgrind, a qmalloc built with QMALLOC_VALGRIND must let
 * memcheck report "Invalid read" at it, as it does with glibc's malloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmalloc.h"

#ifdef QMT_PREFIXED
#define T_MALLOC qm_malloc
#define T_FREE qm_free
#else
#define T_MALLOC malloc
#define T_FREE free
#endif

int main(void) {
  char *neighbour = T_MALLOC(48);
  char *p = T_MALLOC(48);
  if (!p || !neighbour)
    return 4;
  memset(p, 7, 48);
  T_FREE(p);
  volatile char *q = p;
  int value = q[20]; /* the bug: a read after free */
  printf("read %d\n", value);
  T_FREE(neighbour);
  return 0;
}
