/* Huge blocks from several threads at once: each thread allocates, writes, grows and shrinks by
 * realloc, and frees blocks of 2-40 MiB, so that the cache of freed mappings (huge.c) is taken
 * from, split and gathered while other threads put ranges into it and move others. Every block
 * holds its owner's pattern on each page it wrote until it is freed; the heap (and the cache's
 * invariants) validate at the end.
 *
 * usage: huge_threads [threads [rounds]]   (defaults: 4, 300)
 */
#include <pthread.h>

#include "qmt.h"

#define LIVE 4

struct slot {
  unsigned char *p;
  size_t n;
};

static size_t rounds = 300;
static atomic_size_t failures;

static unsigned char pattern(uintptr_t tag, size_t page) { return (unsigned char)(tag * 31 + page * 7 + 1); }

/* Writes the first byte of every 64th page (and of the last), enough to tell blocks apart. */
static void write_pattern(const struct slot *s, uintptr_t tag) {
  for (size_t off = 0; off < s->n; off += 64 * 4096)
    s->p[off] = pattern(tag, off / 4096);
  s->p[s->n - 1] = pattern(tag, 0xffff);
}

static bool pattern_holds(const struct slot *s, size_t n, uintptr_t tag) {
  for (size_t off = 0; off < n; off += 64 * 4096)
    if (s->p[off] != pattern(tag, off / 4096))
      return false;
  return n != s->n || s->p[s->n - 1] == pattern(tag, 0xffff);
}

static void *worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, 0x9e3779b9u * (id + 1));
  struct slot slots[LIVE] = {{0}};
  uintptr_t tags[LIVE] = {0};
  for (size_t i = 0; i < rounds; i++) {
    size_t k = qmt_below(&r, LIVE);
    struct slot *s = &slots[k];
    if (s->p != NULL && !pattern_holds(s, s->n, tags[k]))
      atomic_fetch_add(&failures, 1);
    size_t n = (2 * MiB + 4096) + qmt_below(&r, 38 * MiB);
    if (s->p != NULL && qmt_below(&r, 3) == 0) {
      /* Grown or shrunk: the pages it keeps keep their contents. */
      unsigned char *q = T_REALLOC(s->p, n);
      if (q == NULL) {
        atomic_fetch_add(&failures, 1);
        continue;
      }
      size_t kept = n < s->n ? n : s->n;
      s->p = q;
      struct slot old = {q, kept};
      if (!pattern_holds(&old, kept - kept % (64 * 4096), tags[k]))
        atomic_fetch_add(&failures, 1);
      s->n = n;
    } else {
      T_FREE(s->p);
      s->p = T_MALLOC(n);
      s->n = n;
      if (s->p == NULL) {
        atomic_fetch_add(&failures, 1);
        continue;
      }
    }
    tags[k] = id * 100000 + i;
    write_pattern(s, tags[k]);
  }
  for (size_t k = 0; k < LIVE; k++) {
    if (slots[k].p != NULL && !pattern_holds(&slots[k], slots[k].n, tags[k]))
      atomic_fetch_add(&failures, 1);
    T_FREE(slots[k].p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  qmt_start("huge_threads");
  size_t threads = argc > 1 ? (size_t)atoi(argv[1]) : 4;
  if (argc > 2)
    rounds = (size_t)atoi(argv[2]);
  if (threads < 1 || threads > 16)
    threads = 4;
  pthread_t tid[16];
  for (size_t t = 0; t < threads; t++)
    CHECK(pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)(t + 1)) == 0);
  for (size_t t = 0; t < threads; t++)
    pthread_join(tid[t], NULL);
  CHECKF(atomic_load(&failures) == 0, "%zu blocks lost their contents or could not be allocated",
         atomic_load(&failures));
  CHECK(qmt_heap_validate());
  return check_result("huge_threads");
}
