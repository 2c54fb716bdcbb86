/* Multi-threaded stress with content checks.
 *
 * usage: stress [threads [iterations-per-thread [seed]]]   (defaults: 4, 150000, 1)
 *
 * Each thread keeps a set of live blocks of random sizes from 1 byte to 4 MiB (mostly small), each
 * filled with a pattern derived from its address and size. At random it frees a block, reallocates
 * one, or hands one to the other threads through exchange slots (any thread may take it and free
 * it); every block's pattern is checked before it is freed or reallocated. Each thread validates
 * its heap at the end.
 */
#include <pthread.h>

#include "qmt.h"

#define MAX_SIZE (4 * MiB)
#define LIVE 400
#define XSLOTS 64

struct block {
  unsigned char *p;
  size_t n;
  size_t align; /* from aligned_alloc with this alignment, or 0 */
};

/* Exchange slots: a thread swaps one of its blocks for whatever the slot held. */
static struct xslot {
  pthread_mutex_t lock;
  struct block b;
} xslots[XSLOTS];

static size_t iterations = 150000;
static uint64_t base_seed = 1;
static atomic_size_t total_allocs, total_exchanged, total_reallocs;

static void check_block(const struct block *b, const char *when) {
  size_t bad = qmt_verify(b->p, b->n, qmt_seed(b->p, b->n));
  CHECKF(bad == SIZE_MAX, "%s: block %p of %zu bytes corrupted at offset %zu", when, (void *)b->p, b->n, bad);
}

static bool new_block(struct block *b, qmt_rng *r) {
  size_t n = qmt_random_size(r, MAX_SIZE);
  unsigned char *p;
  size_t align = 16;
  switch (qmt_below(r, 32)) {
  case 0:
    align = (size_t)1 << (4 + qmt_below(r, 9)); /* 16 .. 4096 */
    p = T_ALIGNED_ALLOC(align, n);
    break;
  case 1:
    p = T_CALLOC(1, n);
    if (p) {
      /* calloc'ed memory is zero; sample it. */
      CHECKF(p[0] == 0 && p[n / 2] == 0 && p[n - 1] == 0, "calloc(1, %zu) not zeroed", n);
    }
    break;
  default:
    p = T_MALLOC(n);
    break;
  }
  CHECKF(p != NULL, "allocation of %zu bytes failed", n);
  if (!p)
    return false;
  CHECKF(qmt_aligned(p, align), "block %p of %zu bytes not %zu-aligned", (void *)p, n, align);
  b->p = p;
  b->n = n;
  b->align = align > 16 ? align : 0;
  qmt_fill(p, n, qmt_seed(p, n));
  atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
  return true;
}

static void free_block(struct block *b) {
  check_block(b, "free");
  /* Some blocks go back through the sized interfaces, with the size they were requested with. */
  if (b->align && (b->n & 1))
    T_FREE_ALIGNED_SIZED(b->p, b->align, b->n);
  else if (!b->align && b->n > 64 && (b->n & 1))
    T_FREE_SIZED(b->p, b->n);
  else
    T_FREE(b->p);
  b->p = NULL;
  b->n = 0;
  b->align = 0;
}

static void realloc_block(struct block *b, qmt_rng *r) {
  check_block(b, "realloc");
  size_t m = qmt_below(r, 4) == 0 ? b->n + qmt_below(r, b->n + 1) : qmt_random_size(r, MAX_SIZE);
  if (m > MAX_SIZE)
    m = MAX_SIZE;
  uint64_t old_seed = qmt_seed(b->p, b->n);
  size_t keep = b->n < m ? b->n : m;
  unsigned char *q = T_REALLOC(b->p, m);
  CHECKF(q != NULL, "realloc to %zu failed", m);
  if (!q)
    return;
  size_t bad = qmt_verify(q, keep, old_seed);
  CHECKF(bad == SIZE_MAX, "realloc %zu -> %zu: kept contents differ at offset %zu", b->n, m, bad);
  b->p = q;
  b->n = m;
  b->align = 0; /* a reallocated block is an ordinary one */
  qmt_fill(q, m, qmt_seed(q, m));
  atomic_fetch_add_explicit(&total_reallocs, 1, memory_order_relaxed);
}

static void exchange(struct block *b, qmt_rng *r) {
  struct xslot *s = &xslots[qmt_below(r, XSLOTS)];
  pthread_mutex_lock(&s->lock);
  struct block got = s->b;
  s->b = *b;
  pthread_mutex_unlock(&s->lock);
  *b = got;
  atomic_fetch_add_explicit(&total_exchanged, 1, memory_order_relaxed);
}

static void *worker(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, base_seed * 1000003 + id);
  static _Thread_local struct block live[LIVE];
  for (size_t it = 0; it < iterations; it++) {
    struct block *b = &live[qmt_below(&r, LIVE)];
    if (b->p) {
      size_t op = qmt_below(&r, 16);
      if (op < 2) {
        realloc_block(b, &r);
        continue;
      }
      if (op < 5) {
        /* Hand it over; what comes back (someone else's block, or nothing) is checked and freed. */
        exchange(b, &r);
        if (b->p)
          free_block(b);
      } else {
        free_block(b);
      }
    }
    new_block(b, &r);
    if (it % 50000 == 49999 && qmt_strict)
      CHECKF(qmt_heap_validate(), "thread %llu: heap invalid at iteration %zu", (unsigned long long)id, it);
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i].p)
      free_block(&live[i]);
  if (qmt_strict)
    CHECKF(qmt_heap_validate(), "thread %llu: heap invalid at the end", (unsigned long long)id);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 4;
  if (argc > 2)
    iterations = strtoull(argv[2], NULL, 10);
  if (argc > 3)
    base_seed = strtoull(argv[3], NULL, 10);
  if (threads < 1 || threads > 1024) {
    fprintf(stderr, "usage: %s [threads [iterations [seed]]]\n", argv[0]);
    return 2;
  }
  qmt_start("stress");
  fprintf(stderr, "  %d threads, %zu iterations each, seed %llu\n", threads, iterations,
          (unsigned long long)base_seed);
  for (int i = 0; i < XSLOTS; i++)
    pthread_mutex_init(&xslots[i].lock, NULL);

  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  CHECK(tid != NULL);
  if (!tid)
    return check_result("stress");
  for (int i = 0; i < threads; i++)
    CHECK(pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  free(tid);

  /* What is left in the exchange slots came from threads that are gone: check and free it here. */
  for (int i = 0; i < XSLOTS; i++) {
    if (xslots[i].b.p)
      free_block(&xslots[i].b);
    pthread_mutex_destroy(&xslots[i].lock);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  fprintf(stderr, "  %zu allocations, %zu reallocations, %zu blocks exchanged\n", atomic_load(&total_allocs),
          atomic_load(&total_reallocs), atomic_load(&total_exchanged));
  return check_result("stress");
}
