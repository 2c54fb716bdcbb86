/* The free fast path knows a segment is the calling thread's from the segment map's byte, which is
 * the owner heap's own for a thread heap (DESIGN.md, section 6, "The owner's byte in the segment
 * map"). Heap structs get one of 251 bytes as they are carved; later ones get none, and first-class
 * heaps' segments are marked plainly. This test makes more heap structs than there are bytes (300
 * first-class heaps), so that a thread then gets a heap without a byte, and checks that every route
 * of free stays right: blocks of first-class heaps freed with free by their owner, a heap without a
 * byte freeing its own blocks and being sent blocks by a thread whose heap has one, and the heap
 * validator (which checks each segment's byte against its owner) after each step. Prefixed flavour
 * only: it calls the qm_heap_* API. */
#include "qmt.h"

#define USER_HEAPS 300
#define BLOCKS 2000

static unsigned char *blocks[BLOCKS];
static size_t sizes[BLOCKS];
static pthread_barrier_t step;

static size_t size_of(int i) { return i % 50 == 0 ? (size_t)64 * 1024 : (size_t)16 << (i % 10); }

static void fill(int i) {
  sizes[i] = size_of(i);
  blocks[i] = T_MALLOC(sizes[i]);
  CHECK(blocks[i] != NULL);
  if (blocks[i] != NULL)
    memset(blocks[i], i & 0xff, sizes[i]);
}

static void drop(int i) {
  if (blocks[i] == NULL)
    return;
  CHECKF(blocks[i][0] == (i & 0xff) && blocks[i][sizes[i] - 1] == (i & 0xff), "block %d was overwritten", i);
  T_FREE(blocks[i]);
  blocks[i] = NULL;
}

/* Runs in a thread whose heap is carved after the 300 first-class heaps: it has no map byte. */
static void *late_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++)
    fill(i);
  for (int i = 0; i < BLOCKS; i += 4) /* its own frees */
    drop(i);
  CHECK(qmt_heap_validate());
  pthread_barrier_wait(&step); /* the main thread frees the odd blocks meanwhile */
  pthread_barrier_wait(&step);
  for (int i = 0; i < BLOCKS; i += 4) /* new blocks, after the main thread's frees came back */
    fill(i);
  for (int i = 0; i < BLOCKS; i += 2)
    drop(i);
  CHECK(qmt_heap_validate());
  return NULL;
}

/* A thread that takes a heap struct back from the pool once the first-class heaps are gone. */
static void *reused_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++)
    fill(i);
  CHECK(qmt_heap_validate());
  for (int i = 0; i < BLOCKS; i++)
    drop(i);
  CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("map_owner");
  void *first = T_MALLOC(100); /* the main thread's heap: the first struct, with a byte */
  CHECK(first != NULL);
  static qm_heap_t *heaps[USER_HEAPS];
  for (int h = 0; h < USER_HEAPS; h++) {
    heaps[h] = qm_heap_new();
    CHECK(heaps[h] != NULL);
  }
  /* Blocks of first-class heaps freed by their owner with free: the map byte is not the thread's. */
  for (int h = 0; h < USER_HEAPS; h++) {
    if (heaps[h] == NULL)
      continue;
    void *a = qm_heap_malloc(heaps[h], 48), *b = qm_heap_malloc(heaps[h], 3000);
    CHECK(a != NULL && b != NULL);
    T_FREE(a);
    T_FREE(b);
    CHECK(qm_heap_check(heaps[h]));
  }
  CHECK(qmt_heap_validate());

  pthread_barrier_init(&step, NULL, 2);
  pthread_t late;
  CHECK(pthread_create(&late, NULL, late_thread, NULL) == 0);
  pthread_barrier_wait(&step);
  for (int i = 1; i < BLOCKS; i += 2) /* cross-thread frees into the heap without a byte */
    drop(i);
  CHECK(qmt_heap_validate());
  pthread_barrier_wait(&step);
  CHECK(pthread_join(late, NULL) == 0);
  pthread_barrier_destroy(&step);

  for (int h = 0; h < USER_HEAPS; h++)
    if (heaps[h] != NULL)
      qm_heap_destroy(heaps[h]);
  /* A thread now takes a struct back from the pool; the main thread keeps its byte throughout. */
  qmt_in_thread(reused_thread);
  T_FREE(first);
  CHECK(qmt_heap_validate());
  return check_result("map_owner");
}
