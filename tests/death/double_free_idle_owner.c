/* A block of a thread that waits in pthread_join, freed twice by another thread, while its inbox is
 * purged (purge.c, "The inbox of an idle heap"): the owner's collect of the purged inbox sorts the
 * blocks it lists and finds the block twice (heap.c, "Collecting an inbox that was purged"):
 * "double free". double_free_idle_loop.c builds this with 16-byte blocks instead. */
#include "death.h"

#ifndef BLOCK_SIZE
#define BLOCK_SIZE 256
#endif
#define BLOCKS 64

static void *blocks[BLOCKS];

static void *worker(void *arg) {
  (void)arg;
  void *mine = T_MALLOC(BLOCK_SIZE); /* a heap of its own, to batch in */
  for (int i = 0; i < BLOCKS; i++)
    T_FREE(blocks[i]);
  T_FREE(death_launder(blocks[10])); /* not the block freed last: the batch takes it */
  qm_trim(0);                        /* purges the waiting thread's inbox, and marks it */
  T_FREE(mine);
  return NULL;
}

int main(void) {
  death_start();
  for (int i = 0; i < BLOCKS; i++)
    if ((blocks[i] = T_MALLOC(BLOCK_SIZE)) == NULL)
      return 4;
  death_target(blocks[10]);
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, NULL) != 0)
    return 4;
  pthread_join(thread, NULL);
  T_FREE(T_MALLOC(256 * 1024)); /* a large block collects the whole inbox */
  return death_survived();
}
