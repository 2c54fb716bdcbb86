/* A pointer into the metadata of another thread's segment (its header, 4 MiB aligned below any of
 * its blocks), freed by a thread that is not the owner: "invalid free". */
#include <pthread.h>
#include <stdint.h>

#include "death.h"

#define SEGMENT_SIZE ((uintptr_t)4 << 20) /* qmalloc's segments (docs/DESIGN.md) */

static void *block_of_other_heap;
static pthread_barrier_t allocated, done;

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
  void *mine = T_MALLOC(48);
  if (!block_of_other_heap || !mine)
    return 4;
  char *bad = (char *)(((uintptr_t)block_of_other_heap & ~(SEGMENT_SIZE - 1)) + 1024);
  death_target(bad);
  T_FREE(death_launder(bad));
  T_FREE(mine);
  pthread_barrier_wait(&done);
  pthread_join(t, NULL);
  return death_survived();
}
