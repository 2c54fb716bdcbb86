/* An object of one pool freed into another: "wrong pool". */
#include "death.h"

int main(void) {
  death_start();
  qm_pool_t *a = qm_pool_new(64, 0);
  qm_pool_t *b = qm_pool_new(64, 0);
  void *obj = qm_pool_alloc(a);
  void *other = qm_pool_alloc(b);
  if (!a || !b || !obj || !other)
    return 4;
  death_target(obj);
  qm_pool_free(b, death_launder(obj));
  return death_survived();
}
