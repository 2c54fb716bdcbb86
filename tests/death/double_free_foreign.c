/* A block of another thread's heap, which is alive, freed twice in a row by one thread (the
 * cross-thread free path, free.c, which batches such blocks): "double free". */
#include <pthread.h>

#include "death.h"

static void *block_of_other_heap;
static pthread_barrier_t allocated, done;

/* Allocates the block and stays alive (its heap keeps owning it) until the end. */
static void *owner(void *arg) {
  (void)arg;
  block_of_other_heap = T_MALLOC(48);
  pthread_barrier_wait(&allocated);
  pthread_barrier_wait(&done);
  return NULL;
}

int main(void) {
  death_start();
  pthread_t t;
  pthread_barrier_init(&allocated, NULL, 2);
  pthread_barrier_init(&done, NULL, 2);
  if (pthread_create(&t, NULL, owner, NULL) != 0)
    return 4;
  pthread_barrier_wait(&allocated);
  char *p = block_of_other_heap;
  void *mine = T_MALLOC(48); /* this thread has a heap of its own, to batch in */
  if (!p || !mine)
    return 4;
  death_target(p);
  T_FREE(p);
  T_FREE(death_launder(p));
  T_FREE(mine);
  pthread_barrier_wait(&done);
  pthread_join(t, NULL);
  return death_survived();
}
