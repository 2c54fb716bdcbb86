/* realloc: realloc(NULL, n), realloc(p, 0), shrinking and growing in place, the headroom of a block
 * moved to grow, contents kept across small -> large -> huge -> large -> small, failed realloc
 * leaves the block intact. */
#include "qmt.h"

static void test_null_and_zero(void) {
  unsigned char *p = T_REALLOC(NULL, 100);
  CHECK(p != NULL);
  if (p) {
    CHECK(qmt_aligned(p, 16));
    CHECK(T_USABLE_SIZE(p) >= 100);
    memset(p, 1, 100);
  }
  T_FREE(p);
  p = T_REALLOC(NULL, qmt_opaque(0));
  CHECK(p != NULL);
  T_FREE(p);
  p = T_REALLOC(NULL, 5 * MiB);
  CHECK(p != NULL);
  if (p)
    p[5 * MiB - 1] = 1;
  T_FREE(p);

  /* realloc(p, 0) frees p and returns NULL, for every kind of block. */
  size_t sizes[] = {1, 100, 5000, 100 * KiB, 1 * MiB, 3 * MiB, 20 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int rep = 0; rep < (sizes[i] <= QMT_SMALL_MAX ? 50 : 10); rep++) {
      p = T_MALLOC(sizes[i]);
      CHECK(p != NULL);
      if (p) {
        p[0] = 7;
        p[sizes[i] - 1] = 7;
      }
      void *q = T_REALLOC(p, qmt_opaque(0));
      CHECKF(q == NULL, "realloc(malloc(%zu), 0) returned %p", sizes[i], q);
      T_FREE(q);
    }
  }
  /* The huge blocks were freed, not kept: their mapping count went back. */
  qm_process_info_t a, b;
  if (qmt_strict && qmt_process_info(&a)) {
    for (int rep = 0; rep < 10; rep++) {
      p = T_MALLOC(40 * MiB);
      CHECK(p != NULL);
      T_FREE(T_REALLOC(p, qmt_opaque(0)));
    }
    qmt_process_info(&b);
    CHECKF(b.huge_blocks <= a.huge_blocks, "huge blocks %zu -> %zu after realloc(p, 0)", a.huge_blocks,
           b.huge_blocks);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* realloc(p, n) with the new size at most the usable size, or shrinking by at most half of a small
 * block, keeps the address; any kind of large or huge shrink keeps it. */
static void test_in_place(void) {
  /* Small: grow up to the usable size, shrink to half of it. */
  size_t small[] = {1, 16, 17, 100, 128, 129, 500, 1000, 4000, 20000, QMT_SMALL_MAX};
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    size_t n = small[i];
    unsigned char *p = T_MALLOC(n);
    CHECK(p != NULL);
    if (!p)
      continue;
    size_t u = T_USABLE_SIZE(p);
    memset(p, 0x33, n);
    uintptr_t addr = (uintptr_t)p;
    p = T_REALLOC(p, u);
    CHECK(p != NULL);
    if (qmt_strict)
      CHECKF((uintptr_t)p == addr, "small %zu grown to its usable size %zu moved", n, u);
    if (!p)
      continue;
    memset(p, 0x44, u);
    addr = (uintptr_t)p;
    size_t half = (u + 1) / 2;
    p = T_REALLOC(p, half);
    CHECK(p != NULL);
    if (qmt_strict)
      CHECKF((uintptr_t)p == addr, "small usable %zu shrunk to %zu moved", u, half);
    if (p) {
      bool ok = true;
      for (size_t k = 0; k < half; k++)
        ok = ok && p[k] == 0x44;
      CHECK(ok);
    }
    /* The same size: no move. */
    addr = (uintptr_t)p;
    p = T_REALLOC(p, half);
    CHECK(p != NULL);
    if (qmt_strict)
      CHECK((uintptr_t)p == addr);
    T_FREE(p);
  }

  /* Large and huge: shrinking stays in place, growing within the usable size too. */
  struct {
    size_t from, to;
  } shrink[] = {
      {1 * MiB, 100 * KiB},   {2 * MiB, 70 * KiB},    {QMT_LARGE_MAX, QMT_LARGE_MAX - 8 * KiB},
      {300 * KiB, 299 * KiB}, {16 * MiB, 3 * MiB},    {4 * MiB, QMT_LARGE_MAX + 1},
      {64 * MiB, 63 * MiB},   {3 * MiB, 3 * MiB - 1}, {100 * KiB, 90 * KiB},
  };
  for (size_t i = 0; i < sizeof shrink / sizeof shrink[0]; i++) {
    unsigned char *p = T_MALLOC(shrink[i].from);
    CHECK(p != NULL);
    if (!p)
      continue;
    uint64_t seed = qmt_seed(NULL, i);
    qmt_fill(p, shrink[i].from, seed);
    uintptr_t addr = (uintptr_t)p;
    p = T_REALLOC(p, shrink[i].to);
    CHECK(p != NULL);
    if (!p)
      continue;
    if (qmt_strict)
      CHECKF((uintptr_t)p == addr, "shrinking %zu to %zu moved the block", shrink[i].from, shrink[i].to);
    CHECK(qmt_verify(p, shrink[i].to, seed) == SIZE_MAX);
    size_t u = T_USABLE_SIZE(p);
    CHECK(u >= shrink[i].to);
    /* Grow back within the usable size. */
    addr = (uintptr_t)p;
    p = T_REALLOC(p, u);
    CHECK(p != NULL);
    if (qmt_strict)
      CHECKF((uintptr_t)p == addr, "growing %zu to its usable size %zu moved the block", shrink[i].to, u);
    if (p)
      CHECK(qmt_verify(p, shrink[i].to, seed) == SIZE_MAX);
    T_FREE(p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* Two 200 KiB blocks, *a right before *b, in up to 8 tries; false (with a note naming what was not
 * exercised, or a failed check) when none lay so. */
static bool adjacent_large_pair(unsigned char **a, unsigned char **b, const char *exercise) {
  for (int attempt = 0; attempt < 8; attempt++) {
    *a = T_MALLOC(200 * KiB);
    *b = T_MALLOC(200 * KiB);
    CHECK(*a != NULL && *b != NULL);
    if (*a != NULL && *b != NULL && (uintptr_t)*a + T_USABLE_SIZE(*a) == (uintptr_t)*b)
      return true;
    bool failed = *a == NULL || *b == NULL;
    T_FREE(*a);
    T_FREE(*b);
    if (failed)
      return false;
  }
  if (qmt_strict)
    fprintf(stderr, "note: no two consecutive large blocks were adjacent; %s not exercised\n", exercise);
  return false;
}

/* A large block grows in place into a free neighbour. */
static void test_grow_into_neighbour(void) {
  unsigned char *a, *b;
  if (adjacent_large_pair(&a, &b, "grow-into-neighbour")) {
    size_t ua = T_USABLE_SIZE(a), ub = T_USABLE_SIZE(b);
    uint64_t seed = qmt_seed(a, 1);
    qmt_fill(a, ua, seed);
    T_FREE(b);
    uintptr_t addr = (uintptr_t)a;
    a = T_REALLOC(a, ua + ub);
    CHECK(a != NULL);
    if (!a)
      return;
    if (qmt_strict)
      CHECKF((uintptr_t)a == addr, "large block did not grow into its free neighbour");
    CHECK(qmt_verify(a, ua, seed) == SIZE_MAX);
    memset(a + ua, 0x77, ub);
    T_FREE(a);
  }

  /* A huge block grows (mremap may move it, the contents stay). */
  size_t n = 3 * MiB;
  unsigned char *h = T_MALLOC(n);
  CHECK(h != NULL);
  if (!h)
    return;
  uint64_t seed = qmt_seed(NULL, 99);
  qmt_fill(h, n, seed);
  for (size_t m = 4 * MiB; m <= 128 * MiB; m *= 2) {
    unsigned char *q = T_REALLOC(h, m);
    CHECKF(q != NULL, "realloc huge to %zu", m);
    if (!q)
      break;
    h = q;
    CHECKF(qmt_verify(h, n, seed) == SIZE_MAX, "huge contents lost growing to %zu", m);
    h[m - 1] = 1;
    CHECK(T_USABLE_SIZE(h) >= m);
  }
  T_FREE(h);
}

/* Grows a buffer of `size` bytes by realloc from `first` to `last` bytes, `step` at a time, checking
 * that its contents survive each step; returns how often it moved after the first step (the block
 * is freed at the end). */
static int grow_in_steps(size_t size, size_t first, size_t last, size_t step, uint64_t salt) {
  unsigned char *p = T_MALLOC(size);
  CHECK(p != NULL);
  if (!p)
    return 0;
  uint64_t seed = qmt_seed(p, salt);
  size_t n = size;
  qmt_fill(p, n, seed);
  int moves = 0;
  for (size_t m = first; m <= last; m += step) {
    unsigned char *q = T_REALLOC(p, m);
    CHECKF(q != NULL, "realloc to %zu", m);
    if (!q)
      break;
    if (q != p && m > first)
      moves++;
    p = q;
    CHECKF(qmt_verify(p, n, seed) == SIZE_MAX, "contents lost growing to %zu", m);
    n = m;
    qmt_fill(p, n, seed);
  }
  T_FREE(p);
  return moves;
}

/* A buffer that grows by realloc, one small step at a time, leaves the class pages once it passes
 * 16 KiB: from then on it is a span of its own that grows into the free slices after it, instead
 * of moving at every one of the 16 class boundaries between 16 and 64 KiB. */
static void test_growth_stays_in_place(void) {
  int moves = grow_in_steps(100, 17 * KiB, 256 * KiB, KiB, 7);
  if (qmt_strict)
    CHECKF(moves <= 1, "a buffer growing from 17 to 256 KiB by 1 KiB steps moved %d times", moves);
}

/* Past 4 KiB, a buffer that grows by small steps (at most half its size at a time) becomes a span
 * too, at its first move; a buffer that doubles stays in the classes, whose rounding is tighter. */
static void test_step_growth_into_span(void) {
  int moves = grow_in_steps(4200, 4200 + 256, 16 * KiB, 256, 11);
  if (qmt_strict)
    CHECKF(moves <= 2, "a buffer growing from 4200 B to 16 KiB by 256-byte steps moved %d times", moves);

  unsigned char *p = T_MALLOC(3000);
  CHECK(p != NULL);
  unsigned char *q = p ? T_REALLOC(p, 6000) : NULL;
  CHECK(q != NULL);
  if (qmt_strict && q)
    CHECKF(T_USABLE_SIZE(q) < 8 * KiB, "a block doubled to 6000 B got %zu usable bytes, a span's rounding",
           T_USABLE_SIZE(q));
  T_FREE(q ? q : p);
}

/* A large block that must move to grow by a small step (its neighbour is taken) gets a quarter of
 * its old size more than it asked for, and the steps after that stay in place. */
static void test_headroom_after_a_move(void) {
  unsigned char *a, *b;
  if (!adjacent_large_pair(&a, &b, "headroom"))
    return;
  size_t ua = T_USABLE_SIZE(a);
  uint64_t seed = qmt_seed(a, 21);
  qmt_fill(a, ua, seed);
  unsigned char *q = T_REALLOC(a, ua + 64);
  CHECK(q != NULL);
  if (!q) {
    T_FREE(a);
    T_FREE(b);
    return;
  }
  CHECK(qmt_verify(q, ua, seed) == SIZE_MAX);
  size_t uq = T_USABLE_SIZE(q);
  if (qmt_strict)
    CHECKF(uq >= ua + ua / 4, "a %zu-byte block moved to grow by 64 bytes got %zu usable bytes, no headroom",
           ua, uq);
  int moves = 0;
  for (size_t m = ua + 4 * KiB; m <= uq; m += 4 * KiB) {
    unsigned char *r = T_REALLOC(q, m);
    CHECKF(r != NULL, "realloc to %zu", m);
    if (!r)
      break;
    moves += r != q;
    q = r;
  }
  if (qmt_strict)
    CHECKF(moves == 0, "growing within the headroom moved the block %d times", moves);
  CHECK(qmt_verify(q, ua, seed) == SIZE_MAX);
  T_FREE(q);
  T_FREE(b);
}

/* A large block that realloc shrinks by less than a quarter stays as it is (the headroom above is
 * kept by the same rule); shrunk by more, it gives its tail back. */
static void test_large_shrink_keeps_a_quarter(void) {
  unsigned char *p = T_MALLOC(400 * KiB);
  CHECK(p != NULL);
  if (!p)
    return;
  size_t u = T_USABLE_SIZE(p);
  uint64_t seed = qmt_seed(p, 22);
  qmt_fill(p, u, seed);
  uintptr_t addr = (uintptr_t)p;
  size_t kept = u - u / 4;
  p = T_REALLOC(p, kept);
  CHECK(p != NULL);
  if (!p)
    return;
  if (qmt_strict) {
    CHECK((uintptr_t)p == addr);
    CHECKF(T_USABLE_SIZE(p) == u, "shrinking %zu bytes to %zu left %zu usable, not the whole block", u, kept,
           T_USABLE_SIZE(p));
  }
  p = T_REALLOC(p, u / 2);
  CHECK(p != NULL);
  if (!p)
    return;
  if (qmt_strict) {
    CHECK((uintptr_t)p == addr);
    CHECKF(T_USABLE_SIZE(p) < kept, "shrinking %zu bytes to %zu kept %zu usable", u, u / 2, T_USABLE_SIZE(p));
  }
  CHECK(qmt_verify(p, u / 2, seed) == SIZE_MAX);
  T_FREE(p);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* Contents survive a chain through every kind of block and back. */
static void test_chain(void) {
  size_t chain[] = {24,      100,       1000,     60 * KiB,    200 * KiB, 1536 * KiB, 5 * MiB, 33 * MiB,
                    3 * MiB, 300 * KiB, 70 * KiB, 64 * KiB,    5000,      200,        50,      17,
                    1,       4000,      2 * MiB,  2 * MiB + 1, 16 * MiB,  100 * KiB,  10};
  size_t n = 0;
  unsigned char *p = NULL;
  uint64_t seed = qmt_seed(NULL, 4242);
  for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
    size_t m = chain[i];
    unsigned char *q = T_REALLOC(p, m);
    CHECKF(q != NULL, "realloc to %zu", m);
    if (!q)
      break;
    p = q;
    CHECK(qmt_aligned(p, 16));
    CHECK(T_USABLE_SIZE(p) >= m);
    size_t keep = n < m ? n : m;
    size_t bad = qmt_verify(p, keep, seed);
    CHECKF(bad == SIZE_MAX, "realloc %zu -> %zu: byte %zu of the kept %zu changed", n, m, bad, keep);
    if (m > keep)
      qmt_fill_range(p, keep & ~(size_t)7, m, seed);
    n = m;
  }
  T_FREE(p);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* Random walk of many blocks through random sizes. */
static void test_random_walk(void) {
  enum { N = 64, STEPS = 20000 };
  static unsigned char *v[N];
  static size_t sz[N];
  static uint64_t sd[N];
  qmt_rng r;
  qmt_rng_seed(&r, 5);
  for (int step = 0; step < STEPS; step++) {
    size_t i = qmt_below(&r, N);
    size_t m = (qmt_below(&r, 200) == 0) ? 2 * MiB + qmt_below(&r, 3 * MiB) : qmt_random_size(&r, 512 * KiB);
    if (!v[i])
      sd[i] = qmt_rand(&r);
    unsigned char *q = T_REALLOC(v[i], m);
    CHECKF(q != NULL, "realloc to %zu", m);
    if (!q)
      continue;
    size_t keep = sz[i] < m ? sz[i] : m;
    CHECKF(qmt_verify(q, keep, sd[i]) == SIZE_MAX, "random walk: %zu -> %zu lost contents", sz[i], m);
    if (m > keep)
      qmt_fill_range(q, keep & ~(size_t)7, m, sd[i]);
    v[i] = q;
    sz[i] = m;
  }
  for (int i = 0; i < N; i++)
    T_FREE(v[i]);
}

/* A failed realloc returns NULL with ENOMEM and leaves the block as it was. */
static void test_failure(void) {
  size_t sizes[] = {10, 1000, 100 * KiB, 1 * MiB, 4 * MiB};
  size_t bad[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, SIZE_MAX / 2 + 12345};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = T_MALLOC(sizes[i]);
    CHECK(p != NULL);
    if (!p)
      continue;
    uint64_t seed = qmt_seed(p, sizes[i]);
    qmt_fill(p, sizes[i], seed);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      errno = 0;
      void *q = T_REALLOC(p, qmt_opaque(bad[k]));
      CHECKF(q == NULL, "realloc(%zu-byte block, %zu) succeeded", sizes[i], bad[k]);
      CHECKF(errno == ENOMEM, "realloc(%zu-byte block, %zu): errno %d", sizes[i], bad[k], errno);
      if (q) {
        p = q;
        break;
      }
      CHECK(qmt_verify(p, sizes[i], seed) == SIZE_MAX);
    }
    /* The block is still usable: it can grow and be freed. */
    unsigned char *q = T_REALLOC(p, sizes[i] * 2);
    CHECK(q != NULL);
    if (q) {
      CHECK(qmt_verify(q, sizes[i], seed) == SIZE_MAX);
      p = q;
    }
    T_FREE(p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

/* realloc of blocks from the aligned allocators keeps the contents. */
static void test_aligned_blocks(void) {
  for (size_t a = 32; a <= 1 * MiB; a *= 4) {
    unsigned char *p = T_ALIGNED_ALLOC(a, 3 * a / 2);
    CHECK(p != NULL && qmt_aligned(p, a));
    if (!p)
      continue;
    uint64_t seed = qmt_seed(NULL, a);
    qmt_fill(p, 3 * a / 2, seed);
    unsigned char *q = T_REALLOC(p, 5 * a);
    CHECK(q != NULL);
    if (q) {
      CHECK(qmt_verify(q, 3 * a / 2, seed) == SIZE_MAX);
      p = q;
    }
    q = T_REALLOC(p, a / 2);
    CHECK(q != NULL);
    if (q) {
      CHECK(qmt_verify(q, a / 2, seed) == SIZE_MAX);
      p = q;
    }
    T_FREE(p);
  }
}

int main(void) {
  qmt_start("api_realloc");
  test_null_and_zero();
  test_in_place();
  test_grow_into_neighbour();
  test_growth_stays_in_place();
  test_step_growth_into_span();
  test_headroom_after_a_move();
  test_large_shrink_keeps_a_quarter();
  test_chain();
  test_random_walk();
  test_failure();
  test_aligned_blocks();
  return check_result("api_realloc");
}
