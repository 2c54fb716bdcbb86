/* Reports whether qmalloc is the malloc of this process: malloc (as the dynamic linker resolves it)
 * lives in libqmalloc, qm_version is exported, and a block from malloc is in qmalloc's memory.
 * Prints "ACTIVE ..." and exits 0, or "NOT qmalloc ..." and exits 1. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  const char *file = (m && dladdr(m, &info) && info.dli_fname) ? info.dli_fname : "?";
  const char *(*version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "qm_version");
  bool (*is_heap)(const void *) = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "qm_is_heap_pointer");

  void *p = malloc(100);
  char *s = strdup("a string from the C library");
  bool ok =
      strstr(file, "libqmalloc") != NULL && version != NULL && is_heap != NULL && is_heap(p) && is_heap(s);
  if (ok)
    printf("ACTIVE qmalloc %s: malloc from %s\n", version(), file);
  else
    printf("NOT qmalloc: malloc from %s, qm_version %s\n", file, version ? version() : "absent");
  free(s);
  free(p);
  return ok ? 0 : 1;
}
