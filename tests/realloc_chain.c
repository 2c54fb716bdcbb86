/* Realloc chains with content checks, across threads.
 *
 * usage: realloc_chain [threads [steps-per-thread]]   (defaults: 4, 25000)
 *
 * Every thread owns chains: blocks that are reallocated again and again to sizes in every kind
 * (small, large, huge), growing and shrinking. A chain's contents follow a pattern of the chain's
 * own seed, so what realloc keeps can be checked wherever the block moves. Chains are passed
 * between threads, so blocks are reallocated by threads other than the one that allocated them.
 */
#include <pthread.h>

#include "qmt.h"

#define CHAINS 32
#define XSLOTS 16

struct chain {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

static struct {
  pthread_mutex_t lock;
  struct chain c;
} xslots[XSLOTS];

static size_t steps = 25000;
static atomic_size_t bytes_filled;
static atomic_size_t moved, in_place, passed;

static size_t pick_size(qmt_rng *r, size_t cur) {
  size_t k = qmt_below(r, 1000);
  if (k < 2)
    return 2 * MiB + 1 + qmt_below(r, 4 * MiB); /* huge */
  if (k < 12)
    return 64 * KiB + 1 + qmt_below(r, 1 * MiB); /* large */
  if (k < 13)
    return QMT_LARGE_MAX + qmt_below(r, 3) - 1; /* the large/huge boundary */
  if (k < 14)
    return QMT_SMALL_MAX + qmt_below(r, 3) - 1; /* the small/large boundary */
  if (k < 100)
    return cur + 1 + qmt_below(r, 64); /* a little more */
  if (k < 200)
    return cur > 1 ? cur - qmt_below(r, cur / 2) : 1; /* a little less */
  if (k < 230)
    return cur < 512 * KiB ? cur * 2 + 1 : cur / 3; /* double, or back down */
  if (k < 260)
    return qmt_below(r, 4) == 0 ? 0 : 1; /* realloc(p, 0) frees; realloc(NULL, 0) allocates */
  return qmt_random_size(r, 64 * KiB);
}

static void step(struct chain *c, qmt_rng *r) {
  size_t m = pick_size(r, c->n);
  if (m > 8 * MiB)
    m = 8 * MiB;
  size_t keep = c->n < m ? c->n : m;
  uintptr_t old = (uintptr_t)c->p;
  errno = 0;
  unsigned char *q = T_REALLOC(c->p, m);
  if (m == 0 && c->p) {
    CHECKF(q == NULL, "realloc(p, 0) returned %p", (void *)q);
    if (q)
      T_FREE(q);
    c->p = NULL;
    c->n = 0;
    return;
  }
  CHECKF(q != NULL, "realloc(%zu -> %zu) failed", c->n, m);
  if (!q)
    return;
  CHECKF(qmt_aligned(q, 16), "realloc result %p misaligned", (void *)q);
  if (c->p) {
    size_t bad = qmt_verify_sparse(q, keep, c->seed);
    CHECKF(bad == SIZE_MAX, "realloc %zu -> %zu (%s): byte %zu of %zu kept bytes differs", c->n, m,
           (uintptr_t)q == old ? "in place" : "moved", bad, keep);
    atomic_fetch_add_explicit((uintptr_t)q == old ? &in_place : &moved, 1, memory_order_relaxed);
  } else {
    c->seed = qmt_rand(r);
    keep = 0;
  }
  CHECKF(T_USABLE_SIZE(q) >= m, "usable size %zu < %zu", T_USABLE_SIZE(q), m);
  if (m > keep) {
    qmt_fill_range(q, keep & ~(size_t)7, m, c->seed);
    atomic_fetch_add_explicit(&bytes_filled, m - keep, memory_order_relaxed);
  }
  c->p = q;
  c->n = m;
}

static void *worker(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, 7000 + id);
  struct chain mine[CHAINS];
  memset(mine, 0, sizeof mine);
  for (size_t s = 0; s < steps; s++) {
    struct chain *c = &mine[qmt_below(&r, CHAINS)];
    if (qmt_below(&r, 16) == 0) {
      /* Swap the chain with an exchange slot: the block goes on in another thread. */
      size_t k = qmt_below(&r, XSLOTS);
      pthread_mutex_lock(&xslots[k].lock);
      struct chain t = xslots[k].c;
      xslots[k].c = *c;
      pthread_mutex_unlock(&xslots[k].lock);
      *c = t;
      atomic_fetch_add_explicit(&passed, 1, memory_order_relaxed);
    }
    step(c, &r);
  }
  for (int i = 0; i < CHAINS; i++) {
    if (mine[i].p) {
      CHECK(qmt_verify(mine[i].p, mine[i].n, mine[i].seed) == SIZE_MAX);
      T_FREE(mine[i].p);
    }
  }
  if (qmt_strict)
    CHECKF(qmt_heap_validate(), "thread %llu: heap invalid", (unsigned long long)id);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 4;
  if (argc > 2)
    steps = strtoull(argv[2], NULL, 10);
  if (threads < 1 || threads > 256) {
    fprintf(stderr, "usage: %s [threads [steps]]\n", argv[0]);
    return 2;
  }
  qmt_start("realloc_chain");
  for (int i = 0; i < XSLOTS; i++)
    pthread_mutex_init(&xslots[i].lock, NULL);
  pthread_t tid[256];
  for (int i = 0; i < threads; i++)
    CHECK(pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  for (int i = 0; i < XSLOTS; i++) {
    if (xslots[i].c.p) {
      CHECK(qmt_verify(xslots[i].c.p, xslots[i].c.n, xslots[i].c.seed) == SIZE_MAX);
      T_FREE(xslots[i].c.p);
    }
    pthread_mutex_destroy(&xslots[i].lock);
  }
  fprintf(stderr, "  %zu reallocs in place, %zu moved, %zu chains passed between threads, %zu MiB filled\n",
          atomic_load(&in_place), atomic_load(&moved), atomic_load(&passed),
          atomic_load(&bytes_filled) >> 20);
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("realloc_chain");
}
