/* A program linked with libqmalloc.a (standard names): its malloc is qmalloc, defined in the
 * executable itself, and the C library's own allocations (strdup, stdio buffers) use it too. */
#include <pthread.h>

#include "qmt.h"

static void *thread_alloc(void *arg) {
  (void)arg;
  return malloc(1000);
}

int main(void) {
  fprintf(stderr, "static_link\n");
  CHECKF(strcmp(qm_version(), QMALLOC_VERSION_STRING) == 0, "qm_version() = %s", qm_version());

  /* malloc, as this program calls it and as the dynamic linker resolves it for every library,
   * lies in the executable, not in the C library. */
  Dl_info self, direct, resolved;
  void *(*volatile direct_malloc)(size_t) = malloc;
  void *resolved_malloc = dlsym(RTLD_DEFAULT, "malloc");
  CHECK(dladdr((void *)&main, &self) != 0);
  CHECK(dladdr((void *)direct_malloc, &direct) != 0);
  CHECKF(resolved_malloc != NULL && dladdr(resolved_malloc, &resolved) != 0, "dlsym(malloc) = %p",
         resolved_malloc);
  if (!check_failures()) {
    fprintf(stderr, "  executable %s; malloc from %s (called), %s (resolved)\n", self.dli_fname,
            direct.dli_fname, resolved.dli_fname);
    CHECKF(direct.dli_fbase == self.dli_fbase, "the program's malloc is in %s", direct.dli_fname);
    CHECKF(resolved.dli_fbase == self.dli_fbase, "the dynamic linker resolves malloc to %s",
           resolved.dli_fname);
    CHECK(strstr(resolved.dli_fname, "libc") == NULL || resolved.dli_fbase == self.dli_fbase);
  }

  /* Blocks, including those the C library allocates for itself, are qmalloc's. */
  char *p = malloc(100);
  char *s = strdup("allocated inside the C library");
  CHECK(p != NULL && s != NULL);
  CHECKF(qm_is_heap_pointer(p), "malloc'ed %p is not in qmalloc's heap", (void *)p);
  CHECKF(qm_is_heap_pointer(s), "strdup'ed %p is not in qmalloc's heap", (void *)s);
  CHECK(qm_usable_size(p) >= 100 && malloc_usable_size(p) == qm_usable_size(p));
  /* A block from malloc can be given to qm_free and the other way round: one allocator. */
  qm_free(p);
  free(s);
  void *q = qm_malloc(50);
  CHECK(q != NULL);
  free(q);

  /* Other threads use it as well; blocks cross threads. */
  pthread_t t;
  void *from_thread = NULL;
  CHECK(pthread_create(&t, NULL, thread_alloc, NULL) == 0);
  pthread_join(t, &from_thread);
  CHECK(from_thread != NULL && qm_is_heap_pointer(from_thread));
  free(from_thread);
  CHECK(qm_heap_validate());
  return check_result("static_link");
}
