/* The same pool object freed twice in a row: "double free". */
#include "death.h"

int main(void) {
  death_start();
  qm_pool_t *pool = qm_pool_new(40, 0);
  void *keep = qm_pool_alloc(pool);
  void *obj = qm_pool_alloc(pool);
  if (!pool || !obj || !keep)
    return 4;
  death_target(obj);
  qm_pool_free(pool, obj);
  qm_pool_free(pool, death_launder(obj));
  return death_survived();
}
