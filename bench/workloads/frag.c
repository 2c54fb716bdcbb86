/* frag - can memory freed as small blocks be reused for larger ones?
 *
 * Models: a program that builds a large data structure of small objects (a parse tree, an
 * in-memory index), drops most of it, and then works with buffers of medium and large size. Three
 * phases, with the resident set read after each:
 *   alloc                 small blocks of 16 to 512 B until their sizes add up to 1 GiB
 *                         (quick: 256 MiB, tiny: 16 MiB);
 *   free90                each small block is freed with probability 90% (in allocation
 *                         order), so the survivors are scattered over all the memory;
 *   realloc-medium-large  as many bytes as were freed, in blocks of 1 to 64 KiB (80%) and of
 *                         64 KiB to 1 MiB (20%), every page of them written.
 * An allocator that can give the scattered free memory to the new sizes, or return it to the
 * system, keeps the final resident set near the live bytes. This follows the phase-change tests
 * of allocator fragmentation studies.
 *
 * After free90 the program sleeps 100 ms before reading the resident set ("settle_ms"), so that
 * allocators that return memory on a timer are measured after a short delay; that sleep is not
 * part of "seconds". No allocator-specific call (malloc_trim or others) is made. The resident set
 * includes the program's own table of block pointers, the same for every allocator and given as
 * "table_bytes". Single-threaded.
 */
#include "harness.h"

#define SETTLE_MS 100
#define MIN_SMALL 16
#define MAX_SMALL 512

struct phase {
  const char *name;
  size_t rss_bytes, live_bytes;
};

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "frag",
                 "fragmentation: 1 GiB of small blocks, free 90%, refill with medium and large blocks", 1, 1);
  size_t target = QMB_BY_SIZE(&args, 16 * QMB_MiB, 256 * QMB_MiB, 1024 * QMB_MiB);
  struct qmb_rng rng;
  qmb_rng_init(&rng, args.seed, 0);
  /* Room for more blocks than the mean size (264 B) needs; small[] holds live blocks or NULL. */
  size_t small_cap = target / 200 + 1024, small_count = 0;
  void **small = qmb_xcalloc(small_cap, sizeof *small);
  /* Medium and large blocks, all live; at least 1 KiB each, so no more than this many. */
  size_t big_cap = target / QMB_KiB + 1, big_count = 0;
  void **big = qmb_xcalloc(big_cap, sizeof *big);
  struct phase phases[3];
  size_t live = 0, freed = 0;
  uint64_t checksum = 0, ops = 0;
  double seconds = 0;

  uint64_t t0 = qmb_now_ns();
  while (live < target && small_count < small_cap) {
    size_t n = qmb_rng_range(&rng, MIN_SMALL, MAX_SMALL);
    void *p = malloc(n);
    if (!p)
      qmb_die("malloc failed");
    qmb_stamp(p, n, (uint32_t)small_count);
    small[small_count++] = p;
    live += n;
  }
  ops += small_count;
  seconds += qmb_seconds_since(t0);
  phases[0] = (struct phase){"alloc", qmb_rss_bytes(), live};

  t0 = qmb_now_ns();
  for (size_t i = 0; i < small_count; i++) {
    if (!qmb_rng_percent(&rng, 90))
      continue;
    size_t n;
    checksum += qmb_check_self(small[i], &n);
    free(small[i]);
    small[i] = NULL;
    freed += n;
    ops++;
  }
  live -= freed;
  seconds += qmb_seconds_since(t0);
  struct timespec settle = {0, SETTLE_MS * 1000000L};
  nanosleep(&settle, NULL);
  phases[1] = (struct phase){"free90", qmb_rss_bytes(), live};

  t0 = qmb_now_ns();
  for (size_t added = 0; added < freed && big_count < big_cap;) {
    size_t n = qmb_rng_percent(&rng, 80) ? qmb_rng_range(&rng, 1024, 64 * QMB_KiB)
                                         : qmb_rng_range(&rng, 64 * QMB_KiB + 1, QMB_MiB);
    void *p = malloc(n);
    if (!p)
      qmb_die("malloc failed");
    qmb_touch_pages(p, n, (uint32_t)big_count);
    big[big_count++] = p;
    added += n;
    live += n;
  }
  ops += big_count;
  seconds += qmb_seconds_since(t0);
  phases[2] = (struct phase){"realloc-medium-large", qmb_rss_bytes(), live};
  size_t peak = qmb_peak_rss_bytes();

  for (size_t i = 0; i < small_count; i++)
    if (small[i]) {
      size_t n;
      checksum += qmb_check_self(small[i], &n);
      free(small[i]);
    }
  for (size_t i = 0; i < big_count; i++) {
    size_t n;
    qmb_check_self(big[i], &n);
    checksum += qmb_check_pages(big[i], n);
    free(big[i]);
  }
  free(small);
  free(big);

  qmb_result_begin(&args, ops, seconds, checksum, "malloc or free calls");
  qmb_json_add(",\"phases\":[");
  for (int i = 0; i < 3; i++)
    qmb_json_add("%s{\"name\":\"%s\",\"rss_bytes\":%zu,\"live_bytes\":%zu}", i ? "," : "", phases[i].name,
                 phases[i].rss_bytes, phases[i].live_bytes);
  qmb_json_add("]");
  qmb_result_u64("peak_rss_bytes", peak);
  qmb_result_u64("settle_ms", SETTLE_MS);
  qmb_result_u64("table_bytes", (small_count + big_count) * sizeof(void *));
  qmb_result_end();
  return 0;
}
