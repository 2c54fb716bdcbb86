/* free_sized and free_aligned_sized (C23): free a block given the size (and alignment) it was
 * requested with, for every kind of block. */
#include "qmt.h"

static void test_free_sized(void) {
  T_FREE_SIZED(NULL, 0);
  T_FREE_SIZED(NULL, 100);
  qmt_rng r;
  qmt_rng_seed(&r, 11);
  for (int round = 0; round < 3; round++) {
    enum { N = 3000 };
    static unsigned char *v[N];
    static size_t sz[N];
    for (int i = 0; i < N; i++) {
      sz[i] = (i % 300 == 0)  ? 2 * MiB + qmt_below(&r, 4 * MiB)
              : (i % 40 == 0) ? 64 * KiB + qmt_below(&r, 1 * MiB)
                              : qmt_random_size(&r, 16 * KiB) - 1; /* includes 0 */
      v[i] = (i % 3 == 0) ? T_CALLOC(1, sz[i]) : T_MALLOC(sz[i]);
      CHECK(v[i] != NULL);
      if (v[i])
        qmt_fill(v[i], sz[i], qmt_seed(v[i], sz[i]));
    }
    for (int i = 0; i < N; i++) {
      int j = (round == 1) ? N - 1 - i : i;
      if (v[j])
        CHECK(qmt_verify(v[j], sz[j], qmt_seed(v[j], sz[j])) == SIZE_MAX);
      T_FREE_SIZED(v[j], sz[j]);
    }
    if (qmt_strict)
      CHECK(qmt_heap_validate());
  }
  /* A block that was reallocated is freed with its latest size. */
  unsigned char *p = T_MALLOC(10);
  CHECK(p != NULL);
  size_t sizes[] = {100, 100 * KiB, 3 * MiB, 50};
  for (size_t i = 0; p && i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *q = T_REALLOC(p, sizes[i]);
    CHECK(q != NULL);
    if (!q)
      break;
    p = q;
    if (i + 1 == sizeof sizes / sizeof sizes[0])
      T_FREE_SIZED(p, sizes[i]);
  }
}

static void test_free_aligned_sized(void) {
  T_FREE_ALIGNED_SIZED(NULL, 64, 0);
  for (size_t a = 1; a <= 16 * MiB; a *= 2) {
    size_t sizes[] = {a, 2 * a, 5 * a, a < 4096 ? 4096 : a};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      unsigned char *p = T_ALIGNED_ALLOC(a, n);
      CHECKF(p != NULL && qmt_aligned(p, a), "aligned_alloc(%zu, %zu) = %p", a, n, (void *)p);
      if (p) {
        p[0] = 1;
        p[n - 1] = 2;
      }
      T_FREE_ALIGNED_SIZED(p, a, n);
    }
  }
  /* Interleaved with other blocks, which must stay intact. */
  enum { N = 500 };
  static unsigned char *keep[N], *al[N];
  for (int i = 0; i < N; i++) {
    keep[i] = T_MALLOC(64 + (size_t)i);
    al[i] = T_ALIGNED_ALLOC(256, 512);
    CHECK(keep[i] && al[i]);
    if (keep[i])
      memset(keep[i], 0x3C, 64 + (size_t)i);
  }
  for (int i = 0; i < N; i++)
    T_FREE_ALIGNED_SIZED(al[i], 256, 512);
  for (int i = 0; i < N; i++) {
    bool ok = true;
    for (size_t k = 0; keep[i] && k < 64 + (size_t)i; k++)
      ok = ok && keep[i][k] == 0x3C;
    CHECK(ok);
    T_FREE_SIZED(keep[i], 64 + (size_t)i);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

int main(void) {
  qmt_start("api_sized");
  test_free_sized();
  test_free_aligned_sized();
  return check_result("api_sized");
}
