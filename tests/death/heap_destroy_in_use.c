/* qm_heap_destroy from another thread while the owner lives: "in use by another thread". */
#include <pthread.h>

#include "death.h"

static void *destroyer(void *arg) {
  qm_heap_destroy(death_launder(arg));
  return NULL;
}

int main(void) {
  death_start();
  qm_heap_t *h = qm_heap_new();
  void *mine = qm_heap_malloc(h, 32);
  if (!h || !mine)
    return 4;
  death_target(h);
  pthread_t t;
  pthread_create(&t, NULL, destroyer, h);
  pthread_join(t, NULL);
  return death_survived();
}
