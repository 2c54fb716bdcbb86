/* A block of another thread's heap, which is alive, freed twice in a row by one thread (the
 * cross-thread free path, free.c, which batches such blocks): "double free". */
#include "death.h"

int main(void) {
  death_start();
  struct death_owner owner;
  char *p = death_owner_start(&owner, 48);
  void *mine = T_MALLOC(48); /* this thread has a heap of its own, to batch in */
  if (!p || !mine)
    return 4;
  death_target(p);
  T_FREE(p);
  T_FREE(death_launder(p));
  T_FREE(mine);
  death_owner_end(&owner);
  return death_survived();
}
