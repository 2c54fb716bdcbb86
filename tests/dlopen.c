/* dlopen: a program that does not link qmalloc opens libqmalloc.so at run time (as a plugin host
 * would) and uses the prefixed API from two threads. This checks that the library's thread-local
 * storage (initial-exec) can be set up for a library loaded after start-up, and that start-up from
 * a dlopen, not from the program's own initialisation, works.
 *
 * usage: dlopen PATH-TO-libqmalloc.so
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef bool (*validate_fn)(void);

static malloc_fn qm_malloc_p;
static free_fn qm_free_p;
static validate_fn qm_validate_p;

static void *work(void *arg) {
  (void)arg;
  void *blocks[1000];
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 1000; i++) {
      size_t n = (size_t)(i * 37 % 5000) + 2;
      unsigned char *p = qm_malloc_p(n);
      CHECK(p != NULL);
      if (p) {
        p[0] = (unsigned char)i;
        p[n - 1] = (unsigned char)n;
      }
      blocks[i] = p;
    }
    for (int i = 0; i < 1000; i++) {
      size_t n = (size_t)(i * 37 % 5000) + 2;
      unsigned char *p = blocks[i];
      if (p)
        CHECK(p[0] == (unsigned char)i && p[n - 1] == (unsigned char)n);
      qm_free_p(p);
    }
  }
  CHECK(qm_validate_p());
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH-TO-libqmalloc.so\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECKF(lib != NULL, "dlopen(%s): %s", argv[1], dlerror());
  if (lib == NULL)
    return check_result("dlopen");
  /* POSIX guarantees that a data pointer from dlsym converts to a function pointer. */
  void *sym_malloc = dlsym(lib, "qm_malloc"), *sym_free = dlsym(lib, "qm_free");
  void *sym_validate = dlsym(lib, "qm_heap_validate");
  memcpy(&qm_malloc_p, &sym_malloc, sizeof qm_malloc_p);
  memcpy(&qm_free_p, &sym_free, sizeof qm_free_p);
  memcpy(&qm_validate_p, &sym_validate, sizeof qm_validate_p);
  CHECK(qm_malloc_p && qm_free_p && qm_validate_p);
  if (!(qm_malloc_p && qm_free_p && qm_validate_p))
    return check_result("dlopen");
  work(NULL);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, work, NULL) == 0);
  pthread_join(t, NULL);
  return check_result("dlopen");
}
