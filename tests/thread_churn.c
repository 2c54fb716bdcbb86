/* Thread churn: many short-lived threads, each allocating some blocks, freeing most of them and
 * passing a few to the main thread, which frees them later. Exited threads hand their heaps back:
 * the resident set stays bounded and heaps do not pile up.
 *
 * usage: thread_churn [threads [concurrent [rss-bound-MiB]]]   (defaults: 100000, 4, 64)
 *   rss-bound-MiB 0: report the resident set but do not check it (sanitizer builds, whose own
 *   bookkeeping grows with the number of threads)
 */
#include <pthread.h>

#include "qmt.h"

#define PER_THREAD 24
#define PASSED 3
#define HELD 3000 /* blocks the main thread holds on to before freeing them */

struct block {
  unsigned char *p;
  size_t n;
};

struct job {
  uint64_t seed;
  struct block out[PASSED];
};

static void *thread_main(void *arg) {
  struct job *job = arg;
  qmt_rng r;
  qmt_rng_seed(&r, job->seed);
  struct block b[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) {
    size_t n =
        (qmt_below(&r, 64) == 0) ? 64 * KiB + 1 + qmt_below(&r, 200 * KiB) : qmt_random_size(&r, 4 * KiB);
    b[i].n = n;
    b[i].p = T_MALLOC(n);
    CHECKF(b[i].p != NULL, "malloc(%zu) in a thread", n);
    if (b[i].p)
      qmt_fill(b[i].p, n, qmt_seed(b[i].p, n));
  }
  for (int i = 0; i < PER_THREAD; i++) {
    if (!b[i].p)
      continue;
    CHECK(qmt_verify(b[i].p, b[i].n, qmt_seed(b[i].p, b[i].n)) == SIZE_MAX);
    if (i < PASSED)
      job->out[i] = b[i];
    else
      T_FREE(b[i].p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  long total = argc > 1 ? atol(argv[1]) : 100000;
  int conc = argc > 2 ? atoi(argv[2]) : 4;
  long bound_mib = argc > 3 ? atol(argv[3]) : 64;
  if (total < 1 || conc < 1 || conc > 64 || bound_mib < 0) {
    fprintf(stderr, "usage: %s [threads [concurrent [rss-bound-MiB]]]\n", argv[0]);
    return 2;
  }
  qmt_start("thread_churn");
  fprintf(stderr, "  %ld threads, %d at a time\n", total, conc);

  static struct block held[HELD];
  size_t held_next = 0;
  struct job jobs[64];
  pthread_t tid[64];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * KiB);

  size_t rss_bound_kib = (size_t)bound_mib * 1024;
  long warmup = total / 20;
  size_t rss_base = 0, rss_peak = 0;
  bool runaway = false;
  long done = 0;
  while (done < total && !runaway) {
    int n = (int)(total - done < conc ? total - done : conc);
    for (int i = 0; i < n; i++) {
      memset(&jobs[i], 0, sizeof jobs[i]);
      jobs[i].seed = (uint64_t)(done + i) * 2654435761u + 1;
      int rc = pthread_create(&tid[i], &attr, thread_main, &jobs[i]);
      CHECKF(rc == 0, "pthread_create: %d", rc);
      if (rc != 0) {
        n = i;
        runaway = true;
        break;
      }
    }
    for (int i = 0; i < n; i++) {
      pthread_join(tid[i], NULL);
      /* Take the passed blocks; the block they push out of the ring is checked and freed. */
      for (int k = 0; k < PASSED; k++) {
        struct block *h = &held[held_next];
        held_next = (held_next + 1) % HELD;
        if (h->p) {
          CHECK(qmt_verify(h->p, h->n, qmt_seed(h->p, h->n)) == SIZE_MAX);
          T_FREE(h->p);
        }
        *h = jobs[i].out[k];
      }
    }
    long before = done;
    done += n;
    if (before < warmup && done >= warmup)
      rss_base = qmt_rss_kib();
    if (rss_base && (done / conc) % 256 == 0) {
      size_t rss = qmt_rss_kib();
      if (rss > rss_peak)
        rss_peak = rss;
      if (rss_bound_kib && rss > rss_base + 4 * rss_bound_kib)
        runaway = true;
    }
  }
  pthread_attr_destroy(&attr);
  size_t rss_end = qmt_rss_kib();
  if (rss_end > rss_peak)
    rss_peak = rss_end;
  if (!rss_base)
    rss_base = rss_end;
  fprintf(stderr, "  %ld threads run; RSS after warm-up %zu KiB, peak %zu KiB, end %zu KiB\n", done, rss_base,
          rss_peak, rss_end);
  CHECKF(!runaway, "stopped early after %ld threads (RSS %zu KiB)", done, rss_end);
  if (rss_bound_kib)
    CHECKF(rss_peak < rss_base + rss_bound_kib, "RSS grew by %zu KiB over %ld threads (bound %zu KiB)",
           rss_peak - rss_base, done, rss_bound_kib);

  qm_process_info_t info;
  if (qmt_process_info(&info)) {
    fprintf(stderr,
            "  heaps active %zu; segments mapped %zu (%zu MiB), abandoned %zu; huge blocks %zu; "
            "mmap calls %zu, munmap calls %zu\n",
            info.heaps_active, info.segments_mapped, info.segment_bytes >> 20, info.segments_abandoned,
            info.huge_blocks, info.os_map_calls, info.os_unmap_calls);
    if (qmt_strict) {
      CHECKF(info.heaps_active <= (size_t)conc + 16, "%zu heaps still active after the threads ended",
             info.heaps_active);
      /* 9-10 segments (40 MiB) are mapped at the end; a thread that adopted only the front of the
       * abandoned list once left 355 (docs/DESIGN.md, section 6, "Thread exit and adoption"). */
      CHECKF(info.segment_bytes < 128 * MiB, "%zu MiB of segments mapped", info.segment_bytes >> 20);
    }
  }
  for (size_t i = 0; i < HELD; i++) {
    if (held[i].p) {
      CHECK(qmt_verify(held[i].p, held[i].n, qmt_seed(held[i].p, held[i].n)) == SIZE_MAX);
      T_FREE(held[i].p);
    }
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_result("thread_churn");
}
