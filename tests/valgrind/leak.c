/* A planted leak: a block whose only pointer is dropped. Run under valgrind --leak-check=full, a
 * qmalloc built with QMALLOC_VALGRIND must let memcheck report it as "definitely lost", as it
 * does with glibc's malloc. */
#include <stdio.h>
#include <stdlib.h>

#include "qmalloc.h"

#ifdef QMT_PREFIXED
#define T_MALLOC qm_malloc
#define T_FREE qm_free
#else
#define T_MALLOC malloc
#define T_FREE free
#endif

static void *volatile sink;

int main(void) {
  void *kept = T_MALLOC(64);
  for (int i = 0; i < 100; i++) /* blocks that come and go, freed properly */
    T_FREE(T_MALLOC((size_t)(i + 1) * 16));
  sink = T_MALLOC(4242); /* the leak: 4242 bytes asked, the pointer dropped below */
  sink = NULL;
  T_FREE(kept);
  printf("done\n");
  return 0;
}
