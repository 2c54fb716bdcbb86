/* A stack block freed while a newer one is live: "freed out of order". */
#include "death.h"

int main(void) {
  death_start();
  qm_stack_t *s = qm_stack_new(4096);
  void *older = qm_stack_alloc(s, 100);
  void *newer = qm_stack_alloc(s, 100);
  if (!s || !older || !newer)
    return 4;
  death_target(older);
  qm_stack_free(s, death_launder(older));
  return death_survived();
}
