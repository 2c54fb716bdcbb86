/* An attacker who can write after free plants a plausible pointer in a free block's link: the
 * address of a block in another page, which the next mallocs of that size would hand out. The
 * secure variant's check finds it outside the page and reports "corrupted free list". */
#include <stdint.h>

#include "../death/death.h"

int main(void) {
  death_start();
  char *elsewhere = T_MALLOC(5000); /* another size class, so another page */
  char *p = T_MALLOC(96);
  if (!p || !elsewhere)
    return 4;
  death_target(p);
  T_FREE(p);
  void *planted = elsewhere + 64;
  memcpy(death_launder(p), &planted, sizeof planted); /* the bug: p's link now names `planted` */
  void *q = T_MALLOC(96);                             /* p */
  void *r = T_MALLOC(96);                             /* would be `planted` without the check */
  printf("got %p %p (planted %p)\n", q, r, planted);
  T_FREE(elsewhere);
  return death_survived();
}
