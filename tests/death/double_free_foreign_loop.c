/* A 16-byte block of a live thread freed twice by another thread, so far apart that the first free
 * has gone on to the owner's inbox (a batch holds 32 blocks) before the second: the freeing
 * thread's checks, which see only its open batch, miss it. Such blocks travel to their owner as
 * parcels of their own: the second free rewrites the block's link, and the chain in the owner's
 * inbox loops. The owner's drain goes round it (and, as collecting the block wrote its link, on
 * into the page's free list) until the page has no used block left, and the next free into it is
 * reported with the page's address (block-inl.h, qm_free_local; the page starts at the first
 * block): "double free", where the drain once went on, the page's count of used blocks wrapped,
 * and the program ran on with the same blocks on the free list twice. */
#include "death.h"

#define BLOCKS 41

static void *blocks[BLOCKS];
static pthread_barrier_t allocated, freed;

static void *owner_main(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) /* a new thread's heap: its 16-byte page holds only these */
    blocks[i] = T_MALLOC(16);
  pthread_barrier_wait(&allocated);
  pthread_barrier_wait(&freed);
  T_FREE(T_MALLOC(256 * 1024)); /* a large block collects the whole inbox */
  return NULL;
}

static void *freer_main(void *arg) {
  (void)arg;
  void *mine = T_MALLOC(64); /* a heap of its own, to batch in */
  for (int i = 0; i < BLOCKS; i++)
    T_FREE(blocks[i]);
  T_FREE(death_launder(blocks[0]));
  T_FREE(mine);
  return NULL; /* the thread's exit hands its batches to their owners */
}

int main(void) {
  death_start();
  pthread_barrier_init(&allocated, NULL, 2);
  pthread_barrier_init(&freed, NULL, 2);
  pthread_t owner, freer;
  if (pthread_create(&owner, NULL, owner_main, NULL) != 0)
    return 4;
  pthread_barrier_wait(&allocated);
  for (int i = 0; i < BLOCKS; i++)
    if (!blocks[i])
      return 4;
  death_target(blocks[0]); /* the start of the owner's page */
  if (pthread_create(&freer, NULL, freer_main, NULL) != 0)
    return 4;
  pthread_join(freer, NULL);
  pthread_barrier_wait(&freed);
  pthread_join(owner, NULL);
  return death_survived();
}
