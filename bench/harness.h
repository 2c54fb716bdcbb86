/* harness.h - what the benchmark workloads share: the command line, the clock, random numbers,
 * block stamps (content checks), the resident set, latency histograms, running worker threads and
 * the one JSON result line.
 *
 * Every workload is a plain C program that calls the standard malloc/free/realloc; the allocator
 * under test is chosen from outside (LD_PRELOAD). The amount of work is fixed by the arguments
 * only, so every allocator does the same work. The harness allocates nothing inside a measured
 * phase: thread bookkeeping is allocated before it, the result line is printed after it.
 *
 * Contract of every program: qmb-NAME [--size=tiny|quick|full] [--threads=N] [--seed=N]; exactly
 * one JSON line on stdout; exit status 0, 1 on a detected corruption, 2 on a bad command line.
 */
#ifndef QMB_HARNESS_H
#define QMB_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QMB_KiB ((size_t)1024)
#define QMB_MiB ((size_t)1024 * 1024)
#define QMB_MAX_THREADS 1024u

/* ---- Command line ---- */

enum qmb_size { QMB_TINY, QMB_QUICK, QMB_FULL };
static const char *const qmb_size_names[] = {"tiny", "quick", "full"};

struct qmb_args {
  const char *workload;
  enum qmb_size size;
  unsigned threads;
  uint64_t seed;
};

/* The workload's name, for messages (set by qmb_parse_args). */
static const char *qmb_name = "qmb";

/* Picks the value for the chosen size: QMB_BY_SIZE(&args, 1000, 100000, 1000000). */
#define QMB_BY_SIZE(args, tiny, quick, full)                                                                 \
  ((args)->size == QMB_TINY ? (tiny) : (args)->size == QMB_QUICK ? (quick) : (full))

static inline void qmb_usage(const char *about, unsigned default_threads, unsigned max_threads) {
  fprintf(stderr, "usage: qmb-%s [--size=tiny|quick|full] [--threads=N] [--seed=N]\n", qmb_name);
  fprintf(stderr, "  %s\n", about);
  fprintf(stderr, "  --size     amount of work: tiny (smoke run), quick, full (default)\n");
  if (max_threads > 1)
    fprintf(stderr, "  --threads  worker threads, 1 to %u (default %u)\n", max_threads, default_threads);
  else
    fprintf(stderr, "  --threads  single-threaded workload: only 1 is accepted\n");
  fprintf(stderr, "  --seed     seed of the random choices (default 1)\n");
  fprintf(stderr, "Prints one JSON line with the results on stdout.\n");
}

/* Parses a whole decimal number; false unless all of s is one. */
static inline bool qmb_parse_u64(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return false;
  *out = v;
  return true;
}

/* Parses the command line into a; prints the usage and exits 2 on anything it does not know.
 * max_threads 1 marks a single-threaded workload. */
static inline void qmb_parse_args(struct qmb_args *a, int argc, char **argv, const char *workload,
                                  const char *about, unsigned default_threads, unsigned max_threads) {
  qmb_name = workload;
  a->workload = workload;
  a->size = QMB_FULL;
  a->threads = default_threads;
  a->seed = 1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    uint64_t v;
    bool ok = true;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      qmb_usage(about, default_threads, max_threads);
      exit(0);
    } else if (strncmp(arg, "--size=", 7) == 0) {
      ok = false;
      for (int s = QMB_TINY; s <= QMB_FULL; s++)
        if (strcmp(arg + 7, qmb_size_names[s]) == 0) {
          a->size = (enum qmb_size)s;
          ok = true;
        }
    } else if (strncmp(arg, "--threads=", 10) == 0) {
      ok = qmb_parse_u64(arg + 10, &v) && v >= 1 && v <= max_threads;
      a->threads = (unsigned)v;
    } else if (strncmp(arg, "--seed=", 7) == 0) {
      ok = qmb_parse_u64(arg + 7, &a->seed);
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr, "qmb-%s: bad argument '%s'\n", qmb_name, arg);
      qmb_usage(about, default_threads, max_threads);
      exit(2);
    }
  }
}

/* ---- Failure ---- */

/* Reports a failed content check (a broken allocator, or a broken workload) and exits 1. */
static inline void qmb_corrupt(const void *block, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void qmb_corrupt(const void *block, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "qmb-%s: corruption in block %p: %s\n", qmb_name, block, msg);
  exit(1);
}

/* Reports that the workload cannot run (out of memory, thread creation failed) and exits 3. */
static inline void qmb_die(const char *what) {
  fprintf(stderr, "qmb-%s: %s\n", qmb_name, what);
  exit(3);
}

/* malloc for the workloads' own bookkeeping, outside the measured phases. */
static inline void *qmb_xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p)
    qmb_die("out of memory for the workload's bookkeeping");
  return p;
}

/* Makes the compiler assume that p escapes and that the memory behind it is read and written, so
 * a malloc/free pair around it cannot be folded away. Costs no instruction. */
static inline void qmb_escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---- Clock ---- */

static inline uint64_t qmb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline double qmb_seconds_since(uint64_t start_ns) { return (double)(qmb_now_ns() - start_ns) / 1e9; }

/* ---- Random numbers: xorshift64*, seeded through splitmix64; one generator per thread ---- */

struct qmb_rng {
  uint64_t s; /* never 0 */
};

static inline uint64_t qmb_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Generators of one seed and different streams (thread numbers) are unrelated. */
static inline void qmb_rng_init(struct qmb_rng *r, uint64_t seed, uint64_t stream) {
  r->s = qmb_mix64(seed * 0x9E3779B97F4A7C15ull + qmb_mix64(stream + 1));
  if (!r->s)
    r->s = 1;
}
static inline uint64_t qmb_rng_next(struct qmb_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [0, n), by the high half of a 64x64 product (no division). */
static inline uint64_t qmb_rng_below(struct qmb_rng *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)qmb_rng_next(r) * n) >> 64);
}
/* Uniform in [lo, hi]. */
static inline size_t qmb_rng_range(struct qmb_rng *r, size_t lo, size_t hi) {
  return lo + (size_t)qmb_rng_below(r, (uint64_t)(hi - lo) + 1);
}
/* True with the given probability in percent. */
static inline bool qmb_rng_percent(struct qmb_rng *r, unsigned percent) {
  return qmb_rng_below(r, 100) < percent;
}
/* Log-uniform in [2^lo_log2, 2^hi_log2), piecewise: a uniform octave, then uniform inside it. */
static inline size_t qmb_rng_log_uniform(struct qmb_rng *r, unsigned lo_log2, unsigned hi_log2) {
  unsigned octave = (unsigned)qmb_rng_range(r, lo_log2, hi_log2 - 1);
  return qmb_rng_range(r, (size_t)1 << octave, ((size_t)2 << octave) - 1);
}

/* ---- Block stamps ----
 * A stamped block of n >= QMB_MIN_BLOCK bytes holds its size (low 32 bits) and a 32-bit tag in its
 * first 8 bytes and a byte derived from both in its last byte. Checking a block before freeing it
 * catches an allocator that handed out overlapping or too-small blocks, or wrote into live ones. */

#define QMB_MIN_BLOCK 8

struct qmb_stamp {
  uint32_t size;
  uint32_t tag;
};

static inline unsigned char qmb_tail_byte(uint32_t tag, size_t n) {
  return (unsigned char)(tag ^ (tag >> 13) ^ n ^ (n >> 8) ^ 0xA5);
}

static inline void qmb_stamp(void *p, size_t n, uint32_t tag) {
  struct qmb_stamp s = {(uint32_t)n, tag};
  memcpy(p, &s, sizeof s);
  if (n > sizeof s)
    ((unsigned char *)p)[n - 1] = qmb_tail_byte(tag, n);
}

/* Checks a block whose size the caller knows; returns its tag (for the checksum). */
static inline uint32_t qmb_check(const void *p, size_t n) {
  struct qmb_stamp s;
  memcpy(&s, p, sizeof s);
  if (s.size != (uint32_t)n)
    qmb_corrupt(p, "size stamp %u, expected %zu", (unsigned)s.size, n);
  if (n > sizeof s && ((const unsigned char *)p)[n - 1] != qmb_tail_byte(s.tag, n))
    qmb_corrupt(p, "last byte of a %zu-byte block overwritten", n);
  return s.tag;
}

/* Checks a block that knows its own size (when only the pointer is kept); returns its tag and sets
 * *n to its size. */
static inline uint32_t qmb_check_self(const void *p, size_t *n) {
  struct qmb_stamp s;
  memcpy(&s, p, sizeof s);
  *n = s.size;
  if (s.size < QMB_MIN_BLOCK)
    qmb_corrupt(p, "size stamp %u is below the smallest block", (unsigned)s.size);
  return qmb_check(p, s.size);
}

/* Writes the whole block (a byte pattern of the tag) and stamps it. */
static inline void qmb_fill(void *p, size_t n, uint32_t tag) {
  memset(p, (int)(tag & 0xFF) | 1, n);
  qmb_stamp(p, n, tag);
}

/* Checks a filled block: the stamp and a byte in the middle; returns the tag. */
static inline uint32_t qmb_check_fill(const void *p, size_t n) {
  uint32_t tag = qmb_check(p, n);
  if (n >= 24 && ((const unsigned char *)p)[n / 2] != ((tag & 0xFF) | 1))
    qmb_corrupt(p, "middle of a %zu-byte block overwritten", n);
  return tag;
}

/* Stamps a large block and writes one byte in every further 4 KiB page, so all of it is resident. */
static inline void qmb_touch_pages(void *p, size_t n, uint32_t tag) {
  unsigned char *b = p;
  for (size_t off = 4096; off < n - 1; off += 4096)
    b[off] = (unsigned char)(tag + (off >> 12));
  qmb_stamp(p, n, tag);
}

/* Checks a block written by qmb_touch_pages; returns its tag. */
static inline uint32_t qmb_check_pages(const void *p, size_t n) {
  const unsigned char *b = p;
  uint32_t tag = qmb_check(p, n);
  for (size_t off = 4096; off < n - 1; off += 4096)
    if (b[off] != (unsigned char)(tag + (off >> 12)))
      qmb_corrupt(p, "page at offset %zu of a %zu-byte block overwritten", off, n);
  return tag;
}

/* ---- Resident set, from /proc/self/status (read without stdio, so without malloc) ---- */

/* The value of a "Key:  N kB" line in bytes, 0 when it cannot be read. */
static inline size_t qmb_status_bytes(const char *key) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t len = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (len <= 0)
    return 0;
  buf[len] = '\0';
  const char *s = strstr(buf, key);
  if (!s)
    return 0;
  s += strlen(key);
  while (*s == ' ' || *s == '\t')
    s++;
  size_t kib = 0;
  while (*s >= '0' && *s <= '9')
    kib = kib * 10 + (size_t)(*s++ - '0');
  return kib * 1024;
}
static inline size_t qmb_rss_bytes(void) { return qmb_status_bytes("VmRSS:"); }
static inline size_t qmb_peak_rss_bytes(void) { return qmb_status_bytes("VmHWM:"); }

/* ---- Latency histograms ----
 * Log2-linear buckets: values below 32 ns have a bucket each; above, every power of two is split
 * into 32 equal buckets (so a bucket is at most 1/32 = 3% wide); values from 2^44 ns (4.9 hours)
 * on share the last bucket. One histogram per thread and operation, merged after the run. */

#define QMB_HIST_SUB_BITS 5
#define QMB_HIST_SUB (1u << QMB_HIST_SUB_BITS)
#define QMB_HIST_MAX_LOG2 44
#define QMB_HIST_BUCKETS ((QMB_HIST_MAX_LOG2 - QMB_HIST_SUB_BITS + 1) * QMB_HIST_SUB)

struct qmb_hist {
  uint64_t samples;                     /* the sum of count[] */
  uint64_t count[QMB_HIST_BUCKETS + 1]; /* the last one holds everything too large */
};

static inline unsigned qmb_hist_bucket(uint64_t ns) {
  if (ns < QMB_HIST_SUB)
    return (unsigned)ns;
  unsigned log2 = 63u - (unsigned)__builtin_clzll(ns);
  if (log2 >= QMB_HIST_MAX_LOG2)
    return QMB_HIST_BUCKETS;
  unsigned sub = (unsigned)(ns >> (log2 - QMB_HIST_SUB_BITS)) - QMB_HIST_SUB;
  return (log2 - QMB_HIST_SUB_BITS + 1) * QMB_HIST_SUB + sub;
}

/* The middle of a bucket's range, in ns. */
static inline double qmb_hist_value(unsigned bucket) {
  if (bucket < QMB_HIST_SUB)
    return bucket;
  unsigned log2 = bucket / QMB_HIST_SUB + QMB_HIST_SUB_BITS - 1;
  uint64_t width = (uint64_t)1 << (log2 - QMB_HIST_SUB_BITS);
  uint64_t low = (uint64_t)(QMB_HIST_SUB + bucket % QMB_HIST_SUB) * width;
  return (double)low + (double)(width - 1) / 2;
}

static inline void qmb_hist_add(struct qmb_hist *h, uint64_t ns) {
  h->count[qmb_hist_bucket(ns)]++;
  h->samples++;
}

static inline void qmb_hist_merge(struct qmb_hist *into, const struct qmb_hist *from) {
  for (unsigned i = 0; i <= QMB_HIST_BUCKETS; i++)
    into->count[i] += from->count[i];
  into->samples += from->samples;
}

/* The value at quantile q (0 < q <= 1): the bucket holding the ceil(q * samples)-th sample. */
static inline double qmb_hist_quantile(const struct qmb_hist *h, double q) {
  if (!h->samples)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->samples + 0.999999);
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i <= QMB_HIST_BUCKETS; i++) {
    seen += h->count[i];
    if (seen >= rank)
      return qmb_hist_value(i);
  }
  return qmb_hist_value(QMB_HIST_BUCKETS);
}

/* The median cost of reading the clock twice around nothing: the part of every latency sample that
 * is the measurement itself. */
static inline double qmb_timer_overhead_ns(void) {
  struct qmb_hist h;
  memset(&h, 0, sizeof h);
  for (int i = 0; i < 10000; i++) {
    uint64_t t0 = qmb_now_ns();
    uint64_t t1 = qmb_now_ns();
    qmb_hist_add(&h, t1 - t0);
  }
  return qmb_hist_quantile(&h, 0.5);
}

/* ---- Worker threads ---- */

typedef void (*qmb_thread_fn)(void *ctx, unsigned index);

struct qmb_thread {
  pthread_t id;
  qmb_thread_fn fn;
  void *ctx;
  unsigned index;
  pthread_barrier_t *start;
};

static inline void *qmb_thread_main(void *arg) {
  struct qmb_thread *t = arg;
  pthread_barrier_wait(t->start);
  t->fn(t->ctx, t->index);
  return NULL;
}

/* Runs fn(ctx, 0) .. fn(ctx, n - 1) in n threads started together and returns the seconds from
 * the start to the last one's end (thread creation is not counted). With n == 1, fn runs in the
 * calling thread, so a single-threaded run uses the main thread's heap, as a plain program does. */
static inline double qmb_run_threads(unsigned n, qmb_thread_fn fn, void *ctx) {
  if (n == 1) {
    uint64_t t0 = qmb_now_ns();
    fn(ctx, 0);
    return qmb_seconds_since(t0);
  }
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, n + 1);
  struct qmb_thread *threads = qmb_xcalloc(n, sizeof *threads);
  for (unsigned i = 0; i < n; i++) {
    threads[i] = (struct qmb_thread){.fn = fn, .ctx = ctx, .index = i, .start = &start};
    if (pthread_create(&threads[i].id, NULL, qmb_thread_main, &threads[i]) != 0)
      qmb_die("cannot create a thread");
  }
  pthread_barrier_wait(&start);
  uint64_t t0 = qmb_now_ns();
  for (unsigned i = 0; i < n; i++)
    pthread_join(threads[i].id, NULL);
  double seconds = qmb_seconds_since(t0);
  free(threads);
  pthread_barrier_destroy(&start);
  return seconds;
}

/* ---- The result line ----
 * Built in a static buffer and printed once at the end:
 *   qmb_result_begin(...); qmb_result_u64("key", v); ...; qmb_result_end();
 * The fields every workload prints come first, in a fixed order. */

static char qmb_json[16384];
static size_t qmb_json_len;

static inline void qmb_json_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void qmb_json_add(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(qmb_json + qmb_json_len, sizeof qmb_json - qmb_json_len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof qmb_json - qmb_json_len)
    qmb_die("result line too long");
  qmb_json_len += (size_t)n;
}

/* unit: what one of the ops is, for example "malloc+free pairs". */
static inline void qmb_result_begin(const struct qmb_args *a, uint64_t ops, double seconds, uint64_t checksum,
                                    const char *unit) {
  qmb_json_len = 0;
  qmb_json_add("{\"workload\":\"%s\",\"threads\":%u,\"size\":\"%s\",\"ops\":%llu,\"seconds\":%.6f,"
               "\"ops_per_sec\":%.1f,\"checksum\":%llu,\"unit\":\"%s\",\"seed\":%llu",
               a->workload, a->threads, qmb_size_names[a->size], (unsigned long long)ops, seconds,
               seconds > 0 ? (double)ops / seconds : 0.0, (unsigned long long)checksum, unit,
               (unsigned long long)a->seed);
}
static inline void qmb_result_u64(const char *key, uint64_t v) {
  qmb_json_add(",\"%s\":%llu", key, (unsigned long long)v);
}
static inline void qmb_result_f64(const char *key, double v) { qmb_json_add(",\"%s\":%.3f", key, v); }

static inline void qmb_json_quantiles(const char *name, const struct qmb_hist *h) {
  qmb_json_add("\"%s\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"samples\":%llu}", name,
               qmb_hist_quantile(h, 0.5), qmb_hist_quantile(h, 0.99), qmb_hist_quantile(h, 0.999),
               (unsigned long long)h->samples);
}
/* "latency_ns":{"malloc":{...},"free":{...}}; the samples include the clock's own cost, which is
 * printed beside them as "timer_overhead_ns". */
static inline void qmb_result_latency(const struct qmb_hist *malloc_h, const struct qmb_hist *free_h,
                                      double timer_overhead_ns) {
  qmb_json_add(",\"latency_ns\":{");
  qmb_json_quantiles("malloc", malloc_h);
  qmb_json_add(",");
  qmb_json_quantiles("free", free_h);
  qmb_json_add("},\"timer_overhead_ns\":%.1f", timer_overhead_ns);
}

static inline void qmb_result_end(void) {
  qmb_json_add("}\n");
  if (fputs(qmb_json, stdout) == EOF || fflush(stdout) != 0)
    qmb_die("cannot write the result line");
}

#endif
