/* Requests that cannot be satisfied: NULL (or an error code) with ENOMEM, and the heap keeps
 * working afterwards. */
#include "qmt.h"

#define EXPECT_ENOMEM(call, what)                                                                            \
  do {                                                                                                       \
    errno = 0;                                                                                               \
    void *p_ = (call);                                                                                       \
    int e_ = errno;                                                                                          \
    CHECKF(p_ == NULL, "%s succeeded (%p)", what, p_);                                                       \
    CHECKF(e_ == ENOMEM, "%s: errno %d, not ENOMEM", what, e_);                                              \
    T_FREE(p_);                                                                                              \
  } while (0)

static const size_t too_big[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 4095,
    SIZE_MAX - 2 * 1024 * 1024,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX + 4097,
    SIZE_MAX / 2 + 12345,
};

static void test_malloc_family(void) {
  char what[128];
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    size_t n = qmt_opaque(too_big[i]);
    snprintf(what, sizeof what, "malloc(%zu)", n);
    EXPECT_ENOMEM(T_MALLOC(n), what);
    snprintf(what, sizeof what, "calloc(1, %zu)", n);
    EXPECT_ENOMEM(T_CALLOC(1, n), what);
    snprintf(what, sizeof what, "calloc(%zu, 1)", n);
    EXPECT_ENOMEM(T_CALLOC(n, 1), what);
    snprintf(what, sizeof what, "realloc(NULL, %zu)", n);
    EXPECT_ENOMEM(T_REALLOC(NULL, n), what);
    snprintf(what, sizeof what, "reallocarray(NULL, 1, %zu)", n);
    EXPECT_ENOMEM(T_REALLOCARRAY(NULL, 1, n), what);
    snprintf(what, sizeof what, "aligned_alloc(64, %zu)", n);
    EXPECT_ENOMEM(T_ALIGNED_ALLOC(64, n), what);
    snprintf(what, sizeof what, "aligned_alloc(4096, %zu)", n);
    EXPECT_ENOMEM(T_ALIGNED_ALLOC(4096, n), what);
    snprintf(what, sizeof what, "memalign(1 MiB, %zu)", n);
    EXPECT_ENOMEM(T_MEMALIGN(MiB, n), what);
    snprintf(what, sizeof what, "valloc(%zu)", n);
    EXPECT_ENOMEM(T_VALLOC(n), what);
    snprintf(what, sizeof what, "pvalloc(%zu)", n);
    EXPECT_ENOMEM(T_PVALLOC(n), what);
    void *q = NULL;
    int rc = T_POSIX_MEMALIGN(&q, 64, n);
    CHECKF(rc == ENOMEM, "posix_memalign(&p, 64, %zu) = %d", n, rc);
    if (rc == 0)
      T_FREE(q);
  }
}

static void test_overflow(void) {
  EXPECT_ENOMEM(T_CALLOC(qmt_opaque(SIZE_MAX / 2 + 1), 2), "calloc overflow");
  EXPECT_ENOMEM(T_CALLOC(qmt_opaque((size_t)1 << 40), (size_t)1 << 40), "calloc overflow 2^80");
  EXPECT_ENOMEM(T_REALLOCARRAY(NULL, qmt_opaque((size_t)1 << 40), (size_t)1 << 40), "reallocarray overflow");
  EXPECT_ENOMEM(T_REALLOCARRAY(NULL, qmt_opaque(3), SIZE_MAX / 2), "reallocarray overflow 3*max/2");
}

static void test_impossible_alignment(void) {
  size_t aligns[] = {(size_t)1 << 62, (size_t)1 << 63, (size_t)1 << 61, (size_t)1 << 50};
  char what[128];
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    size_t a = qmt_opaque(aligns[i]);
    snprintf(what, sizeof what, "aligned_alloc(2^%d, 16)", __builtin_ctzll(a));
    EXPECT_ENOMEM(T_ALIGNED_ALLOC(a, 16), what);
    snprintf(what, sizeof what, "memalign(2^%d, 16)", __builtin_ctzll(a));
    EXPECT_ENOMEM(T_MEMALIGN(a, 16), what);
    void *q = NULL;
    int rc = T_POSIX_MEMALIGN(&q, a, 16);
    CHECKF(rc == ENOMEM, "posix_memalign(&p, 2^%d, 16) = %d", __builtin_ctzll(a), rc);
    if (rc == 0)
      T_FREE(q);
  }
  /* Alignment and size that cannot both be met. */
  EXPECT_ENOMEM(T_ALIGNED_ALLOC(qmt_opaque((size_t)1 << 40), qmt_opaque(SIZE_MAX - 4096)),
                "aligned_alloc(2^40, max-4096)");
}

/* After all those failures, everything works. */
static void test_still_works(void) {
  size_t sizes[] = {0, 1, 100, 5000, 100 * KiB, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    unsigned char *p = T_MALLOC(sizes[i]);
    CHECK(p != NULL);
    if (p && sizes[i])
      memset(p, 1, sizes[i]);
    T_FREE(p);
    p = T_ALIGNED_ALLOC(4096, sizes[i] + 1);
    CHECK(p != NULL && qmt_aligned(p, 4096));
    T_FREE(p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

int main(void) {
  qmt_start("api_errors");
  test_malloc_family();
  test_overflow();
  test_impossible_alignment();
  test_still_works();
  return check_result("api_errors");
}
