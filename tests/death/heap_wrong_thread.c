/* qm_heap_malloc from a thread that does not own the heap: "belongs to another thread". */
#include <pthread.h>

#include "death.h"

static void *intruder(void *arg) {
  void *p = qm_heap_malloc(death_launder(arg), 32);
  return p;
}

int main(void) {
  death_start();
  qm_heap_t *h = qm_heap_new();
  void *mine = qm_heap_malloc(h, 32);
  if (!h || !mine)
    return 4;
  death_target(h);
  pthread_t t;
  pthread_create(&t, NULL, intruder, h);
  pthread_join(t, NULL);
  qm_heap_destroy(h);
  return death_survived();
}
