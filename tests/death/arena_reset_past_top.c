/* qm_arena_reset_to with a mark above the arena's top (here one taken before a reset): "past the
 * top". The report names the arena. */
#include "death.h"

int main(void) {
  death_start();
  qm_arena_t *arena = qm_arena_new(0);
  if (!arena || !qm_arena_alloc(arena, 1000))
    return 4;
  size_t mark = qm_arena_mark(arena);
  qm_arena_reset(arena);
  death_target(arena);
  qm_arena_reset_to(death_launder(arena), mark);
  return death_survived();
}
