/* Allocation from a heap that was destroyed: "not a live heap". */
#include "death.h"

int main(void) {
  death_start();
  qm_heap_t *h = qm_heap_new();
  void *p = qm_heap_malloc(h, 100);
  if (!h || !p)
    return 4;
  qm_heap_destroy(h);
  death_target(h);
  p = qm_heap_malloc(death_launder(h), 100);
  return death_survived() + (p != NULL);
}
