/* Links qmalloc (shared, or static with QM_EXPECT_STATIC) and checks that both the prefixed API and
 * the program's malloc are qmalloc's. Prints "ok" and exits 0 when every check holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <qmalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "FAILED: %s\n", what);
    failures++;
  }
}

/* The file that defines the symbol the dynamic linker binds for name ("" if unknown). */
static const char *defining_file(const char *name) {
  void *sym = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
    return "";
  return info.dli_fname;
}

int main(void) {
  check(strcmp(qm_version(), QMALLOC_VERSION_STRING) == 0, "qm_version() matches the header");

  /* The prefixed API. */
  char *q = qm_malloc(100);
  check(q != NULL, "qm_malloc(100)");
  if (q != NULL) {
    memset(q, 0x5a, 100);
    check(((uintptr_t)q & 15) == 0, "qm_malloc is 16-byte aligned");
    check(qm_usable_size(q) >= 100, "qm_usable_size >= request");
    check(qm_is_heap_pointer(q), "qm_is_heap_pointer(qm_malloc block)");
  }
  qm_free(q);

  /* The standard API must be served by qmalloc too. */
  char *m = malloc(1000);
  check(m != NULL, "malloc(1000)");
  if (m != NULL) {
    memset(m, 0xa5, 1000);
    check(qm_is_heap_pointer(m), "malloc'd block belongs to qmalloc");
    check(qm_usable_size(m) >= 1000, "qm_usable_size(malloc block) >= request");
  }
  m = realloc(m, 100000);
  check(m != NULL && qm_is_heap_pointer(m), "realloc'd block belongs to qmalloc");
  free(m);
  char *d = strdup("served by qmalloc"); /* allocated inside libc */
  check(d != NULL && qm_is_heap_pointer(d), "strdup (libc-internal malloc) is served by qmalloc");
  free(d);

  const char *where = defining_file("malloc");
  printf("malloc is defined in: %s\n", where);
#ifdef QM_EXPECT_STATIC
  check(strstr(where, "libc.so") == NULL, "malloc does not resolve to libc");
  check(strstr(defining_file("qm_malloc"), "libqmalloc.so") == NULL, "qm_malloc is linked in statically");
#else
  check(strstr(where, "libqmalloc.so") != NULL, "malloc resolves to libqmalloc.so");
#endif

  if (failures != 0)
    return 1;
  printf("ok\n");
  return 0;
}
