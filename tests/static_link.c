/* A program linked with libqmalloc.a (standard names): its malloc is qmalloc, defined in the
 * executable itself, and the C library's own allocations (strdup, stdio buffers) use it too. */
#include <pthread.h>

#include "qmt.h"

/* Allocation before main and before qmalloc's own constructor (priority 101 runs first): the
 * allocator starts itself up on first use, without recursing into itself. */
static void *early_block;
static char *early_copy;
__attribute__((constructor(101))) static void allocate_early(void) {
  early_block = malloc(200);
  if (early_block)
    memset(early_block, 0x5A, 200);
  early_copy = strdup("made in a constructor");
}

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

  CHECKF(early_block != NULL && qm_is_heap_pointer(early_block), "early malloc gave %p", early_block);
  CHECKF(early_copy != NULL && strcmp(early_copy, "made in a constructor") == 0 &&
             qm_is_heap_pointer(early_copy),
         "early strdup gave %p", (void *)early_copy);
  if (early_block)
    CHECK(((unsigned char *)early_block)[199] == 0x5A);
  free(early_block);
  free(early_copy);

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
