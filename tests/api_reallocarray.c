/* reallocarray: behaves as realloc(p, count * size), and fails with ENOMEM, leaving the block
 * intact, when the product overflows. */
#include "qmt.h"

static void test_basic(void) {
  /* NULL: a fresh array. */
  uint32_t *a = T_REALLOCARRAY(NULL, 100, sizeof(uint32_t));
  CHECK(a != NULL);
  if (!a)
    return;
  CHECK(qmt_aligned(a, 16));
  CHECK(T_USABLE_SIZE(a) >= 100 * sizeof(uint32_t));
  for (uint32_t i = 0; i < 100; i++)
    a[i] = i * 2654435761u;
  /* Grow through every kind of block, keeping the contents. */
  size_t counts[] = {1000, 30000, 200000, 1000000, 3000000, 500000, 20000, 100, 7};
  size_t have = 100;
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    size_t c = counts[k];
    uint32_t *b = T_REALLOCARRAY(a, c, sizeof(uint32_t));
    CHECKF(b != NULL, "reallocarray(p, %zu, 4)", c);
    if (!b)
      break;
    a = b;
    CHECK(T_USABLE_SIZE(a) >= c * sizeof(uint32_t));
    size_t keep = have < c ? have : c;
    bool ok = true;
    for (size_t i = 0; i < keep; i++)
      ok = ok && a[i] == (uint32_t)i * 2654435761u;
    CHECKF(ok, "reallocarray %zu -> %zu elements lost contents", have, c);
    for (size_t i = keep; i < c; i++)
      a[i] = (uint32_t)i * 2654435761u;
    have = c;
  }
  T_FREE(a);

  /* Zero count or size: as realloc(p, 0) (frees, returns NULL); from NULL: as malloc(0). */
  void *p = T_MALLOC(64);
  CHECK(p != NULL);
  CHECK(T_REALLOCARRAY(p, qmt_opaque(0), 8) == NULL);
  p = T_REALLOCARRAY(NULL, qmt_opaque(0), 8);
  CHECK(p != NULL);
  T_FREE(p);
}

static void test_overflow(void) {
  struct {
    size_t c, s;
  } cases[] = {
      {SIZE_MAX, 2},
      {2, SIZE_MAX},
      {(size_t)1 << 32, (size_t)1 << 32},
      {SIZE_MAX / 8 + 1, 8},
      {65537, 281470681808896ull}, /* wraps to 65536 */
  };
  size_t sizes[] = {0, 40, 4000, 200 * KiB, 3 * MiB};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    unsigned char *p = sizes[s] ? T_MALLOC(sizes[s]) : NULL;
    CHECK(sizes[s] == 0 || p != NULL);
    uint64_t seed = qmt_seed(p, sizes[s]);
    if (p)
      qmt_fill(p, sizes[s], seed);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      errno = 0;
      void *q = T_REALLOCARRAY(p, qmt_opaque(cases[i].c), qmt_opaque(cases[i].s));
      CHECKF(q == NULL, "reallocarray(%zu-byte block, %zu, %zu) succeeded", sizes[s], cases[i].c, cases[i].s);
      CHECKF(errno == ENOMEM, "reallocarray(%zu-byte block, %zu, %zu): errno %d", sizes[s], cases[i].c,
             cases[i].s, errno);
      if (q) {
        p = q;
        break;
      }
      if (p)
        CHECK(qmt_verify(p, sizes[s], seed) == SIZE_MAX);
    }
    T_FREE(p);
  }
}

int main(void) {
  qmt_start("api_reallocarray");
  test_basic();
  test_overflow();
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("api_reallocarray");
}
