/* Built with `cc pkgconfig_app.c $(pkg-config --cflags --libs qmalloc)`: the prefixed API works and the
 * program's malloc is qmalloc's. Prints "ok" and exits 0 when every check holds. */
#include <qmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void *q = qm_malloc(64);
  void *m = malloc(64);
  int good = q != NULL && m != NULL && qm_is_heap_pointer(q) && qm_is_heap_pointer(m) &&
             strcmp(qm_version(), QMALLOC_VERSION_STRING) == 0;
  qm_free(q);
  free(m);
  if (!good) {
    fprintf(stderr, "FAILED: qm_malloc/malloc are not both served by qmalloc %s\n", QMALLOC_VERSION_STRING);
    return 1;
  }
  printf("ok\n");
  return 0;
}
