/* Not linked with qmalloc: reports which library serves malloc and the environment qmalloc-run sets,
 * one "key=value" per line. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  /* Some allocation traffic through whatever malloc is in place. */
  void *blocks[64];
  for (int i = 0; i < 64; i++) {
    blocks[i] = malloc((size_t)(i + 1) * 48);
    if (blocks[i] == NULL)
      return 2;
    memset(blocks[i], i, (size_t)(i + 1) * 48);
  }
  for (int i = 0; i < 64; i++)
    free(blocks[i]);

  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  const char *file = (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname) ? info.dli_fname : "";
  const char *preload = getenv("LD_PRELOAD");
  const char *verbose = getenv("QMALLOC_VERBOSE");
  printf("malloc=%s\n", file);
  printf("LD_PRELOAD=%s\n", preload ? preload : "");
  printf("QMALLOC_VERBOSE=%s\n", verbose ? verbose : "");
  return 0;
}
