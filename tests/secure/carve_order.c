/* carve_order random|sequential: allocates 240 blocks of 208 bytes (a class nothing else uses at
 * start-up, so they come from a fresh page) and counts how often the next block lies right after
 * the previous one. Carving in address order makes nearly every step such a step; the secure
 * variant's random carving order makes few of them. Passes when the count matches the argument.
 * Exits 3 when qmalloc does not serve malloc. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT 240
#define SIZE 208

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "random") != 0 && strcmp(argv[1], "sequential") != 0)) {
    fprintf(stderr, "usage: %s random|sequential\n", argv[0]);
    return 2;
  }
  if (!dlsym(RTLD_DEFAULT, "qm_version")) {
    fprintf(stderr, "carve_order: qmalloc is not loaded\n");
    return 3;
  }
  static uintptr_t blocks[COUNT];
  for (int i = 0; i < COUNT; i++) {
    void *p = malloc(SIZE);
    if (p == NULL)
      return 4;
    blocks[i] = (uintptr_t)p;
  }
  int adjacent = 0;
  for (int i = 1; i < COUNT; i++)
    adjacent += blocks[i] == blocks[i - 1] + SIZE;
  for (int i = 0; i < COUNT; i++)
    free((void *)blocks[i]);
  printf("%d of %d consecutive allocations are adjacent blocks\n", adjacent, COUNT - 1);
  int mostly = adjacent > (COUNT - 1) / 2;
  if (strcmp(argv[1], "random") == 0 ? mostly : !mostly) {
    printf("FAIL: the order does not look %s\n", argv[1]);
    return 1;
  }
  printf("PASS: %s order\n", argv[1]);
  return 0;
}
