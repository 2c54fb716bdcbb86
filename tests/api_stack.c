/* Stack allocator: LIFO blocks with intact contents, a full stack failing with ENOMEM and working
 * again once emptied, and nested use. */
#include "qmt.h"

static void test_lifo(void) {
  qm_stack_t *s = qm_stack_new(1 * MiB);
  CHECK(s != NULL);
  qmt_rng r;
  qmt_rng_seed(&r, 3);
  void *blocks[1000];
  size_t sizes[1000];
  for (int round = 0; round < 50; round++) {
    size_t depth = 0;
    /* Random pushes and pops, contents checked at every pop. */
    for (int step = 0; step < 2000; step++) {
      bool push = depth == 0 || (depth < 1000 && qmt_below(&r, 3) != 0);
      if (push) {
        size_t size = qmt_random_size(&r, 2000);
        void *p = qm_stack_alloc(s, size);
        if (p == NULL) {
          CHECK(errno == ENOMEM);
          push = false;
        } else {
          CHECK(qmt_aligned(p, 16));
          qmt_fill(p, size, qmt_seed(p, size));
          blocks[depth] = p;
          sizes[depth++] = size;
        }
      }
      if (!push && depth > 0) {
        depth--;
        CHECKF(qmt_verify(blocks[depth], sizes[depth], qmt_seed(blocks[depth], sizes[depth])) == SIZE_MAX,
               "block at depth %zu overwritten", depth);
        qm_stack_free(s, blocks[depth]);
      }
    }
    while (depth > 0) {
      depth--;
      CHECK(qmt_verify(blocks[depth], sizes[depth], qmt_seed(blocks[depth], sizes[depth])) == SIZE_MAX);
      qm_stack_free(s, blocks[depth]);
    }
  }
  qm_stack_free(s, NULL);
  qm_stack_destroy(s);
}

static void test_full(void) {
  qm_stack_t *s = qm_stack_new(64 * KiB);
  size_t first = 0, second = 0;
  void *p, *all[1024];
  errno = 0;
  while (first < 1024 && (p = qm_stack_alloc(s, 100)) != NULL) {
    memset(p, 3, 100);
    all[first++] = p;
  }
  CHECK(errno == ENOMEM);
  CHECK(first == 64 * KiB / (112 + 16)); /* each block: 100 rounded to 112, and a 16-byte header */
  /* Pop everything: the same number fits again. */
  for (size_t i = first; i-- > 0;)
    qm_stack_free(s, all[i]);
  while (qm_stack_alloc(s, 100) != NULL)
    second++;
  CHECK(second == first);
  errno = 0;
  CHECK(qm_stack_alloc(s, SIZE_MAX) == NULL && errno == ENOMEM);
  qm_stack_destroy(s);

  qm_stack_t *empty = qm_stack_new(0);
  CHECK(empty != NULL);
  errno = 0;
  CHECK(qm_stack_alloc(empty, 0) == NULL && errno == ENOMEM);
  qm_stack_destroy(empty);
  qm_stack_t *exact = qm_stack_new(32);
  void *a = qm_stack_alloc(exact, 16);
  CHECK(a != NULL);
  CHECK(qm_stack_alloc(exact, 0) == NULL);
  qm_stack_free(exact, a);
  CHECK(qm_stack_alloc(exact, 16) == a);
  qm_stack_destroy(exact);
  errno = 0;
  CHECK(qm_stack_new(SIZE_MAX) == NULL && errno == ENOMEM);
  qm_stack_destroy(NULL);
}

static void test_huge_stack(void) {
  qm_stack_t *s = qm_stack_new(64 * MiB); /* a huge block; only what is used is touched */
  CHECK(s != NULL);
  void *a = qm_stack_alloc(s, 40 * MiB);
  void *b = qm_stack_alloc(s, 20 * MiB);
  CHECK(a != NULL && b != NULL);
  CHECK(qm_stack_alloc(s, 10 * MiB) == NULL);
  memset(b, 1, 4096);
  qm_stack_free(s, b);
  qm_stack_free(s, a);
  qm_stack_destroy(s);
}

int main(void) {
  qmt_start("api_stack");
  test_lifo();
  test_full();
  test_huge_stack();
  CHECK(qm_heap_validate());
  return check_result("api_stack");
}
