/* Exhaustion: run under a limit on the address space (ulimit -v), allocation in every size class
 * eventually fails with NULL and ENOMEM, without crashing; after everything is freed the same
 * allocations succeed again. */
#include <sys/mman.h>
#include <sys/resource.h>

#include "qmt.h"

enum kind { K_MALLOC, K_CALLOC, K_ALIGNED, K_MIXED };
static const char *const kind_name[] = {"malloc", "calloc", "aligned_alloc", "mixed"};

/* Pointer storage of its own, mapped before the heap is exhausted. */
#define MAX_BLOCKS ((size_t)4 << 20)
static void **blocks;
static size_t *block_sizes;

static void *alloc_one(enum kind k, size_t n) {
  switch (k) {
  case K_MALLOC:
    return T_MALLOC(n);
  case K_CALLOC:
    return T_CALLOC(1, n);
  case K_ALIGNED:
    return T_ALIGNED_ALLOC(64 * KiB, n);
  default:
    return T_MALLOC(n);
  }
}

/* Allocates until failure; returns the number of blocks, leaves them in blocks[]. */
static size_t fill_until_failure(enum kind k, size_t size, qmt_rng *r, size_t *total, int *err) {
  size_t count = 0;
  *total = 0;
  *err = 0;
  while (count < MAX_BLOCKS) {
    size_t n = (k == K_MIXED) ? qmt_random_size(r, 4 * MiB) : size;
    errno = 0;
    unsigned char *p = alloc_one(k, n);
    if (!p) {
      *err = errno;
      if (k == K_MIXED && n > 256)
        continue; /* smaller requests may still fit; go on until even those fail */
      break;
    }
    /* Touch a little of each block: the first and the last byte. */
    p[n - 1] = (unsigned char)(count >> 8);
    p[0] = (unsigned char)count;
    blocks[count] = p;
    block_sizes[count] = n;
    *total += n;
    count++;
  }
  return count;
}

static void free_all(size_t count) {
  for (size_t i = 0; i < count; i++) {
    unsigned char *p = blocks[i];
    size_t n = block_sizes[i];
    if (p[0] != (unsigned char)i || (n > 1 && p[n - 1] != (unsigned char)(i >> 8)))
      CHECKF(0, "block %zu (%zu bytes) lost its contents", i, n);
    T_FREE(p);
  }
}

static void phase(enum kind k, size_t size) {
  qmt_rng r;
  qmt_rng_seed(&r, size);
  size_t total = 0;
  int err = 0;
  size_t count = fill_until_failure(k, size, &r, &total, &err);
  fprintf(stderr, "  %s %zu: %zu blocks, %zu MiB before failure (errno %d)\n", kind_name[k], size, count,
          total >> 20, err);
  CHECKF(count < MAX_BLOCKS, "%s(%zu) never failed", kind_name[k], size);
  CHECKF(err == ENOMEM, "%s(%zu) failed with errno %d, not ENOMEM", kind_name[k], size, err);
  CHECKF(total >= 200 * MiB, "%s(%zu): only %zu MiB before failure", kind_name[k], size, total >> 20);
  free_all(count);
  if (qmt_strict)
    CHECK(qmt_heap_validate());

  /* After freeing, the memory is available again: most of it can be allocated once more. */
  size_t total2 = 0;
  size_t count2 = fill_until_failure(k, size, &r, &total2, &err);
  CHECKF(total2 >= total / 2, "%s(%zu): %zu MiB the first time, only %zu MiB after freeing", kind_name[k],
         size, total >> 20, total2 >> 20);
  CHECKF(err == ENOMEM, "%s(%zu) failed with errno %d the second time", kind_name[k], size, err);
  free_all(count2);
}

/* A block grown by realloc until that fails keeps its contents, and remains usable. */
static void realloc_phase(void) {
  size_t n = 1 * MiB;
  unsigned char *p = T_MALLOC(n);
  CHECK(p != NULL);
  if (!p)
    return;
  uint64_t seed = qmt_seed(NULL, 1);
  qmt_fill(p, 4096, seed);
  int err = 0;
  for (;;) {
    size_t m = n + n / 2;
    errno = 0;
    unsigned char *q = T_REALLOC(p, m);
    if (!q) {
      err = errno;
      break;
    }
    p = q;
    n = m;
  }
  fprintf(stderr, "  realloc: grew to %zu MiB before failure (errno %d)\n", n >> 20, err);
  CHECK(err == ENOMEM);
  CHECK(n >= 100 * MiB);
  CHECK(qmt_verify(p, 4096, seed) == SIZE_MAX);
  p[n - 1] = 1;
  /* With the big block held, small requests fail or succeed, but never crash; release it. */
  void *small = T_MALLOC(100);
  T_FREE(small);
  T_FREE(p);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
}

int main(void) {
  qmt_start("exhaustion");
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    CHECKF(0, "run this test with a limit on the address space (ulimit -v)");
    return check_result("exhaustion");
  }
  fprintf(stderr, "  address space limit: %llu MiB\n", (unsigned long long)(rl.rlim_cur >> 20));
  blocks =
      mmap(NULL, MAX_BLOCKS * sizeof *blocks, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  block_sizes = mmap(NULL, MAX_BLOCKS * sizeof *block_sizes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(blocks != MAP_FAILED && block_sizes != MAP_FAILED);
  if (blocks == MAP_FAILED || block_sizes == MAP_FAILED)
    return check_result("exhaustion");

  phase(K_MALLOC, 8 * MiB);    /* huge */
  phase(K_MALLOC, 256 * KiB);  /* large */
  phase(K_MALLOC, 24 * KiB);   /* small */
  phase(K_MALLOC, 4000);       /* small, many blocks */
  phase(K_CALLOC, 3 * MiB);    /* huge, zeroed */
  phase(K_CALLOC, 100 * KiB);  /* large, zeroed */
  phase(K_ALIGNED, 200 * KiB); /* aligned */
  phase(K_MIXED, 0);           /* random sizes down to the smallest */
  realloc_phase();

  /* After all of it, ordinary allocation works. */
  for (size_t n = 1; n <= 16 * MiB; n *= 3) {
    unsigned char *p = T_MALLOC(n);
    CHECKF(p != NULL, "malloc(%zu) after the exhaustion phases", n);
    if (p)
      memset(p, 0x42, n);
    T_FREE(p);
  }
  return check_result("exhaustion");
}
