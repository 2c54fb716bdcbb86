/* A pointer into the metadata of another thread's segment (its header, 4 MiB aligned below any of
 * its blocks), freed by a thread that is not the owner: "invalid free". */
#include <stdint.h>

#include "death.h"

#define SEGMENT_SIZE ((uintptr_t)4 << 20) /* qmalloc's segments (docs/DESIGN.md) */

int main(void) {
  death_start();
  struct death_owner owner;
  void *block = death_owner_start(&owner, 48);
  void *mine = T_MALLOC(48);
  if (!block || !mine)
    return 4;
  char *bad = (char *)(((uintptr_t)block & ~(SEGMENT_SIZE - 1)) + 1024);
  death_target(bad);
  T_FREE(death_launder(bad));
  T_FREE(mine);
  death_owner_end(&owner);
  return death_survived();
}
