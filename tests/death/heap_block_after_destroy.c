/* Freeing a block of a heap after the heap was destroyed: its memory was released, and the free is
 * reported as such ("already released"). */
#include "death.h"

int main(void) {
  death_start();
  void *keep = T_MALLOC(100);
  qm_heap_t *h = qm_heap_new();
  char *p = qm_heap_malloc(h, 100);
  if (!h || !p || !keep)
    return 4;
  memset(p, 1, 100);
  qm_heap_destroy(h);
  death_target(p);
  T_FREE(death_launder(p));
  T_FREE(keep);
  return death_survived();
}
