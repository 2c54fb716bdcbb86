/* qmt.h - shared helpers of the qmalloc tests: the two API flavours, qmalloc detection, RSS,
 * random numbers and content patterns.
 *
 * Every API test is compiled twice from one source:
 *   - prefixed (QMT_PREFIXED defined): T_MALLOC is qm_malloc and so on, linked with qmalloc;
 *   - standard: T_MALLOC is malloc and so on, linked normally and run with libqmalloc.so preloaded.
 * In the standard flavour the qm_* extras (qm_heap_validate, qm_process_info, ...) are looked up
 * with dlsym so that the program does not need to link with qmalloc. qmt_start() checks that
 * qmalloc really is the allocator under test; QMT_ALLOW_SYSTEM_MALLOC=1 in the environment lets a
 * standard-flavour test run against another malloc (the checks of qmalloc-specific behaviour are
 * then skipped), which is useful to check the tests themselves. QMT_STANDARD_ONLY=1 skips them
 * too while qmalloc is the allocator: the debug variant (libqmalloc-debug.so) keeps the standard
 * semantics but not qmalloc's size classes.
 */
#ifndef QMT_H
#define QMT_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "qmalloc.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* The size classes of qmalloc, as documented. */
#define QMT_SMALL_MAX (64 * KiB)
#define QMT_LARGE_MAX (2 * MiB)
#define QMT_LARGE_UNIT (8 * KiB)
#define QMT_HUGE_UNIT (4 * KiB)
#define QMT_SEGMENT_SIZE (4 * MiB) /* small and large blocks live in segments this big, this aligned */

#ifdef QMT_PREFIXED
#define QMT_FLAVOUR "prefixed"
#define T_MALLOC qm_malloc
#define T_CALLOC qm_calloc
#define T_REALLOC qm_realloc
#define T_REALLOCARRAY qm_reallocarray
#define T_FREE qm_free
#define T_FREE_SIZED qm_free_sized
#define T_FREE_ALIGNED_SIZED qm_free_aligned_sized
#define T_ALIGNED_ALLOC qm_aligned_alloc
#define T_POSIX_MEMALIGN qm_posix_memalign
#define T_MEMALIGN qm_memalign
#define T_VALLOC qm_valloc
#define T_PVALLOC qm_pvalloc
#define T_USABLE_SIZE qm_usable_size
#else
#define QMT_FLAVOUR "standard"
#define T_MALLOC malloc
#define T_CALLOC calloc
#define T_REALLOC realloc
#define T_REALLOCARRAY reallocarray
#define T_FREE free
#define T_FREE_SIZED qmt_free_sized
#define T_FREE_ALIGNED_SIZED qmt_free_aligned_sized
#define T_ALIGNED_ALLOC aligned_alloc
#define T_POSIX_MEMALIGN posix_memalign
#define T_MEMALIGN memalign
#define T_VALLOC valloc
#define T_PVALLOC pvalloc
#define T_USABLE_SIZE malloc_usable_size
#endif

/* True when the checks of qmalloc-specific behaviour apply (qmalloc is the allocator under test). */
static bool qmt_strict = true;

/* Hides a value from the optimiser, so that constant sizes do not trigger compile-time warnings
 * and pointer misuse is not folded away. */
static inline size_t qmt_opaque(size_t x) {
  __asm__ volatile("" : "+r"(x));
  return x;
}
static inline void *qmt_launder(void *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

static inline bool qmt_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }
static inline size_t qmt_round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* The segment a small or large block lies in. */
static inline uintptr_t qmt_segment_of(const void *p) {
  return (uintptr_t)p & ~(uintptr_t)(QMT_SEGMENT_SIZE - 1);
}

/* ---- qmalloc detection and the qm_* extras ---- */

static inline void *qmt_sym(const char *name) { return dlsym(RTLD_DEFAULT, name); }

/* True when the malloc that the dynamic linker resolves lives in libqmalloc and qm_version exists. */
static inline bool qmt_qmalloc_is_malloc(char *where, size_t where_len) {
  void *m = qmt_sym("malloc");
  Dl_info info;
  const char *file = "?";
  if (m && dladdr(m, &info) && info.dli_fname)
    file = info.dli_fname;
  if (where && where_len) {
    strncpy(where, file, where_len - 1);
    where[where_len - 1] = '\0';
  }
  return qmt_sym("qm_version") != NULL && strstr(file, "libqmalloc") != NULL;
}

/* A block of `size` bytes written whole with `fill`, and after it a live block of `fence` bytes that
 * is never freed, so that the first block's span, once freed, does not merge with the free rest of
 * its segment. NULL (a failed check) when either allocation fails. */
static inline unsigned char *qmt_fenced_block(size_t size, size_t fence, int fill) {
  unsigned char *p = T_MALLOC(size);
  CHECK(p != NULL);
  if (p != NULL)
    memset(p, fill, size);
  CHECK(T_MALLOC(fence) != NULL);
  return p;
}

/* Runs fn in a thread of its own and waits for it: a new thread starts with an empty heap. */
static inline void qmt_in_thread(void *(*fn)(void *)) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

static inline void qmt_start(const char *name) {
#ifdef QMT_PREFIXED
  CHECKF(strcmp(qm_version(), QMALLOC_VERSION_STRING) == 0, "qm_version() = %s", qm_version());
  qmt_strict = true;
#else
  char where[256];
  if (qmt_qmalloc_is_malloc(where, sizeof where) && getenv("QMT_STANDARD_ONLY")) {
    /* The debug variant (libqmalloc-debug.so): standard semantics, but its own usable sizes. */
    fprintf(stderr, "%s: QMT_STANDARD_ONLY: checking the standard semantics only\n", name);
    qmt_strict = false;
  } else if (qmt_qmalloc_is_malloc(where, sizeof where)) {
    qmt_strict = true;
  } else if (getenv("QMT_ALLOW_SYSTEM_MALLOC")) {
    fprintf(stderr,
            "%s: qmalloc is not the malloc in use (malloc from %s); skipping qmalloc-specific checks\n", name,
            where);
    qmt_strict = false;
  } else {
    CHECKF(0, "qmalloc is not the malloc in use (malloc resolves to %s); run with LD_PRELOAD=libqmalloc.so",
           where);
    qmt_strict = false;
  }
#endif
  fprintf(stderr, "%s (%s flavour)%s\n", name, QMT_FLAVOUR, qmt_strict ? "" : " against the system malloc");
}

#ifdef QMT_PREFIXED
static inline bool qmt_heap_validate(void) { return qm_heap_validate(); }
static inline bool qmt_process_info(qm_process_info_t *info) {
  qm_process_info(info);
  return true;
}
/* 1: p is in qmalloc's memory, 0: it is not, -1: unknown. */
static inline int qmt_is_heap_pointer(const void *p) { return qm_is_heap_pointer(p) ? 1 : 0; }
static inline bool qmt_thread_done(void) {
  qm_thread_done();
  return true;
}
#else
static inline bool qmt_heap_validate(void) {
  bool (*fn)(void) = (bool (*)(void))qmt_sym("qm_heap_validate");
  if (!fn) {
    CHECKF(!qmt_strict, "qm_heap_validate is not exported");
    return true;
  }
  return fn();
}
static inline bool qmt_process_info(qm_process_info_t *info) {
  void (*fn)(qm_process_info_t *) = (void (*)(qm_process_info_t *))qmt_sym("qm_process_info");
  memset(info, 0, sizeof *info);
  if (!fn) {
    CHECKF(!qmt_strict, "qm_process_info is not exported");
    return false;
  }
  fn(info);
  return true;
}
static inline int qmt_is_heap_pointer(const void *p) {
  bool (*fn)(const void *) = (bool (*)(const void *))qmt_sym("qm_is_heap_pointer");
  if (!fn)
    return -1;
  return fn(p) ? 1 : 0;
}
static inline bool qmt_thread_done(void) {
  void (*fn)(void) = (void (*)(void))qmt_sym("qm_thread_done");
  if (!fn)
    return false;
  fn();
  return true;
}
/* C23 free_sized / free_aligned_sized: the C library may not have them, qmalloc exports them. */
static inline void qmt_free_sized(void *p, size_t size) {
  void (*fn)(void *, size_t) = (void (*)(void *, size_t))qmt_sym("free_sized");
  if (!fn) {
    CHECKF(!qmt_strict, "free_sized is not exported");
    free(p);
    return;
  }
  fn(p, size);
}
static inline void qmt_free_aligned_sized(void *p, size_t alignment, size_t size) {
  void (*fn)(void *, size_t, size_t) = (void (*)(void *, size_t, size_t))qmt_sym("free_aligned_sized");
  if (!fn) {
    CHECKF(!qmt_strict, "free_aligned_sized is not exported");
    free(p);
    return;
  }
  fn(p, alignment, size);
}
#endif

/* ---- Resident set size (read without stdio or malloc, so it works anywhere) ---- */

static inline size_t qmt_rss_kib(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t len = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (len <= 0)
    return 0;
  buf[len] = '\0';
  const char *s = strstr(buf, "VmRSS:");
  if (!s)
    return 0;
  s += 6;
  while (*s == ' ' || *s == '\t')
    s++;
  size_t v = 0;
  while (*s >= '0' && *s <= '9')
    v = v * 10 + (size_t)(*s++ - '0');
  return v;
}

/* True when the system backs all anonymous memory with transparent huge pages, so that a purged OS
 * page inside a huge page may read as resident. */
static inline bool qmt_thp_always(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f)
    return false;
  char line[128] = "";
  bool always = fgets(line, sizeof line, f) != NULL && strstr(line, "[always]") != NULL;
  fclose(f);
  return always;
}

/* True when a purged OS page reads as not resident to mincore: not inside a transparent huge page
 * of the system's "always" mode, and not purged with MADV_FREE (QMALLOC_PURGE_METHOD=free), which
 * leaves it resident until the system needs the memory. The tests that watch purges with mincore
 * run only then. */
static inline bool qmt_purges_visible(void) {
  const char *method = getenv("QMALLOC_PURGE_METHOD");
  return !qmt_thp_always() && !(method && strcmp(method, "free") == 0);
}

/* Puts the process at a new peak of its resident set, for a check that a purge meant to lower the
 * peak runs (purge.c, "Purges for the peak"): writes 1 MiB of memory of its own, kept to the end.
 * A test process sits a few hundred KiB below its peak (what its start-up touched and let go, and
 * what the test purged since): 1 MiB more is above it. A heap that found the process below its
 * peak does not ask the kernel again for a millisecond of the coarse clock, which moves on in
 * ticks of up to 10 ms: the wait makes the next purge ask. */
static inline void qmt_at_peak(void) {
  size_t size = 1024 * 1024;
  unsigned char *own = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (own != MAP_FAILED)
    memset(own, 1, size);
  struct timespec wait = {0, 25 * 1000 * 1000};
  nanosleep(&wait, NULL);
}

/* OS pages resident in [p, p + length) (at most 64 of them), or (size_t)-1 when mincore fails. */
static inline size_t qmt_resident_os_pages(const void *p, size_t length) {
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)p & ~(uintptr_t)(os_page - 1);
  size_t pages = ((uintptr_t)p + length - start + os_page - 1) / os_page;
  unsigned char resident[64];
  if (pages > sizeof resident || mincore((void *)start, pages * os_page, resident) != 0)
    return (size_t)-1;
  size_t count = 0;
  for (size_t i = 0; i < pages; i++)
    count += resident[i] & 1;
  return count;
}

/* ---- Random numbers (xorshift64*, one state per thread) ---- */

typedef struct {
  uint64_t s;
} qmt_rng;

static inline void qmt_rng_seed(qmt_rng *r, uint64_t seed) {
  r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  if (!r->s)
    r->s = 1;
}
static inline uint64_t qmt_rand(qmt_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [0, n). */
static inline size_t qmt_below(qmt_rng *r, size_t n) { return n ? (size_t)(qmt_rand(r) % n) : 0; }

/* A size from 1 to max_size, mostly small: the number of bits follows a geometric distribution
 * (each further bit with probability 7/10), the value is uniform within that power of two. */
static inline size_t qmt_random_size(qmt_rng *r, size_t max_size) {
  unsigned bits = 0;
  while (bits < 63 && ((size_t)1 << bits) < max_size && qmt_below(r, 10) < 7)
    bits++;
  size_t lo = bits ? (size_t)1 << (bits - 1) : 1;
  size_t hi = (size_t)1 << bits;
  size_t n = lo + qmt_below(r, hi - lo + 1);
  if (n > max_size)
    n = max_size;
  return n ? n : 1;
}

/* ---- Content patterns ----
 * Byte k of a block with seed s is byte (k % 8) of the word w(k / 8) = s ^ (k / 8) * C, so a
 * prefix of a block can be checked on its own. qmt_seed() derives a seed from an address and a
 * size, so a block that lands on another block's memory does not carry the same pattern. */

static inline uint64_t qmt_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}
static inline uint64_t qmt_seed(const void *p, size_t n) {
  return qmt_mix((uint64_t)(uintptr_t)p ^ ((uint64_t)n << 17) ^ 0x5DEECE66Dull);
}
static inline uint64_t qmt_word(uint64_t seed, size_t i) {
  return seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

/* Word access that may alias any object and need not be aligned. */
typedef uint64_t __attribute__((may_alias, aligned(1))) qmt_word_t;
typedef union {
  uint64_t w;
  unsigned char b[8];
} qmt_bytes_t;

/* Fills bytes [from, to) of p with the pattern of seed; from must be a multiple of 8. */
static inline void qmt_fill_range(void *p, size_t from, size_t to, uint64_t seed) {
  unsigned char *b = (unsigned char *)p;
  size_t i = from / 8;
  for (; (i + 1) * 8 <= to; i++)
    *(qmt_word_t *)(b + i * 8) = qmt_word(seed, i);
  size_t rem = (to - i * 8) & 7; /* fewer than 8 bytes left */
  if (rem) {
    qmt_bytes_t t = {qmt_word(seed, i)};
    for (size_t j = 0; j < rem; j++)
      b[i * 8 + j] = t.b[j];
  }
}
static inline void qmt_fill(void *p, size_t n, uint64_t seed) { qmt_fill_range(p, 0, n, seed); }

/* Checks the first n bytes of p against the pattern of seed; returns the offset of the first wrong
 * byte, or SIZE_MAX when all are right. */
static inline size_t qmt_verify(const void *p, size_t n, uint64_t seed) {
  const unsigned char *b = (const unsigned char *)p;
  size_t i = 0;
  for (; (i + 1) * 8 <= n; i++)
    if (*(const qmt_word_t *)(b + i * 8) != qmt_word(seed, i))
      break;
  if (i * 8 < n) {
    qmt_bytes_t t = {qmt_word(seed, i)};
    size_t rem = n - i * 8 < 8 ? n - i * 8 : 8;
    for (size_t j = 0; j < rem; j++)
      if (b[i * 8 + j] != t.b[j])
        return i * 8 + j;
  }
  return SIZE_MAX;
}

/* As qmt_verify, but for a big block checks only its first and last 64 KiB and one word in every
 * 4 KiB in between: enough to see a block moved or copied wrongly, at a fraction of the cost. */
static inline size_t qmt_verify_sparse(const void *p, size_t n, uint64_t seed) {
  const size_t edge = 64 * 1024;
  if (n <= 4 * edge)
    return qmt_verify(p, n, seed);
  const unsigned char *b = (const unsigned char *)p;
  size_t bad = qmt_verify(b, edge, seed);
  if (bad != SIZE_MAX)
    return bad;
  for (size_t off = edge; off + 8 <= n - edge; off += 4096)
    if (*(const qmt_word_t *)(b + off) != qmt_word(seed, off / 8))
      return off;
  size_t tail = (n - edge) & ~(size_t)7;
  for (size_t i = tail / 8; (i + 1) * 8 <= n; i++)
    if (*(const qmt_word_t *)(b + i * 8) != qmt_word(seed, i))
      return i * 8;
  if (n % 8) {
    qmt_bytes_t t = {qmt_word(seed, n / 8)};
    for (size_t j = 0; j < n % 8; j++)
      if (b[(n & ~(size_t)7) + j] != t.b[j])
        return (n & ~(size_t)7) + j;
  }
  return SIZE_MAX;
}

/* Sleeps 10 ms, then makes a call that reaches a slow path (a large block, written and freed), so
 * that a decay pass runs whenever one is due: the tests that wait for the passes call this in a
 * loop. */
static inline void qmt_slow_path_pause(void) {
  struct timespec pause = {0, 10 * 1000 * 1000};
  nanosleep(&pause, NULL);
  unsigned char *large = T_MALLOC(200 * KiB);
  CHECK(large != NULL);
  if (large)
    large[0] = 1;
  T_FREE(large);
}

#endif /* QMT_H */
