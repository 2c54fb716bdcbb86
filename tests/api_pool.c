/* Object pools: every object aligned and distinct with intact contents, LIFO reuse, argument
 * errors, a thread-safe pool shared by threads that free each other's objects, and destruction with
 * live objects leaking nothing. */
#include <pthread.h>

#include "qmt.h"

static bool check_rss = true; /* RSS bounds hold without sanitizers ("no-rss" turns them off) */

static void exercise(size_t object_size, size_t alignment, size_t count) {
  qm_pool_t *p = qm_pool_new(object_size, alignment);
  CHECKF(p != NULL, "qm_pool_new(%zu, %zu)", object_size, alignment);
  if (!p)
    return;
  size_t effective = alignment ? alignment : 16;
  size_t stride = qm_pool_object_size(p);
  CHECK(stride >= object_size && stride % effective == 0);
  void **objs = qm_malloc(count * sizeof *objs);
  size_t fill = object_size < 256 ? object_size : 256;
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < count; i++) {
      objs[i] = qm_pool_alloc(p);
      CHECKF(objs[i] != NULL && qmt_aligned(objs[i], effective), "object %zu of size %zu: %p", i, object_size,
             objs[i]);
      qmt_fill(objs[i], fill, qmt_seed(objs[i], fill));
    }
    for (size_t i = 0; i < count; i++)
      CHECKF(qmt_verify(objs[i], fill, qmt_seed(objs[i], fill)) == SIZE_MAX,
             "object %zu (size %zu) overwritten", i, object_size);
    /* The last object freed is the next one handed out. */
    qm_pool_free(p, objs[count / 2]);
    CHECK(qm_pool_alloc(p) == objs[count / 2]);
    for (size_t i = 0; i < count; i += (size_t)round + 1)
      qm_pool_free(p, objs[i]);
    if (round < 2) /* the others stay live, freed again next round or by the destroy */
      for (size_t i = 0; i < count; i++)
        if (i % ((size_t)round + 1) != 0)
          qm_pool_free(p, objs[i]);
  }
  qm_pool_free(p, NULL);
  qm_free(objs);
  qm_pool_destroy(p);
}

static void test_sizes(void) {
  size_t sizes[] = {0, 1, 7, 8, 16, 24, 100, 4096, 100000};
  size_t alignments[] = {0, 1, 8, 64, 4096};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++)
      exercise(sizes[s], alignments[a], sizes[s] > 10000 ? 50 : 3000);
  exercise(3 * MiB, 0, 6); /* chunks of huge blocks */
  qm_pool_destroy(NULL);
}

static void test_errors(void) {
  errno = 0;
  CHECK(qm_pool_new(16, 3) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(qm_pool_new_ex(16, 16, 0x80) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(qm_pool_new(qmt_opaque(SIZE_MAX / 2), 16) == NULL && errno == ENOMEM);
  qm_pool_t *p = qm_pool_new(10, 0);
  CHECK(qm_pool_object_size(p) == 16);
  qm_pool_destroy(p);
}

/* ---- Thread-safe pool: four threads allocate, hand objects to a neighbour, free what they get ---- */

#define THREADS 4
#define SLOTS 512
static qm_pool_t *shared_pool;
static void *_Atomic slots[THREADS][SLOTS];

static void *worker(void *arg) {
  size_t me = (size_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, me + 1);
  for (int i = 0; i < 100000; i++) {
    uint64_t *obj = qm_pool_alloc(shared_pool);
    CHECK(obj != NULL);
    if (!obj)
      return NULL;
    obj[0] = (uint64_t)(uintptr_t)obj ^ 0x1234;
    obj[5] = me;
    void *old = atomic_exchange(&slots[(me + 1) % THREADS][qmt_below(&r, SLOTS)], obj);
    if (old) {
      uint64_t *o = old;
      CHECK(o[0] == ((uint64_t)(uintptr_t)o ^ 0x1234) && o[5] == me);
      qm_pool_free(shared_pool, old);
    }
  }
  return NULL;
}

static void test_thread_safe(void) {
  shared_pool = qm_pool_new_ex(48, 16, QM_POOL_THREAD_SAFE);
  CHECK(shared_pool != NULL);
  pthread_t t[THREADS];
  for (size_t i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  for (size_t i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  for (size_t i = 0; i < THREADS; i++)
    for (size_t k = 0; k < SLOTS; k++)
      qm_pool_free(shared_pool, atomic_exchange(&slots[i][k], NULL));
  qm_pool_destroy(shared_pool);
}

static void test_destroy_leaks_nothing(void) {
  qm_process_info_t before, after;
  qm_trim(0);
  qm_process_info(&before);
  size_t rss_before = qmt_rss_kib();
  for (int round = 0; round < 20; round++) {
    qm_pool_t *small = qm_pool_new(32, 0);
    qm_pool_t *big = qm_pool_new(200 * KiB, 4096);
    for (int i = 0; i < 200000; i++)
      memset(qm_pool_alloc(small), 1, 32);
    for (int i = 0; i < 40; i++)
      memset(qm_pool_alloc(big), 2, 200 * KiB);
    qm_pool_destroy(small);
    qm_pool_destroy(big);
  }
  qm_trim(0);
  qm_process_info(&after);
  size_t rss_after = qmt_rss_kib();
  fprintf(stderr, "  pools x20: segments %zu -> %zu, huge %zu -> %zu, RSS %zu -> %zu KiB\n",
          before.segments_mapped, after.segments_mapped, before.huge_blocks, after.huge_blocks, rss_before,
          rss_after);
  CHECK(after.segments_mapped <= before.segments_mapped + 1);
  CHECK(after.huge_blocks == before.huge_blocks);
  if (check_rss) /* sanitizers' own bookkeeping grows with the work */
    CHECKF(rss_after < rss_before + 8 * 1024, "RSS grew from %zu to %zu KiB", rss_before, rss_after);
  CHECK(qm_heap_validate());
}

int main(int argc, char **argv) {
  qmt_start("api_pool");
  check_rss = !(argc > 1 && strcmp(argv[1], "no-rss") == 0);
  test_sizes();
  test_errors();
  test_thread_safe();
  test_destroy_leaks_nothing();
  return check_result("api_pool");
}
