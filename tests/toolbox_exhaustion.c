/* Exhaustion of heaps, pools, arenas and stacks: run under a limit on the address space (ulimit -v),
 * each allocator eventually returns NULL with errno ENOMEM, without crashing; destroying (or
 * resetting) it gives the memory back, so the same allocations succeed again. */
#include <sys/resource.h>

#include "qmt.h"

static size_t heap_fill(qm_heap_t *h, size_t size, int *err) {
  size_t total = 0;
  for (;;) {
    errno = 0;
    unsigned char *p = qm_heap_malloc(h, size);
    if (!p) {
      *err = errno;
      return total;
    }
    p[0] = p[size - 1] = 1;
    total += size;
  }
}

static void test_heap(void) {
  size_t sizes[] = {8 * MiB, 256 * KiB, 3000};
  for (size_t i = 0; i < 3; i++) {
    int err = 0;
    qm_heap_t *h = qm_heap_new();
    size_t first = heap_fill(h, sizes[i], &err);
    CHECKF(err == ENOMEM && first >= 200 * MiB, "heap, %zu-byte blocks: %zu MiB, errno %d", sizes[i],
           first >> 20, err);
    qm_heap_destroy(h);
    h = qm_heap_new();
    size_t second = heap_fill(h, sizes[i], &err);
    CHECKF(err == ENOMEM && second >= first / 2, "heap, again: %zu MiB after %zu MiB, errno %d", second >> 20,
           first >> 20, err);
    qm_heap_destroy(h);
    fprintf(stderr, "  heap %zu B: %zu MiB, then %zu MiB\n", sizes[i], first >> 20, second >> 20);
  }
}

static void test_pool(void) {
  for (int round = 0; round < 2; round++) {
    qm_pool_t *p = qm_pool_new(4000, 0);
    size_t count = 0;
    unsigned char *obj;
    errno = 0;
    while ((obj = qm_pool_alloc(p)) != NULL) {
      obj[0] = 1;
      count++;
    }
    CHECKF(errno == ENOMEM && count * 4000 >= 200 * MiB, "pool: %zu objects, errno %d", count, errno);
    fprintf(stderr, "  pool: %zu MiB\n", count * 4000 >> 20);
    qm_pool_destroy(p);
  }
}

static void test_arena(void) {
  size_t sizes[] = {1000, 100 * KiB, 5 * MiB};
  for (size_t i = 0; i < 3; i++) {
    qm_arena_t *a = qm_arena_new(0);
    size_t total = 0;
    unsigned char *p;
    errno = 0;
    while ((p = qm_arena_alloc(a, sizes[i])) != NULL) {
      p[0] = 1;
      total += sizes[i];
    }
    CHECKF(errno == ENOMEM && total >= 200 * MiB, "arena, %zu-byte blocks: %zu MiB, errno %d", sizes[i],
           total >> 20, errno);
    /* After a reset the arena serves again. */
    qm_arena_reset(a);
    size_t again = 0;
    while (again < 100 * MiB && (p = qm_arena_alloc(a, sizes[i])) != NULL)
      again += sizes[i];
    CHECKF(again >= 100 * MiB, "arena after reset: %zu MiB", again >> 20);
    fprintf(stderr, "  arena %zu B: %zu MiB\n", sizes[i], total >> 20);
    qm_arena_destroy(a);
  }
}

static void test_stack(void) {
  errno = 0;
  qm_stack_t *s = qm_stack_new(4096 * MiB);
  CHECK(s == NULL && errno == ENOMEM);
  s = qm_stack_new(100 * MiB);
  CHECK(s != NULL);
  qm_stack_destroy(s);
}

int main(void) {
  qmt_start("toolbox_exhaustion");
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    CHECKF(0, "run this test with a limit on the address space (ulimit -v)");
    return check_result("toolbox_exhaustion");
  }
  test_heap();
  test_pool();
  test_arena();
  test_stack();
  CHECK(qm_heap_validate());
  return check_result("toolbox_exhaustion");
}
