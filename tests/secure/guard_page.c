/* The secure variant makes the OS page between a segment's slice descriptors and its first span
 * inaccessible. This program writes there, as an overflow running backwards out of the first span
 * would; it must die by SIGSEGV (the test checks the status) instead of reaching "survived". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SEGMENT_MASK ((uintptr_t)(4 << 20) - 1)
#define FIRST_SPAN 0xA000 /* 5 metadata slices of 8 KiB */

int main(void) {
  char *p = malloc(64);
  if (p == NULL)
    return 4;
  uintptr_t segment = (uintptr_t)p & ~SEGMENT_MASK;
  volatile char *guard = (volatile char *)(segment + FIRST_SPAN - 16);
  printf("block %p; writing at %p, 16 bytes before the first span\n", (void *)p, (void *)guard);
  fflush(stdout);
  *guard = 1;
  printf("survived\n");
  return 0;
}
