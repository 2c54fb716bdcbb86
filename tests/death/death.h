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
#include <pthread.h>
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

/* A second thread that allocates one block and stays alive, so that its heap keeps owning the
 * block, until death_owner_end(): for bugs on the cross-thread free path. */
struct death_owner {
  pthread_t thread;
  pthread_barrier_t allocated, done;
  size_t size;
  void *block;
};

static inline void *death_owner_main(void *arg) {
  struct death_owner *o = arg;
  o->block = T_MALLOC(o->size);
  pthread_barrier_wait(&o->allocated);
  pthread_barrier_wait(&o->done);
  return NULL;
}

/* Starts the owner; returns its block (NULL if anything failed). */
static inline void *death_owner_start(struct death_owner *o, size_t size) {
  o->size = size;
  o->block = NULL;
  pthread_barrier_init(&o->allocated, NULL, 2);
  pthread_barrier_init(&o->done, NULL, 2);
  if (pthread_create(&o->thread, NULL, death_owner_main, o) != 0)
    return NULL;
  pthread_barrier_wait(&o->allocated);
  return o->block;
}

static inline void death_owner_end(struct death_owner *o) {
  pthread_barrier_wait(&o->done);
  pthread_join(o->thread, NULL);
}

#endif /* QMT_DEATH_H */
