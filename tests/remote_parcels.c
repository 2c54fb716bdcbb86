/* Blocks freed by another thread come back to their owner whole. The main thread allocates blocks
 * of many sizes: 16-byte ones (which travel to the owner alone), larger small blocks (which carry
 * the addresses of others as parcels) and large blocks. A second thread frees all of them in a
 * scrambled order and, as it goes, validates its heap (which checks its unsent batches) and checks
 * that the first bytes of every block still live are untouched: a parcel is written only inside
 * its own block. The main thread then takes its inbox back (trim): every block is counted free
 * again, and the same sizes allocated once more hold their contents. Short rounds then end the
 * freeing thread with a parcel partly filled.
 *
 * usage: remote_parcels [blocks [rounds]]   (defaults: 3000, 3)
 */
#include <pthread.h>

#include "stats_api.h"

#define CHECKED_PREFIX 256 /* the bytes of each live block checked after the frees */

static const size_t sizes[] = {16, 16, 16, 40, 1000, 16, 100000, 300, 16, 8000, 20000, 32, 48, 16, 4000};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

static size_t block_count = 3000;
static void **blocks;

static size_t size_of(size_t i) { return sizes[i % SIZE_COUNT]; }
static size_t prefix_of(size_t i) { return size_of(i) < CHECKED_PREFIX ? size_of(i) : CHECKED_PREFIX; }

/* The live blocks' first bytes, as they were filled. */
static void check_live(size_t from) {
  for (size_t i = from; i < block_count; i++)
    if (blocks[i] != NULL)
      CHECKF(qmt_verify(blocks[i], prefix_of(i), i) == SIZE_MAX, "block %zu (%zu bytes) overwritten", i,
             size_of(i));
}

static size_t gcd(size_t a, size_t b) { return b == 0 ? a : gcd(b, a % b); }

static void *freeing_thread(void *arg) {
  (void)arg;
  void *own = T_MALLOC(64); /* a heap of its own, which batches the frees */
  /* A stride coprime with the count visits every block once, mixing sizes and pages. */
  size_t stride = 7;
  while (gcd(block_count, stride) != 1)
    stride += 2;
  size_t freed = 0;
  for (size_t k = 0, i = 0; k < block_count; k++, i = (i + stride) % block_count) {
    T_FREE(blocks[i]);
    blocks[i] = NULL;
    if (++freed % 97 == 0) {
      CHECK(qmt_heap_validate());
      check_live(0);
    }
  }
  CHECK(qmt_heap_validate());
  T_FREE(own);
  return NULL;
}

static void *idle_thread(void *arg) { return arg; }

static void allocate_all(void) {
  for (size_t i = 0; i < block_count; i++) {
    blocks[i] = T_MALLOC(size_of(i));
    CHECK(blocks[i] != NULL);
    qmt_fill(blocks[i], size_of(i), i);
  }
}

int main(int argc, char **argv) {
  qmt_start("remote_parcels");
  size_t rounds = 3;
  if (argc > 1)
    block_count = (size_t)atol(argv[1]);
  if (argc > 2)
    rounds = (size_t)atol(argv[2]);
  blocks = T_CALLOC(block_count, sizeof *blocks);
  void *own = T_MALLOC(16); /* the main thread's heap exists before the first snapshot */
  /* So does what the C library allocates for a thread and keeps for the next one. */
  pthread_t warm_up;
  CHECK(pthread_create(&warm_up, NULL, idle_thread, NULL) == 0);
  pthread_join(warm_up, NULL);
  qm_stats_t before, after;
  bool counted = qmt_stats_get(&before) && qmt_strict && before.level > 0;

  for (size_t round = 0; round < rounds; round++) {
    allocate_all();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freeing_thread, NULL) == 0);
    pthread_join(t, NULL);
    qmt_trim(); /* takes the inbox back */
    CHECK(qmt_heap_validate());
    if (counted) {
      qmt_stats_get(&after);
      CHECKF(after.blocks_in_use == before.blocks_in_use, "round %zu: %zu blocks in use, %zu before", round,
             after.blocks_in_use, before.blocks_in_use);
    }
  }

  /* Short rounds: the freeing thread exits with its last parcel partly filled, which its exit
   * pushes as it is (the owner must stop at the end of its entries). */
  size_t full_count = block_count;
  for (size_t round = 0; round < 100; round++) {
    block_count = 1 + round * 13 % 60;
    allocate_all();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freeing_thread, NULL) == 0);
    pthread_join(t, NULL);
    qmt_trim();
    if (counted) {
      qmt_stats_get(&after);
      CHECKF(after.blocks_in_use == before.blocks_in_use, "short round %zu: %zu blocks in use, %zu before",
             round, after.blocks_in_use, before.blocks_in_use);
    }
  }
  block_count = full_count;
  CHECK(qmt_heap_validate());

  /* The memory that came back serves the same sizes again. */
  allocate_all();
  for (size_t i = 0; i < block_count; i++) {
    CHECKF(qmt_verify(blocks[i], size_of(i), i) == SIZE_MAX, "reused block %zu", i);
    T_FREE(blocks[i]);
  }
  CHECK(qmt_heap_validate());
  T_FREE(own);
  T_FREE(blocks);
  return check_result("remote_parcels");
}
