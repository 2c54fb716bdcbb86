/* free() of an address in the metadata at the start of one of this thread's own segments (the
 * segment of a block it allocated): "allocator metadata". The free fast path sends such a pointer
 * to the owner's slow path, which must report it, never link it into a list. */
#include <stdint.h>

#include "death.h"

#define SEGMENT_SIZE ((uintptr_t)4 << 20) /* QM_SEGMENT_SIZE */

int main(void) {
  death_start();
  char *block = T_MALLOC(100);
  if (!block)
    return 4;
  char *p = death_launder((char *)((uintptr_t)block & ~(SEGMENT_SIZE - 1)) + 256);
  death_target(p);
  T_FREE(p);
  T_FREE(block);
  return death_survived();
}
