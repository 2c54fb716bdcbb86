/* Free A, free B, free A again. A is not first on its page's list when freed the second time, so
 * the default build's one compare misses it (and A would then be handed out twice); the secure
 * variant walks a few links of the list and reports "double free". */
#include "../death/death.h"

int main(void) {
  death_start();
  void *other = T_MALLOC(64); /* a neighbour, live throughout */
  char *a = T_MALLOC(64);
  char *b = T_MALLOC(64);
  if (!a || !b || !other)
    return 4;
  death_target(a);
  T_FREE(a);
  T_FREE(b);
  T_FREE(death_launder(a)); /* the bug */
  T_FREE(other);
  return death_survived();
}
