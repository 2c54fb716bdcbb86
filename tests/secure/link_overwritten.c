/* A use after free writes over the link word of a free block; the next malloc of that size would
 * follow it. The secure variant decodes the link, finds no block of the page there, and reports
 * "corrupted free list" naming the block. */
#include "../death/death.h"

int main(void) {
  death_start();
  void *keep[8];
  for (int i = 0; i < 8; i++)
    keep[i] = T_MALLOC(96);
  char *p = T_MALLOC(96);
  if (!p)
    return 4;
  death_target(p);
  T_FREE(p);
  memset(death_launder(p), 0x41, 16); /* the bug: a write after free over the link */
  void *q = T_MALLOC(96);             /* pops p: its link is decoded and checked */
  void *r = T_MALLOC(96);
  printf("got %p %p\n", q, r);
  for (int i = 0; i < 8; i++)
    T_FREE(keep[i]);
  return death_survived();
}
