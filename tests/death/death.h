/* death.h - shared by the death tests: each program commits one heap bug that qmalloc must detect,
 * report on stderr ("qmalloc: ...") and answer with abort().
 *
 * The program prints "target 0x..." (the pointer it is about to misuse) on stdout first; the runner
 * script checks that the report names that address. If the program survives the bug it prints
 * "survived" and exits 0, which the runner reports as a failure.
 *
 * Built in two flavours: standard names against libqmalloc.so (which must then be the malloc in
 * use, else the program exits 3), and prefixed (QMT_PREFIXED: qm_malloc / qm_free).
 */
#ifndef QMT_DEATH_H
#define QMT_DEATH_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmalloc.h"

#ifdef QMT_PREFIXED
#define T_MALLOC qm_malloc
#define T_FREE qm_free
#else
#define T_MALLOC malloc
#define T_FREE free
#endif

/* Hides where a pointer came from, so that the compiler neither warns about nor removes the bug. */
static inline void *death_launder(void *p) {
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

/* Exits 3 unless qmalloc is the allocator under test. */
static inline void death_start(void) {
#ifndef QMT_PREFIXED
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  if (!m || !dladdr(m, &info) || !info.dli_fname || !strstr(info.dli_fname, "libqmalloc") ||
      !dlsym(RTLD_DEFAULT, "qm_version")) {
    fprintf(stderr, "death test: qmalloc is not the malloc in use (malloc from %s)\n",
            m && dladdr(m, &info) && info.dli_fname ? info.dli_fname : "?");
    exit(3);
  }
#endif
}

/* Announces the pointer about to be misused. */
static inline void death_target(const void *p) {
  printf("target %p\n", p);
  fflush(stdout);
}

static inline int death_survived(void) {
  printf("survived\n");
  fflush(stdout);
  return 0;
}

#endif /* QMT_DEATH_H */
