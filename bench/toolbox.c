/* toolbox.c - the benchmark of qmalloc's specialised allocators against plain qm_malloc/qm_free
 * running the same allocation pattern:
 *
 *   pool          rounds of: allocate 1000 64-byte objects, free them in a scrambled order
 *   arena         rounds of: allocate 1000 objects of mixed small sizes, then release them all
 *                 (qm_arena_reset against a qm_free of each)
 *   stack         rounds of: push 64 blocks of mixed sizes, pop them in reverse order
 *   heap-destroy  rounds of: a new heap, 10000 objects of mixed sizes, qm_heap_destroy (against
 *                 10000 qm_malloc and qm_free in the thread's heap)
 *
 * Each side touches every block it gets (one word written), so neither is measured without its
 * memory traffic. Each measurement is the best of five runs. Prints one JSON line:
 *   {"workload":"toolbox","size":"full","results":[{"name":"pool","seconds":...,
 *    "baseline_seconds":...,"speedup":...}, ...]}
 * Usage: qmb-toolbox [--size=tiny|quick|full]   (tiny takes well under a second)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmalloc.h"

#define OBJECTS 10000 /* objects per round of heap-destroy: what one heap holds */
#define BATCH                                                                                                \
  1000           /* objects per round of pool and arena: a working set that stays in cache, so               \
                    that the allocators' own work is measured, not cache misses both pay */
#define DEPTH 64 /* blocks per round of the stack */

static size_t rounds;             /* set from --size */
static void *slots[OBJECTS];      /* the live blocks of a round */
static size_t order[OBJECTS];     /* a scrambled order of the slots, for frees */
static size_t batch_order[BATCH]; /* the same for a batch */
static size_t sizes[OBJECTS];     /* mixed sizes, 16 to 256 bytes, mostly small */
static volatile uint64_t sink;    /* keeps results observable */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void prepare(void) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < OBJECTS; i++) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t r = x * 0x2545F4914F6CDD1Dull;
    sizes[i] = 16 + (size_t)(r % 4 == 0 ? r % 241 : r % 49);
    order[i] = i;
  }
  /* Fisher-Yates with the same generator. */
  for (size_t i = OBJECTS - 1; i > 0; i--) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    size_t j = (size_t)((x * 0x2545F4914F6CDD1Dull) % (i + 1));
    size_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  size_t k = 0;
  for (size_t i = 0; i < OBJECTS; i++)
    if (order[i] < BATCH)
      batch_order[k++] = order[i];
}

static void touch(void *p) { *(volatile uint64_t *)p = (uint64_t)(uintptr_t)p; }

/* ---- pool ---- */

static void pool_special(void) {
  qm_pool_t *pool = qm_pool_new(64, 0);
  for (size_t r = 0; r < rounds * (OBJECTS / BATCH); r++) {
    for (size_t i = 0; i < BATCH; i++) {
      slots[i] = qm_pool_alloc(pool);
      touch(slots[i]);
    }
    for (size_t i = 0; i < BATCH; i++)
      qm_pool_free(pool, slots[batch_order[i]]);
  }
  qm_pool_destroy(pool);
}

static void pool_baseline(void) {
  for (size_t r = 0; r < rounds * (OBJECTS / BATCH); r++) {
    for (size_t i = 0; i < BATCH; i++) {
      slots[i] = qm_malloc(64);
      touch(slots[i]);
    }
    for (size_t i = 0; i < BATCH; i++)
      qm_free(slots[batch_order[i]]);
  }
}

/* ---- arena ---- */

static void arena_special(void) {
  qm_arena_t *arena = qm_arena_new(0);
  for (size_t r = 0; r < rounds * (OBJECTS / BATCH); r++) {
    for (size_t i = 0; i < BATCH; i++) {
      slots[i] = qm_arena_alloc(arena, sizes[i]);
      touch(slots[i]);
    }
    qm_arena_reset(arena);
  }
  qm_arena_destroy(arena);
}

static void arena_baseline(void) {
  for (size_t r = 0; r < rounds * (OBJECTS / BATCH); r++) {
    for (size_t i = 0; i < BATCH; i++) {
      slots[i] = qm_malloc(sizes[i]);
      touch(slots[i]);
    }
    for (size_t i = 0; i < BATCH; i++)
      qm_free(slots[i]);
  }
}

/* ---- stack ---- */

static void stack_special(void) {
  qm_stack_t *stack = qm_stack_new(64 * 1024);
  for (size_t r = 0; r < rounds * (OBJECTS / DEPTH); r++) {
    for (size_t i = 0; i < DEPTH; i++) {
      slots[i] = qm_stack_alloc(stack, sizes[(r + i) % OBJECTS]);
      touch(slots[i]);
    }
    for (size_t i = DEPTH; i-- > 0;)
      qm_stack_free(stack, slots[i]);
  }
  qm_stack_destroy(stack);
}

static void stack_baseline(void) {
  for (size_t r = 0; r < rounds * (OBJECTS / DEPTH); r++) {
    for (size_t i = 0; i < DEPTH; i++) {
      slots[i] = qm_malloc(sizes[(r + i) % OBJECTS]);
      touch(slots[i]);
    }
    for (size_t i = DEPTH; i-- > 0;)
      qm_free(slots[i]);
  }
}

/* ---- heap-destroy ---- */

static void heap_special(void) {
  for (size_t r = 0; r < rounds; r++) {
    qm_heap_t *heap = qm_heap_new();
    for (size_t i = 0; i < OBJECTS; i++) {
      slots[i] = qm_heap_malloc(heap, sizes[i]);
      touch(slots[i]);
    }
    qm_heap_destroy(heap);
  }
}

static void heap_baseline(void) {
  for (size_t r = 0; r < rounds; r++) {
    for (size_t i = 0; i < OBJECTS; i++) {
      slots[i] = qm_malloc(sizes[i]);
      touch(slots[i]);
    }
    for (size_t i = 0; i < OBJECTS; i++)
      qm_free(slots[order[i]]);
  }
}

/* The best of five runs, after one warm-up run: the least disturbed by other work on the machine. */
static double best_of_five(void (*run)(void)) {
  run();
  double best = 1e30;
  for (int i = 0; i < 5; i++) {
    double t0 = now();
    run();
    double t = now() - t0;
    if (t < best)
      best = t;
  }
  return best;
}

typedef struct workload_s {
  const char *name;
  void (*special)(void);
  void (*baseline)(void);
} workload_t;

static const workload_t workloads[] = {
    {"pool", pool_special, pool_baseline},
    {"arena", arena_special, arena_baseline},
    {"stack", stack_special, stack_baseline},
    {"heap-destroy", heap_special, heap_baseline},
};

int main(int argc, char **argv) {
  const char *size = "full";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--size=", 7) == 0)
      size = argv[i] + 7;
    else {
      fprintf(stderr, "usage: %s [--size=tiny|quick|full]\n", argv[0]);
      return 2;
    }
  }
  if (strcmp(size, "tiny") == 0)
    rounds = 5;
  else if (strcmp(size, "quick") == 0)
    rounds = 100;
  else if (strcmp(size, "full") == 0)
    rounds = 1000;
  else {
    fprintf(stderr, "%s: unknown size '%s' (tiny, quick or full)\n", argv[0], size);
    return 2;
  }
  prepare();
  printf("{\"workload\":\"toolbox\",\"size\":\"%s\",\"results\":[", size);
  for (size_t w = 0; w < sizeof workloads / sizeof workloads[0]; w++) {
    double special = best_of_five(workloads[w].special);
    double baseline = best_of_five(workloads[w].baseline);
    printf("%s{\"name\":\"%s\",\"seconds\":%.6f,\"baseline_seconds\":%.6f,\"speedup\":%.2f}", w ? "," : "",
           workloads[w].name, special, baseline, special > 0 ? baseline / special : 0.0);
  }
  printf("]}\n");
  sink = (uint64_t)(uintptr_t)slots[0];
  return 0;
}
