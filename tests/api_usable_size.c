/* malloc_usable_size / qm_usable_size: 0 for NULL, at least the request, the documented size
 * classes, monotonic in the request, and all of it writable without disturbing neighbours. */
#include "qmt.h"

static void test_null(void) { CHECK(T_USABLE_SIZE(NULL) == 0); }

static void test_classes(void) {
  size_t prev_u = 0;
  for (size_t n = 0; n <= 3 * MiB; n += (n < 4096 ? 1 : n < 256 * KiB ? 61 : 4093)) {
    unsigned char *p = T_MALLOC(n);
    CHECKF(p != NULL, "malloc(%zu)", n);
    if (!p)
      continue;
    size_t u = T_USABLE_SIZE(p);
    CHECKF(u >= n, "usable(%zu) = %zu", n, u);
    if (qmt_strict) {
      CHECKF(u >= prev_u, "usable(%zu) = %zu is less than for a smaller request (%zu)", n, u, prev_u);
      prev_u = u;
      if (n <= 128)
        CHECKF(u == qmt_round_up(n ? n : 1, 16), "usable(%zu) = %zu", n, u);
      else if (n <= QMT_SMALL_MAX)
        CHECKF(u < n + n / 8 && u % 16 == 0, "usable(%zu) = %zu", n, u);
      else if (n <= QMT_LARGE_MAX)
        CHECKF(u == qmt_round_up(n, QMT_LARGE_UNIT), "usable(%zu) = %zu", n, u);
      else
        CHECKF(u == qmt_round_up(n, QMT_HUGE_UNIT), "usable(%zu) = %zu", n, u);
    }
    T_FREE(p);
  }
  if (qmt_strict) {
    /* Eight classes per power of two between 128 bytes and 64 KiB. */
    for (size_t p2 = 128; p2 < QMT_SMALL_MAX; p2 *= 2) {
      size_t classes = 0, last = 0;
      for (size_t n = p2 + 1; n <= 2 * p2; n++) {
        void *p = T_MALLOC(n);
        CHECK(p != NULL);
        size_t u = T_USABLE_SIZE(p);
        if (u != last)
          classes++;
        last = u;
        T_FREE(p);
        if (p2 >= 4096)
          n += p2 / 256; /* sample the larger ranges */
      }
      CHECKF(classes == 8, "%zu size classes in (%zu, %zu]", classes, p2, 2 * p2);
    }
  }
}

/* Writing all of the usable size of a block leaves its neighbours intact. */
static void test_neighbours(void) {
  enum { N = 3000 };
  static unsigned char *v[N];
  static size_t us[N];
  qmt_rng r;
  qmt_rng_seed(&r, 3);
  for (int i = 0; i < N; i++) {
    size_t n = (i % 200 == 0) ? 64 * KiB + qmt_below(&r, 600 * KiB) : qmt_random_size(&r, 20 * KiB);
    v[i] = T_MALLOC(n);
    CHECK(v[i] != NULL);
    us[i] = v[i] ? T_USABLE_SIZE(v[i]) : 0;
    if (v[i])
      qmt_fill(v[i], us[i], qmt_seed(v[i], us[i]));
  }
  for (int i = 0; i < N; i++)
    if (v[i])
      CHECKF(qmt_verify(v[i], us[i], qmt_seed(v[i], us[i])) == SIZE_MAX,
             "block %d: usable bytes overlap another block", i);
  for (int i = 0; i < N; i++)
    T_FREE(v[i]);
}

/* Usable size of aligned, calloc'ed and reallocated blocks. */
static void test_other_sources(void) {
  for (size_t a = 16; a <= 2 * MiB; a *= 8) {
    void *p = T_ALIGNED_ALLOC(a, 100);
    CHECK(p != NULL && T_USABLE_SIZE(p) >= 100);
    T_FREE(p);
  }
  void *c = T_CALLOC(10, 1000);
  CHECK(c != NULL && T_USABLE_SIZE(c) >= 10000);
  T_FREE(c);
  unsigned char *p = T_MALLOC(10);
  size_t sizes[] = {200, 70 * KiB, 3 * MiB + 5, 1000, 16};
  for (size_t i = 0; p && i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *q = T_REALLOC(p, sizes[i]);
    CHECK(q != NULL);
    if (!q)
      break;
    p = q;
    size_t u = T_USABLE_SIZE(p);
    CHECKF(u >= sizes[i], "after realloc to %zu usable is %zu", sizes[i], u);
    memset(p, 0x6B, u);
  }
  T_FREE(p);
}

int main(void) {
  qmt_start("api_usable_size");
  test_null();
  test_classes();
  test_neighbours();
  test_other_sources();
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("api_usable_size");
}
