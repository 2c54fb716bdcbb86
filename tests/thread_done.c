/* qm_thread_done: a thread hands its heap back in the middle of its life, keeps using blocks it
 * allocated before (they now lie in abandoned segments), allocates again from a fresh heap, and
 * exits. Nothing is lost: every block keeps its contents, every heap is handed back exactly once
 * (the heap count returns to the main thread's one), and the main thread's heap stays valid. */
#include <pthread.h>

#include "qmt.h"

enum { THREADS = 8, BLOCKS = 500 };

static void *worker(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, 77 + id);
  unsigned char *before[BLOCKS], *after[BLOCKS];
  size_t before_n[BLOCKS], after_n[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    before_n[i] = qmt_random_size(&r, 256 * KiB);
    before[i] = T_MALLOC(before_n[i]);
    CHECK(before[i] != NULL);
    if (before[i])
      qmt_fill(before[i], before_n[i], qmt_seed(before[i], before_n[i]));
  }
  CHECK(qmt_thread_done());
  /* The same thread again, now with a new heap; twice, to hand back a heap that has been used. */
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < BLOCKS; i++) {
      after_n[i] = qmt_random_size(&r, 64 * KiB);
      after[i] = T_MALLOC(after_n[i]);
      CHECK(after[i] != NULL);
      if (after[i])
        qmt_fill(after[i], after_n[i], qmt_seed(after[i], after_n[i]));
    }
    for (int i = 0; i < BLOCKS; i++) {
      if (after[i])
        CHECK(qmt_verify(after[i], after_n[i], qmt_seed(after[i], after_n[i])) == SIZE_MAX);
      T_FREE(after[i]);
    }
    if (round == 0)
      CHECK(qmt_thread_done());
  }
  /* The first heap's blocks: still intact, freed into segments no heap owns until adopted. */
  for (int i = 0; i < BLOCKS; i++) {
    if (before[i])
      CHECK(qmt_verify(before[i], before_n[i], qmt_seed(before[i], before_n[i])) == SIZE_MAX);
    T_FREE(before[i]);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return NULL;
}

int main(void) {
  qmt_start("thread_done");
  void *mine = T_MALLOC(100); /* the main thread has a heap throughout */
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  T_FREE(mine);
  qm_process_info_t info;
  if (qmt_strict && qmt_process_info(&info)) {
    fprintf(stderr, "  heaps in use after the joins: %zu\n", info.heaps_active);
    CHECKF(info.heaps_active == 1, "%zu heaps in use, expected only the main thread's", info.heaps_active);
    CHECK(qmt_heap_validate());
  }
  return check_result("thread_done");
}
