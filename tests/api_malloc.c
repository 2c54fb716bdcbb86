/* malloc and free: malloc(0), free(NULL), alignment, usable size, writability and disjointness of
 * blocks of every kind (small, large, huge). */
#include "qmt.h"

/* The usable size qmalloc documents for a request of n bytes, or 0 where it only gives bounds. */
static size_t documented_usable(size_t n) {
  if (n <= 128)
    return qmt_round_up(n ? n : 1, 16);
  if (n <= QMT_SMALL_MAX)
    return 0;
  if (n <= QMT_LARGE_MAX)
    return qmt_round_up(n, QMT_LARGE_UNIT);
  return qmt_round_up(n, QMT_HUGE_UNIT);
}

static void check_block(size_t n) {
  unsigned char *p = T_MALLOC(n);
  CHECKF(p != NULL, "malloc(%zu)", n);
  if (!p)
    return;
  CHECKF(qmt_aligned(p, 16), "malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
  size_t u = T_USABLE_SIZE(p);
  CHECKF(u >= n, "usable size %zu < %zu", u, n);
  if (qmt_strict) {
    size_t want = documented_usable(n);
    if (want)
      CHECKF(u == want, "usable size of malloc(%zu) is %zu, documented %zu", n, u, want);
    else
      CHECKF(u < n + n / 8 && u % 16 == 0,
             "usable size of malloc(%zu) is %zu (want < n * 1.125, multiple of 16)", n, u);
    CHECKF(qmt_is_heap_pointer(p) != 0, "qm_is_heap_pointer(%p) is false", (void *)p);
  }
  /* Every usable byte is writable, and keeps what was written. */
  uint64_t seed = qmt_seed(p, u);
  qmt_fill(p, u, seed);
  size_t bad = qmt_verify(p, u, seed);
  CHECKF(bad == SIZE_MAX, "malloc(%zu): byte %zu of %zu changed", n, bad, u);
  T_FREE(p);
}

static void test_zero(void) {
  void *a = T_MALLOC(qmt_opaque(0));
  void *b = T_MALLOC(qmt_opaque(0));
  CHECK(a != NULL);
  CHECK(b != NULL);
  CHECK(a != b);
  CHECK(qmt_aligned(a, 16) && qmt_aligned(b, 16));
  if (a) {
    size_t u = T_USABLE_SIZE(a);
    if (qmt_strict)
      CHECKF(u == 16, "malloc(0) gives %zu usable bytes", u);
    memset(a, 0x5A, u);
  }
  T_FREE(a);
  T_FREE(b);
  /* Many zero-sized blocks are all distinct. */
  enum { N = 1000 };
  static void *v[N];
  for (int i = 0; i < N; i++) {
    v[i] = T_MALLOC(qmt_opaque(0));
    CHECK(v[i] != NULL);
  }
  for (int i = 1; i < N; i++)
    CHECK(v[i] != v[i - 1]);
  for (int i = 0; i < N; i++)
    T_FREE(v[i]);
}

static void test_free_null(void) {
  for (int i = 0; i < 100; i++)
    T_FREE(qmt_launder(NULL));
  CHECK(qmt_heap_validate());
}

static void test_sizes(void) {
  for (size_t n = 0; n <= 2048; n++)
    check_block(n);
  /* Around every power of two and every size-class boundary up to 8 MiB. */
  for (size_t p2 = 2048; p2 <= 8 * MiB; p2 *= 2) {
    for (size_t k = 0; k < 8; k++) {
      size_t b = p2 + k * (p2 / 8);
      check_block(b - 1);
      check_block(b);
      check_block(b + 1);
    }
  }
  size_t odd[] = {QMT_SMALL_MAX - 16,
                  QMT_SMALL_MAX,
                  QMT_SMALL_MAX + 1,
                  QMT_SMALL_MAX + 16,
                  QMT_LARGE_MAX - 1,
                  QMT_LARGE_MAX,
                  QMT_LARGE_MAX + 1,
                  QMT_LARGE_MAX + 4096,
                  3 * MiB + 17,
                  5 * MiB - 1,
                  8 * MiB};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
    check_block(odd[i]);
}

struct blk {
  unsigned char *p;
  size_t n;
  size_t u;
};

static int cmp_addr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct blk *)a)->p, y = (uintptr_t)((const struct blk *)b)->p;
  return x < y ? -1 : x > y;
}

/* Many live blocks of mixed sizes: all distinct, not overlapping, and their contents survive the
 * allocation of all the others. Freed in several orders. */
static void test_many_live(int order) {
  enum { N = 6000 };
  static struct blk v[N];
  qmt_rng r;
  qmt_rng_seed(&r, 1234 + (uint64_t)order);
  for (int i = 0; i < N; i++) {
    size_t n = (i % 500 == 0)  ? 3 * MiB + qmt_below(&r, MiB)
               : (i % 50 == 0) ? 70 * KiB + qmt_below(&r, 300 * KiB)
                               : qmt_random_size(&r, 8 * KiB);
    v[i].n = n;
    v[i].p = T_MALLOC(n);
    CHECKF(v[i].p != NULL, "malloc(%zu)", n);
    if (!v[i].p) {
      v[i].n = v[i].u = 0;
      continue;
    }
    v[i].u = T_USABLE_SIZE(v[i].p);
    qmt_fill(v[i].p, n, qmt_seed(v[i].p, n));
  }
  for (int i = 0; i < N; i++)
    if (v[i].p)
      CHECKF(qmt_verify(v[i].p, v[i].n, qmt_seed(v[i].p, v[i].n)) == SIZE_MAX,
             "block %d (%zu bytes) corrupted", i, v[i].n);
  static struct blk s[N];
  memcpy(s, v, sizeof s);
  qsort(s, N, sizeof s[0], cmp_addr);
  for (int i = 1; i < N; i++)
    if (s[i - 1].p && s[i].p)
      CHECKF((uintptr_t)s[i - 1].p + s[i - 1].u <= (uintptr_t)s[i].p, "blocks %p (+%zu) and %p overlap",
             (void *)s[i - 1].p, s[i - 1].u, (void *)s[i].p);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  if (order == 0) {
    for (int i = 0; i < N; i++)
      T_FREE(v[i].p);
  } else if (order == 1) {
    for (int i = N - 1; i >= 0; i--)
      T_FREE(v[i].p);
  } else {
    for (int i = N - 1; i > 0; i--) {
      size_t j = qmt_below(&r, (size_t)i + 1);
      struct blk t = v[i];
      v[i] = v[j];
      v[j] = t;
    }
    /* Free half, allocate again in the holes, then free everything. */
    for (int i = 0; i < N / 2; i++) {
      T_FREE(v[i].p);
      v[i].n = qmt_random_size(&r, 4 * KiB);
      v[i].p = T_MALLOC(v[i].n);
      CHECK(v[i].p != NULL);
      if (v[i].p)
        qmt_fill(v[i].p, v[i].n, qmt_seed(v[i].p, v[i].n));
    }
    for (int i = 0; i < N; i++) {
      if (v[i].p)
        CHECK(qmt_verify(v[i].p, v[i].n, qmt_seed(v[i].p, v[i].n)) == SIZE_MAX);
      T_FREE(v[i].p);
    }
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* A freed block's memory is used again: a malloc/free loop does not grow the process. */
static void test_reuse(void) {
  size_t sizes[] = {8, 100, 1000, 20000, 200 * KiB, 3 * MiB};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t before = qmt_rss_kib();
    int rounds = sizes[s] <= QMT_SMALL_MAX ? 20000 : 2000;
    for (int i = 0; i < rounds; i++) {
      unsigned char *p = T_MALLOC(sizes[s]);
      CHECK(p != NULL);
      if (!p)
        break;
      p[0] = 1;
      p[sizes[s] - 1] = 2;
      T_FREE(p);
    }
    size_t after = qmt_rss_kib();
    CHECKF(after < before + 32 * 1024, "malloc/free of %zu bytes %d times: RSS %zu -> %zu KiB", sizes[s],
           rounds, before, after);
  }
}

/* A new thread's first call meets a heap not made yet, whichever path its size takes: the inline
 * pop (up to 1 KiB), the pop of the generic path (up to 64 KiB), large and huge blocks; and calloc,
 * whose blocks must be zero. One fresh thread per size and call. */
static const size_t first_call_sizes[] = {16, 1000, 1025, 2000, 8192, 60000, 65537, 300000, 3 * MiB};
static size_t first_call_index;
static bool first_call_zero;

static void *first_call(void *arg) {
  (void)arg;
  size_t n = first_call_sizes[first_call_index];
  unsigned char *p = first_call_zero ? T_CALLOC(1, n) : T_MALLOC(n);
  CHECKF(p != NULL, "first %s(%zu) of a new thread", first_call_zero ? "calloc" : "malloc", n);
  if (p == NULL)
    return NULL;
  CHECKF(qmt_aligned(p, 16), "first malloc(%zu) of a new thread = %p", n, (void *)p);
  if (first_call_zero) {
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++)
      nonzero += p[i] != 0;
    CHECKF(nonzero == 0, "first calloc(1, %zu) of a new thread has %zu bytes not zero", n, nonzero);
  }
  memset(p, 0xA5, n);
  /* The block came from the thread's own heap, not from the heap threads share before they allocate
   * (the validator checks that one holds nothing). */
  CHECKF(qmt_heap_validate(), "heap after the first %s(%zu) of a new thread",
         first_call_zero ? "calloc" : "malloc", n);
  T_FREE(p);
  /* The thread's heap is usable afterwards for the same size. */
  p = T_MALLOC(n);
  CHECK(p != NULL);
  T_FREE(p);
  return NULL;
}

static void test_first_call_in_thread(void) {
  for (int zero = 0; zero < 2; zero++) {
    for (size_t i = 0; i < sizeof first_call_sizes / sizeof first_call_sizes[0]; i++) {
      first_call_index = i;
      first_call_zero = zero;
      qmt_in_thread(first_call);
    }
  }
}

int main(void) {
  qmt_start("api_malloc");
  test_first_call_in_thread();
  test_zero();
  test_free_null();
  test_sizes();
  test_many_live(0);
  test_many_live(1);
  test_many_live(2);
  test_reuse();
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("api_malloc");
}
