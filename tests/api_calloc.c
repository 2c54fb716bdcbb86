/* calloc: zeroed memory for every kind of block (also when memory is reused after being dirtied),
 * zero counts, overflow, and no RSS cost for large and huge blocks taken fresh from the OS. */
#include "qmt.h"

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

/* Runs first, while the process has touched little memory: big callocs must not write it. */
static void test_fresh_rss(void) {
  /* Huge: one block of 512 MiB. */
  size_t before = qmt_rss_kib();
  size_t n = 512 * MiB;
  unsigned char *p = T_CALLOC(1, n);
  CHECK(p != NULL);
  if (p) {
    size_t after = qmt_rss_kib();
    CHECKF(after < before + 32 * 1024, "calloc(512 MiB): RSS %zu -> %zu KiB", before, after);
    /* Sample a byte in every 1 MiB: touches only a few pages. */
    bool zero = true;
    for (size_t i = 0; i < n; i += MiB)
      zero = zero && p[i] == 0 && p[i + MiB - 1] == 0;
    CHECK(zero);
    T_FREE(p);
  }
  /* Large: 256 blocks of 1 MiB (256 MiB), from fresh segments. */
  enum { NL = 256 };
  static unsigned char *v[NL];
  before = qmt_rss_kib();
  for (int i = 0; i < NL; i++) {
    v[i] = T_CALLOC(MiB, 1);
    CHECK(v[i] != NULL);
  }
  size_t after = qmt_rss_kib();
  CHECKF(after < before + 48 * 1024, "256 x calloc(1 MiB): RSS %zu -> %zu KiB", before, after);
  for (int i = 0; i < NL; i++) {
    if (v[i])
      CHECK(v[i][0] == 0 && v[i][MiB / 2] == 0 && v[i][MiB - 1] == 0);
    T_FREE(v[i]);
  }
}

static void check_calloc(size_t count, size_t size) {
  size_t n = count * size;
  unsigned char *p = T_CALLOC(count, size);
  CHECKF(p != NULL, "calloc(%zu, %zu)", count, size);
  if (!p)
    return;
  CHECK(qmt_aligned(p, 16));
  size_t u = T_USABLE_SIZE(p);
  CHECK(u >= n);
  CHECKF(all_zero(p, n), "calloc(%zu, %zu) is not zeroed", count, size);
  /* Dirty the whole usable size so that the next block from this memory must be cleared. */
  memset(p, 0xA5, u);
  T_FREE(p);
}

/* Dirty, free, calloc again: reused memory is cleared, for every size class. */
static void test_sizes(void) {
  for (size_t n = 0; n <= 1024; n++)
    for (int rep = 0; rep < 3; rep++)
      check_calloc(1, n);
  for (size_t n = 1024; n <= 8 * MiB; n = n * 5 / 4 + 16) {
    for (int rep = 0; rep < 3; rep++) {
      check_calloc(n, 1);
      check_calloc(1, n + 1);
    }
  }
  size_t odd[] = {QMT_SMALL_MAX, QMT_SMALL_MAX + 1, QMT_LARGE_MAX, QMT_LARGE_MAX + 1, 3 * MiB};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
    for (int rep = 0; rep < 4; rep++)
      check_calloc(odd[i], 1);
  check_calloc(1000, 1000);
  check_calloc(3, 3 * MiB);
}

/* Many dirty blocks of mixed sizes freed at once, then callocs in random sizes. */
static void test_reuse_mixed(void) {
  enum { N = 3000 };
  static unsigned char *v[N];
  static size_t sz[N];
  qmt_rng r;
  qmt_rng_seed(&r, 77);
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) {
      sz[i] = (i % 100 == 0) ? 64 * KiB + qmt_below(&r, 512 * KiB) : qmt_random_size(&r, 16 * KiB);
      v[i] = T_MALLOC(sz[i]);
      CHECK(v[i] != NULL);
      if (v[i])
        memset(v[i], 0xFF, T_USABLE_SIZE(v[i]));
    }
    for (int i = 0; i < N; i++)
      T_FREE(v[i]);
    for (int i = 0; i < N; i++) {
      size_t c = 1 + qmt_below(&r, 8);
      size_t n = sz[(i * 7) % N] / c + 1;
      v[i] = T_CALLOC(c, n);
      CHECK(v[i] != NULL);
      if (v[i])
        CHECKF(all_zero(v[i], c * n), "round %d: calloc(%zu, %zu) not zeroed", round, c, n);
    }
    for (int i = 0; i < N; i++)
      T_FREE(v[i]);
  }
}

static void test_zero_counts(void) {
  void *a = T_CALLOC(qmt_opaque(0), 16);
  void *b = T_CALLOC(16, qmt_opaque(0));
  void *c = T_CALLOC(qmt_opaque(0), qmt_opaque(0));
  CHECK(a != NULL && b != NULL && c != NULL);
  CHECK(a != b && b != c && a != c);
  T_FREE(a);
  T_FREE(b);
  T_FREE(c);
}

static void test_overflow(void) {
  struct {
    size_t c, s;
  } cases[] = {
      {SIZE_MAX, 2},
      {2, SIZE_MAX},
      {SIZE_MAX / 2 + 1, 2},
      {(size_t)1 << 32, (size_t)1 << 32},
      {(size_t)1 << 33, (size_t)1 << 31},
      {SIZE_MAX / 16 + 1, 16},
      {3, SIZE_MAX / 3 + 1},
      {65537, 281470681808896ull}, /* product wraps to 65536 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    errno = 0;
    void *p = T_CALLOC(qmt_opaque(cases[i].c), qmt_opaque(cases[i].s));
    CHECKF(p == NULL, "calloc(%zu, %zu) succeeded", cases[i].c, cases[i].s);
    CHECKF(errno == ENOMEM, "calloc(%zu, %zu): errno %d", cases[i].c, cases[i].s, errno);
    T_FREE(p);
  }
  /* Not an overflow: the largest products that are still fine. */
  void *p = T_CALLOC(qmt_opaque(1) << 20, 16);
  CHECK(p != NULL);
  T_FREE(p);
}

int main(void) {
  qmt_start("api_calloc");
  test_fresh_rss();
  test_zero_counts();
  test_overflow();
  test_sizes();
  test_reuse_mixed();
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("api_calloc");
}
