/* First-class heaps (qm_heap_new ... qm_heap_destroy): allocation of every size kind with content
 * checks, realloc into the heap, errors, frees from the owner and from other threads, orphaned heaps,
 * and destruction with live blocks leaking nothing (process counters and RSS). */
#include <pthread.h>

#include "qmt.h"

static bool check_rss = true; /* RSS bounds hold without sanitizers ("no-rss" turns them off) */

#define NBLOCKS 4000

static size_t kind_sizes[] = {0,    1,        16,           24,        100,     1000,        1024,   1025,
                              5000, 64 * KiB, 64 * KiB + 1, 300 * KiB, 2 * MiB, 2 * MiB + 1, 5 * MiB};
#define NKINDS (sizeof kind_sizes / sizeof kind_sizes[0])

static void process_counts(qm_process_info_t *info) {
  qm_trim(0);
  qmt_process_info(info);
}

/* Every allocation function, every size kind; contents survive other allocations and a check. */
static void test_allocate_all_kinds(void) {
  qm_heap_t *h = qm_heap_new();
  CHECK(h != NULL);
  void *blocks[NKINDS * 4];
  size_t sizes[NKINDS * 4];
  size_t n = 0;
  for (size_t i = 0; i < NKINDS; i++) {
    size_t size = kind_sizes[i];
    blocks[n] = qm_heap_malloc(h, size);
    sizes[n++] = size;
    unsigned char *z = qm_heap_calloc(h, 1, size);
    CHECKF(z != NULL, "qm_heap_calloc(%zu)", size);
    for (size_t k = 0; z && k < size; k += 997)
      CHECKF(z[k] == 0, "calloc'ed block of %zu bytes is not zero at %zu", size, k);
    if (z && size)
      CHECK(z[size - 1] == 0);
    blocks[n] = z;
    sizes[n++] = size;
    size_t alignments[] = {64, 8 * KiB, 256 * KiB};
    for (size_t a = 0; a < 2; a++) {
      size_t alignment = alignments[(i + a) % 3];
      void *p = qm_heap_aligned_alloc(h, alignment, size);
      CHECKF(p != NULL && qmt_aligned(p, alignment), "qm_heap_aligned_alloc(%zu, %zu) = %p", alignment, size,
             p);
      blocks[n] = p;
      sizes[n++] = size;
    }
  }
  for (size_t i = 0; i < n; i++) {
    CHECK(blocks[i] != NULL && qmt_aligned(blocks[i], 16));
    CHECK(qm_usable_size(blocks[i]) >= sizes[i]);
    qmt_fill(blocks[i], sizes[i], qmt_seed(blocks[i], sizes[i]));
  }
  CHECK(qm_heap_check(h));
  for (size_t i = 0; i < n; i++)
    CHECKF(qmt_verify(blocks[i], sizes[i], qmt_seed(blocks[i], sizes[i])) == SIZE_MAX, "block %zu (%zu B)", i,
           sizes[i]);
  /* Half is freed the ordinary way; the rest goes with the heap. */
  for (size_t i = 0; i < n; i += 2)
    qm_free(blocks[i]);
  CHECK(qm_heap_check(h));
  for (size_t i = 1; i < n; i += 2)
    CHECK(qmt_verify(blocks[i], sizes[i], qmt_seed(blocks[i], sizes[i])) == SIZE_MAX);
  qm_heap_destroy(h);
  CHECK(qm_heap_validate());
}

/* The owner's frees land on the page, even those the free fast path does not take (fresh pages,
 * large blocks): the next allocation of the size gets the same block back. */
static void test_owner_frees_locally(void) {
  qm_heap_t *h = qm_heap_new();
  size_t sizes[] = {48, 3000, 100 * KiB};
  for (size_t i = 0; i < 3; i++) {
    void *p = qm_heap_malloc(h, sizes[i]);
    CHECK(p != NULL);
    qm_free(p);
    void *q = qm_heap_malloc(h, sizes[i]);
    CHECKF(q == p, "size %zu: freed %p, got %p back", sizes[i], p, q);
    qm_free(q);
  }
  CHECK(qm_heap_check(h));
  qm_heap_destroy(h);
}

static void test_realloc(void) {
  qm_heap_t *h = qm_heap_new();
  size_t steps[] = {1, 40, 200, 5000, 70 * KiB, 1 * MiB, 3 * MiB, 9 * MiB, 2 * MiB, 100 * KiB, 100, 8};
  unsigned char *p = NULL;
  size_t size = 0;
  uint64_t seed = qmt_seed(NULL, 77);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    unsigned char *q = qm_heap_realloc(h, p, steps[i]);
    CHECKF(q != NULL, "qm_heap_realloc to %zu", steps[i]);
    if (!q)
      break;
    size_t keep = size < steps[i] ? size : steps[i];
    CHECKF(qmt_verify(q, keep, seed) == SIZE_MAX, "realloc %zu -> %zu lost contents", size, steps[i]);
    p = q;
    size = steps[i];
    qmt_fill(p, size, seed);
    CHECK(qm_heap_check(h));
  }
  /* A block of the thread heap moves into h. */
  unsigned char *t = qm_malloc(500);
  qmt_fill(t, 500, seed);
  unsigned char *u = qm_heap_realloc(h, t, 5000);
  CHECK(u != NULL && qmt_verify(u, 500, seed) == SIZE_MAX);
  CHECK(qm_heap_realloc(h, u, 0) == NULL);
  qm_heap_destroy(h); /* p goes with it */
}

static void test_errors(void) {
  qm_heap_t *h = qm_heap_new();
  errno = 0;
  CHECK(qm_heap_malloc(h, qmt_opaque(SIZE_MAX)) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(qm_heap_malloc(h, qmt_opaque((size_t)1 << 62)) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(qm_heap_calloc(h, qmt_opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(qm_heap_aligned_alloc(h, 48, 100) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(qm_heap_aligned_alloc(h, 64, qmt_opaque(SIZE_MAX - 10)) == NULL && errno == ENOMEM);
  unsigned char *p = qm_heap_malloc(h, 100);
  memset(p, 7, 100);
  errno = 0;
  CHECK(qm_heap_realloc(h, p, qmt_opaque(SIZE_MAX / 2)) == NULL && errno == ENOMEM);
  CHECK(p[0] == 7 && p[99] == 7);
  qm_heap_destroy(NULL);
  CHECK(qm_heap_check(h));
  qm_heap_destroy(h);
}

/* Destroying heaps full of live blocks, again and again, leaves nothing behind. */
static void test_destroy_leaks_nothing(void) {
  qm_process_info_t before, after;
  process_counts(&before);
  size_t rss_before = qmt_rss_kib();
  qmt_rng r;
  qmt_rng_seed(&r, 5);
  for (int round = 0; round < 30; round++) {
    qm_heap_t *h = qm_heap_new();
    CHECK(h != NULL);
    size_t total = 0;
    while (total < 24 * MiB) {
      size_t size = qmt_random_size(&r, 512 * KiB);
      unsigned char *p = qm_heap_malloc(h, size);
      CHECK(p != NULL);
      if (!p)
        break;
      memset(p, 0x5A, size);
      total += size;
    }
    for (int i = 0; i < 3; i++) {
      unsigned char *big = qm_heap_malloc(h, 3 * MiB + (size_t)i * 4096);
      CHECK(big != NULL);
      if (big)
        memset(big, 1, 3 * MiB);
    }
    if (round == 0)
      CHECK(qm_heap_check(h));
    qm_heap_destroy(h);
  }
  process_counts(&after);
  size_t rss_after = qmt_rss_kib();
  fprintf(stderr,
          "  destroy x30: segments %zu -> %zu, huge %zu -> %zu, heaps %zu -> %zu, RSS %zu -> %zu KiB\n",
          before.segments_mapped, after.segments_mapped, before.huge_blocks, after.huge_blocks,
          before.heaps_active, after.heaps_active, rss_before, rss_after);
  CHECK(after.segments_mapped <= before.segments_mapped);
  CHECK(after.huge_blocks == before.huge_blocks);
  CHECK(after.huge_bytes == before.huge_bytes);
  CHECK(after.heaps_active == before.heaps_active);
  if (check_rss) /* sanitizers' own bookkeeping grows with the work */
    CHECKF(rss_after < rss_before + 8 * 1024, "RSS grew from %zu to %zu KiB", rss_before, rss_after);
}

/* ---- Other threads free the heap's blocks (into its inbox), the owner goes on allocating. ---- */

typedef struct {
  void **blocks;
  size_t count;
} batch_t;

static void *free_batch(void *arg) {
  batch_t *b = arg;
  for (size_t i = 0; i < b->count; i++) {
    size_t size = qm_usable_size(b->blocks[i]);
    CHECK(qmt_verify(b->blocks[i], size < 64 ? size : 64, qmt_seed(b->blocks[i], 0)) == SIZE_MAX);
    qm_free(b->blocks[i]);
  }
  return NULL;
}

static void test_remote_frees(void) {
  qm_heap_t *h = qm_heap_new();
  void **blocks = qm_malloc(NBLOCKS * sizeof *blocks);
  qmt_rng r;
  qmt_rng_seed(&r, 11);
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < NBLOCKS; i++) {
      size_t size = (i % 500 == 0) ? 3 * MiB : qmt_random_size(&r, 200 * KiB);
      blocks[i] = qm_heap_malloc(h, size);
      CHECK(blocks[i] != NULL);
      size_t fill = qm_usable_size(blocks[i]);
      qmt_fill(blocks[i], fill < 64 ? fill : 64, qmt_seed(blocks[i], 0));
    }
    /* Two threads free halves, while the owner allocates and frees more. */
    batch_t halves[2] = {{blocks, NBLOCKS / 2}, {blocks + NBLOCKS / 2, NBLOCKS / 2}};
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
      CHECK(pthread_create(&t[k], NULL, free_batch, &halves[k]) == 0);
    for (int i = 0; i < 2000; i++) {
      void *p = qm_heap_malloc(h, qmt_random_size(&r, 100 * KiB));
      void *q = (i % 200 == 0) ? qm_heap_malloc(h, 2 * MiB + 1) : NULL;
      qm_free(p);
      qm_free(q);
    }
    for (int k = 0; k < 2; k++)
      pthread_join(t[k], NULL);
    CHECK(qm_heap_check(h));
  }
  qm_free(blocks);
  qm_heap_destroy(h);
}

/* ---- A heap whose thread exits is orphaned: its blocks live on; another thread destroys it. ---- */

typedef struct {
  qm_heap_t *heap;
  void *blocks[64];
} orphan_t;

static void *make_orphan(void *arg) {
  orphan_t *o = arg;
  o->heap = qm_heap_new();
  for (size_t i = 0; i < 64; i++) {
    size_t size = i % 16 == 0 ? 3 * MiB : 100 + i * 1000;
    o->blocks[i] = qm_heap_malloc(o->heap, size);
    CHECK(o->blocks[i] != NULL);
    qmt_fill(o->blocks[i], 64, qmt_seed(o->blocks[i], 1));
  }
  return NULL;
}

static void test_orphan(void) {
  qm_process_info_t before, after;
  process_counts(&before);
  for (int round = 0; round < 5; round++) {
    orphan_t o;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, make_orphan, &o) == 0);
    pthread_join(t, NULL);
    for (size_t i = 0; i < 64; i++)
      CHECK(qmt_verify(o.blocks[i], 64, qmt_seed(o.blocks[i], 1)) == SIZE_MAX);
    for (size_t i = 0; i < 64; i += 3)
      qm_free(o.blocks[i]); /* into the orphan's inbox (huge ones unmapped) */
    CHECK(qm_heap_check(o.heap));
    qm_heap_destroy(o.heap);
  }
  /* The creator itself, after qm_thread_done, holds an orphan too. */
  qm_heap_t *h = qm_heap_new();
  void *p = qm_heap_malloc(h, 1000);
  qm_thread_done();
  qm_free(p);
  CHECK(qm_heap_check(h));
  qm_heap_destroy(h);
  process_counts(&after);
  CHECK(after.huge_blocks == before.huge_blocks);
  CHECK(after.heaps_active <= before.heaps_active + 1); /* this thread's heap may be new */
  CHECK(after.segments_mapped <= before.segments_mapped + 1);
}

/* ---- Many threads, each with heaps of its own, handing blocks to each other. ---- */

#define WORKERS 4
static void *_Atomic mailbox[WORKERS][256];

static void *worker(void *arg) {
  size_t me = (size_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, 100 + me);
  for (int round = 0; round < 40; round++) {
    qm_heap_t *h = qm_heap_new();
    void *mine[300];
    size_t filled[300];
    for (size_t i = 0; i < 300; i++) {
      size_t size = qmt_random_size(&r, 40 * KiB);
      mine[i] = qm_heap_malloc(h, size);
      filled[i] = size < 32 ? size : 32;
      qmt_fill(mine[i], filled[i], qmt_seed(mine[i], filled[i]));
      if (i % 3 == 2) { /* some frees by the owner on the way */
        qm_free(mine[i - 1]);
        mine[i - 1] = NULL;
      }
    }
    /* Pass some blocks to a neighbour, to be freed there; take what is in our own box. */
    for (size_t i = 0; i < 256; i++) {
      void *old = atomic_exchange(&mailbox[(me + 1) % WORKERS][i], NULL);
      if (old)
        qm_free(old);
    }
    for (size_t i = 0; i < 256; i++) {
      void *got = atomic_exchange(&mailbox[me][i], NULL);
      if (got)
        qm_free(got);
    }
    for (size_t i = 0; i < 300; i++)
      if (mine[i])
        CHECK(qmt_verify(mine[i], filled[i], qmt_seed(mine[i], filled[i])) == SIZE_MAX);
    if (round % 8 == 0)
      CHECK(qm_heap_check(h));
    qm_heap_destroy(h);
    /* Blocks of the thread heap go to the mailboxes: destroyed heaps must not take them along. */
    for (size_t i = 0; i < 64; i++) {
      void *p = qm_malloc(qmt_random_size(&r, 1000));
      void *old = atomic_exchange(&mailbox[(me + 1) % WORKERS][qmt_below(&r, 256)], p);
      qm_free(old);
    }
  }
  return NULL;
}

static void test_threads(void) {
  pthread_t t[WORKERS];
  for (size_t i = 0; i < WORKERS; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  for (size_t i = 0; i < WORKERS; i++)
    pthread_join(t[i], NULL);
  for (size_t i = 0; i < WORKERS; i++)
    for (size_t k = 0; k < 256; k++)
      qm_free(atomic_exchange(&mailbox[i][k], NULL));
  CHECK(qm_heap_validate());
}

int main(int argc, char **argv) {
  qmt_start("api_heaps");
  check_rss = !(argc > 1 && strcmp(argv[1], "no-rss") == 0);
  test_allocate_all_kinds();
  test_owner_frees_locally();
  test_realloc();
  test_errors();
  test_destroy_leaks_nothing();
  test_remote_frees();
  test_orphan();
  test_threads();
  return check_result("api_heaps");
}
