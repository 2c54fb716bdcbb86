/* aligned_alloc, posix_memalign, memalign, valloc, pvalloc: every power of two from 1 to 64 MiB
 * (and a few beyond), the EINVAL cases, page alignment. */
#include "qmt.h"

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void use_block(unsigned char *p, size_t n, size_t align, const char *fn) {
  CHECKF(p != NULL, "%s(%zu, %zu)", fn, align, n);
  if (!p)
    return;
  CHECKF(qmt_aligned(p, align), "%s(%zu, %zu) = %p misaligned", fn, align, n, (void *)p);
  CHECKF(qmt_aligned(p, 16), "%s(%zu, %zu) = %p not 16-byte aligned", fn, align, n, (void *)p);
  size_t u = T_USABLE_SIZE(p);
  CHECKF(u >= n, "%s(%zu, %zu): usable %zu", fn, align, n, u);
  if (n) {
    p[0] = 0x11;
    p[n - 1] = 0x22;
    if (n <= 4 * MiB) {
      uint64_t seed = qmt_seed(p, n);
      qmt_fill(p, n, seed);
      CHECK(qmt_verify(p, n, seed) == SIZE_MAX);
    }
  }
}

static void test_powers_of_two(void) {
  for (size_t a = 1; a <= 64 * MiB; a *= 2) {
    size_t sizes[] = {1, 16, 100, a / 2 ? a / 2 : 1, a, a + 1, 3 * a};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      if (n > 64 * MiB && a >= 32 * MiB)
        n = a; /* keep the address space use reasonable */
      unsigned char *p = T_ALIGNED_ALLOC(a, n);
      use_block(p, n, a, "aligned_alloc");
      T_FREE(p);

      p = T_MEMALIGN(a, n);
      use_block(p, n, a, "memalign");
      T_FREE(p);

      void *q = (void *)&q;
      int rc = T_POSIX_MEMALIGN(&q, a, n);
      if (a < sizeof(void *)) {
        CHECKF(rc == EINVAL, "posix_memalign(%zu, %zu) = %d", a, n, rc);
      } else {
        CHECKF(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
        if (rc == 0) {
          use_block(q, n, a, "posix_memalign");
          T_FREE(q);
        }
      }
    }
  }
  /* Beyond 64 MiB. */
  for (size_t a = 128 * MiB; a <= 256 * MiB; a *= 2) {
    unsigned char *p = T_ALIGNED_ALLOC(a, 4096);
    use_block(p, 4096, a, "aligned_alloc");
    T_FREE(p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* Many live aligned blocks of mixed alignments and sizes: disjoint, contents kept. */
static void test_many(void) {
  enum { N = 2000 };
  static unsigned char *v[N];
  static size_t sz[N];
  qmt_rng r;
  qmt_rng_seed(&r, 31);
  for (int i = 0; i < N; i++) {
    size_t a = (size_t)1 << qmt_below(&r, (i % 97 == 0) ? 22 : 13);
    sz[i] = qmt_random_size(&r, (i % 89 == 0) ? 3 * MiB : 8 * KiB);
    v[i] = T_ALIGNED_ALLOC(a, sz[i]);
    CHECK(v[i] != NULL && qmt_aligned(v[i], a));
    if (v[i])
      qmt_fill(v[i], sz[i], qmt_seed(v[i], sz[i]));
  }
  for (int i = 0; i < N; i++) {
    if (v[i])
      CHECKF(qmt_verify(v[i], sz[i], qmt_seed(v[i], sz[i])) == SIZE_MAX, "aligned block %d corrupted", i);
    T_FREE(v[i]);
  }
}

static void test_einval(void) {
  size_t bad[] = {0, 3, 12, 24, 48, 100, 4095, 4097, 3 * 4096, ((size_t)1 << 20) + 8, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *q = NULL;
    int rc = T_POSIX_MEMALIGN(&q, qmt_opaque(bad[i]), 16);
    CHECKF(rc == EINVAL, "posix_memalign(&p, %zu, 16) = %d", bad[i], rc);
    if (rc == 0)
      T_FREE(q);
  }
  /* Powers of two below sizeof(void *) are not accepted by posix_memalign. */
  for (size_t a = 1; a < sizeof(void *); a *= 2) {
    void *q = NULL;
    int rc = T_POSIX_MEMALIGN(&q, qmt_opaque(a), 16);
    CHECKF(rc == EINVAL, "posix_memalign(&p, %zu, 16) = %d", a, rc);
    if (rc == 0)
      T_FREE(q);
  }
  if (qmt_strict) {
    size_t nonpow[] = {3, 12, 24, 48, 100, 4095, 4097, 3 * 4096};
    for (size_t i = 0; i < sizeof nonpow / sizeof nonpow[0]; i++) {
      errno = 0;
      void *p = T_ALIGNED_ALLOC(qmt_opaque(nonpow[i]), 64);
      CHECKF(p == NULL && errno == EINVAL, "aligned_alloc(%zu, 64) = %p, errno %d", nonpow[i], p, errno);
      T_FREE(p);
    }
  }
}

static void test_page_aligned(void) {
  size_t ps = page_size();
  size_t sizes[] = {1, 16, 100, 4095, 4096, 4097, 10000, 64 * KiB, 100 * KiB, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = T_VALLOC(n);
    use_block(p, n, ps, "valloc");
    T_FREE(p);

    p = T_PVALLOC(n);
    use_block(p, n, ps, "pvalloc");
    if (p) {
      size_t u = T_USABLE_SIZE(p);
      size_t rounded = qmt_round_up(n, ps);
      CHECKF(u >= rounded, "pvalloc(%zu): usable %zu < %zu", n, u, rounded);
      memset(p, 0x5C, rounded); /* the whole rounded size is ours */
    }
    T_FREE(p);
  }
  /* Mixed with malloc'ed neighbours: page-aligned blocks do not overlap them. */
  enum { N = 200 };
  static unsigned char *m[N], *v[N];
  for (int i = 0; i < N; i++) {
    m[i] = T_MALLOC(100 + (size_t)i);
    v[i] = T_VALLOC(100);
    CHECK(m[i] && v[i]);
    if (m[i])
      memset(m[i], 0xAB, 100 + (size_t)i);
    if (v[i]) {
      CHECK(qmt_aligned(v[i], ps));
      memset(v[i], 0xCD, 100);
    }
  }
  for (int i = 0; i < N; i++) {
    bool ok = true;
    for (size_t k = 0; m[i] && k < 100 + (size_t)i; k++)
      ok = ok && m[i][k] == 0xAB;
    for (size_t k = 0; v[i] && k < 100; k++)
      ok = ok && v[i][k] == 0xCD;
    CHECK(ok);
    T_FREE(m[i]);
    T_FREE(v[i]);
  }
}

int main(void) {
  qmt_start("api_aligned");
  test_powers_of_two();
  test_many();
  test_einval();
  test_page_aligned();
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("api_aligned");
}
