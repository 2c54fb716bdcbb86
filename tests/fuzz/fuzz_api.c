/* fuzz_api.c - a libFuzzer harness over the whole qm_* API.
 *
 * The input is a program: a sequence of operations, each one opcode byte followed by the argument
 * bytes it reads (docs/FUZZING.md has the table). The operations act on a small table of slots
 * (blocks of malloc, of first-class heaps and of pools), on up to two heaps, pools, arenas and stacks
 * each, and on a worker thread that allocates blocks for the main thread and frees blocks the main
 * thread hands it (synchronously: the main thread waits, so a run is deterministic).
 *
 * What is checked: every block is filled with a pattern derived from its seed, and the pattern is
 * checked when the block is freed, reallocated (the common prefix must survive) and, one slot per
 * step, in passing; alignment, usable size >= requested size, calloc's zeros, the errno of every
 * failure, the LIFO addresses of stacks and the marks of arenas. After every operation the caller's
 * heap is walked with qm_heap_validate() and every live first-class heap with qm_heap_check().
 * Anything wrong prints one line naming the check and traps. Live memory is capped (LIVE_CAP) so a
 * run never runs out of memory; an operation that would pass the cap is skipped.
 *
 * The same file is built with replay_main.c (a plain main() that runs corpus files) so that builds
 * without libFuzzer test the harness and its corpus too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#define NSLOTS 32
#define NHEAPS 2
#define NPOOLS 2
#define NARENAS 2
#define NSTACKS 2
#define ARENA_BLOCKS 16
#define ARENA_MARKS 4
#define STACK_DEPTH 32
#define LIVE_CAP (256 * MiB) /* live bytes (requested, plus alignment) never exceed this */
#define MAX_STEPS 4096
#define PAGE 4096

/* ---------------------------------------------------------------------------------------------
 * Failure reports and the input reader
 * ------------------------------------------------------------------------------------------- */

static unsigned long step_no; /* the operation being run, for reports */

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_api: step %lu: ", step_no);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  __builtin_trap();
}

#define CHECK(cond, ...)                                                                                     \
  do {                                                                                                       \
    if (!(cond))                                                                                             \
      fail(__VA_ARGS__);                                                                                     \
  } while (0)

/* Reads bytes of the input; past its end every read gives 0. */
typedef struct {
  const uint8_t *p;
  size_t left;
} reader_t;

static uint8_t rd8(reader_t *r) {
  if (r->left == 0)
    return 0;
  r->left--;
  return *r->p++;
}

static uint16_t rd16(reader_t *r) { return (uint16_t)(rd8(r) | rd8(r) << 8); }

/* ---------------------------------------------------------------------------------------------
 * Patterns: byte i of a block with seed s is pat(s, i). Blocks up to FULL_MAX are filled and
 * checked whole; bigger ones at both ends (EDGE bytes each) and 8 bytes in every 4 KiB between.
 * ------------------------------------------------------------------------------------------- */

#define FULL_MAX (128 * KiB)
#define EDGE (32 * KiB)

static inline uint8_t pat(uint32_t seed, size_t i) {
  return (uint8_t)(seed ^ (i * 0x9du) ^ (i >> 8) ^ ((i >> 16) * 3u) ^ (seed >> 8));
}

enum { FILL, CHECK_PAT, CHECK_ZERO };

/* Applies `mode` to the sampled bytes of a block of n bytes that lie below limit. Returns the offset
 * of the first wrong byte, or SIZE_MAX. */
static size_t range_do(uint8_t *p, size_t from, size_t to, uint32_t seed, int mode) {
  for (size_t i = from; i < to; i++) {
    if (mode == FILL)
      p[i] = pat(seed, i);
    else if (p[i] != (mode == CHECK_ZERO ? 0 : pat(seed, i)))
      return i;
  }
  return SIZE_MAX;
}

static size_t sample_do(uint8_t *p, size_t n, size_t limit, uint32_t seed, int mode) {
  size_t bad;
  if (limit > n)
    limit = n;
  if (n <= FULL_MAX)
    return range_do(p, 0, limit, seed, mode);
  if ((bad = range_do(p, 0, limit < EDGE ? limit : EDGE, seed, mode)) != SIZE_MAX)
    return bad;
  for (size_t off = EDGE; off + 8 <= n - EDGE && off + 8 <= limit; off += 4096)
    if ((bad = range_do(p, off, off + 8, seed, mode)) != SIZE_MAX)
      return bad;
  if (limit > n - EDGE)
    return range_do(p, n - EDGE, limit, seed, mode);
  return SIZE_MAX;
}

static void fill(void *p, size_t n, uint32_t seed) { sample_do(p, n, n, seed, FILL); }

static void check_pattern(const char *what, void *p, size_t n, size_t limit, uint32_t seed) {
  size_t bad = sample_do(p, n, limit, seed, CHECK_PAT);
  CHECK(bad == SIZE_MAX, "%s: block %p of %zu bytes: byte %zu is 0x%02x, expected 0x%02x", what, p, n, bad,
        ((uint8_t *)p)[bad], pat(seed, bad));
}

static void check_zero(const char *what, void *p, size_t n) {
  size_t bad = sample_do(p, n, n, 0, CHECK_ZERO);
  CHECK(bad == SIZE_MAX, "%s: block %p of %zu bytes: byte %zu is 0x%02x, expected 0", what, p, n, bad,
        ((uint8_t *)p)[bad]);
}

static void check_aligned(const char *what, const void *p, size_t alignment) {
  CHECK(((uintptr_t)p & (alignment - 1)) == 0, "%s: %p is not aligned to %zu", what, p, alignment);
}

static void check_usable(const char *what, void *p, size_t size) {
  size_t usable = qm_usable_size(p);
  CHECK(usable >= size, "%s: usable size of %p is %zu, below the %zu bytes requested", what, p, usable, size);
  CHECK(qm_is_heap_pointer(p), "%s: qm_is_heap_pointer(%p) is false", what, p);
}

/* A fresh block: aligned to 16 (and `alignment`), usable size, zeros when calloc'ed; then filled. */
static void check_new(const char *what, void *p, size_t size, size_t alignment, bool zero, uint32_t seed) {
  check_aligned(what, p, 16);
  if (alignment > 16)
    check_aligned(what, p, alignment);
  check_usable(what, p, size);
  if (zero)
    check_zero(what, p, size);
  fill(p, size, seed);
}

static void check_errno(const char *what, int expected) {
  CHECK(errno == expected, "%s: errno is %d, expected %d", what, errno, expected);
}

/* ---------------------------------------------------------------------------------------------
 * State: slots, heaps, pools, arenas, stacks. Reset at the end of every input.
 * ------------------------------------------------------------------------------------------- */

/* A slot holds one block that is freed one at a time: of malloc (any thread's heap), of a
 * first-class heap (owner: its index), or of a pool (owner: its index). p == NULL: empty. */
enum { K_MALLOC = 1, K_HEAP, K_POOL };
typedef struct {
  uint8_t *p;
  size_t size;      /* bytes requested (checked and freed with) */
  size_t alignment; /* the alignment requested, 0 when none (or lost by a realloc) */
  uint32_t seed;
  uint8_t kind, owner;
} slot_t;

typedef struct {
  qm_pool_t *pool;
  size_t object_size, alignment;
  size_t cost; /* counted in live_bytes: room for the chunks of all the objects the slots can hold */
  bool thread_safe;
} pool_state_t;

typedef struct {
  uint8_t *p;
  size_t size, premark; /* the arena's mark before the block was made */
  uint32_t seed;
} arena_block_t;

/* Blocks above ARENA_BLOCKS are not made (the operation is skipped), so every block is recorded. */
typedef struct {
  qm_arena_t *arena;
  arena_block_t blocks[ARENA_BLOCKS];
  size_t nblocks;
  size_t marks[ARENA_MARKS]; /* marks taken, oldest first, all at or below the top */
  size_t nmarks;
  size_t last_mark; /* marks never go down between resets */
} arena_state_t;

typedef struct {
  uint8_t *p;
  size_t size;
  uint32_t seed;
} stack_block_t;

typedef struct {
  qm_stack_t *stack;
  size_t capacity; /* rounded up to 16 */
  size_t used;     /* header and rounded size of every live block */
  uint8_t *base;   /* where the first header went (known after the first block) */
  stack_block_t blocks[STACK_DEPTH];
  size_t depth;
} stack_state_t;

static slot_t slots[NSLOTS];
static qm_heap_t *heaps[NHEAPS];
static pool_state_t pools[NPOOLS];
static arena_state_t arenas[NARENAS];
static stack_state_t stacks[NSTACKS];
static size_t live_bytes;
static uint32_t next_seed;

static uint32_t new_seed(unsigned slot) { return (uint32_t)(++next_seed * 0x45d9f3bu) ^ slot; }

static size_t slot_cost(const slot_t *s) { return s->size + s->alignment; }

static size_t arena_cost(const arena_state_t *a) {
  size_t bytes = 0;
  for (size_t i = 0; i < a->nblocks; i++)
    bytes += a->blocks[i].size + 64 * KiB;
  return 2 * bytes; /* chunks hold up to twice what is in them */
}

static bool budget(size_t extra) { return extra <= LIVE_CAP && live_bytes + extra <= LIVE_CAP; }

/* ---------------------------------------------------------------------------------------------
 * The worker thread: frees the blocks it is handed, allocates blocks for the main thread, hands
 * its heap back. The main thread waits for each request, so the order of events is fixed.
 * ------------------------------------------------------------------------------------------- */

enum { W_IDLE, W_FREE, W_ALLOC, W_THREAD_DONE };
typedef struct {
  void *p;
  size_t size;     /* for qm_free_sized, when sized */
  qm_pool_t *pool; /* a pool object, when not NULL */
  bool sized;
} handoff_t;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int request; /* W_*; back to W_IDLE when done */
  handoff_t items[NSLOTS];
  size_t count;
  size_t size;  /* W_ALLOC: the size */
  void *result; /* W_ALLOC: the block */
  int error;    /* W_ALLOC: errno */
  bool valid;   /* qm_heap_validate() of the worker's heap after the request */
} worker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, W_IDLE, {{0}}, 0, 0, NULL, 0, true};

static void *worker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&worker.lock);
  for (;;) {
    while (worker.request == W_IDLE)
      pthread_cond_wait(&worker.cond, &worker.lock);
    switch (worker.request) {
    case W_FREE:
      for (size_t i = 0; i < worker.count; i++) {
        handoff_t *h = &worker.items[i];
        if (h->pool)
          qm_pool_free(h->pool, h->p);
        else if (h->sized)
          qm_free_sized(h->p, h->size);
        else
          qm_free(h->p);
      }
      break;
    case W_ALLOC:
      errno = 0;
      worker.result = qm_malloc(worker.size);
      worker.error = errno;
      break;
    case W_THREAD_DONE:
      qm_thread_done();
      break;
    }
    worker.valid = qm_heap_validate();
    worker.request = W_IDLE;
    pthread_cond_broadcast(&worker.cond);
  }
  return NULL;
}

static void worker_run(int request) {
  pthread_mutex_lock(&worker.lock);
  worker.request = request;
  pthread_cond_broadcast(&worker.cond);
  while (worker.request != W_IDLE)
    pthread_cond_wait(&worker.cond, &worker.lock);
  pthread_mutex_unlock(&worker.lock);
  CHECK(worker.valid, "qm_heap_validate() failed on the worker thread");
}

static void start_once(void) {
  static bool started;
  if (started)
    return;
  started = true;
  /* An allocation first, so that options of "before the first allocation" are refused from now on. */
  qm_free(qm_malloc(1));
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker_main, NULL) != 0) {
    fprintf(stderr, "fuzz_api: cannot start the worker thread\n");
    abort();
  }
  pthread_detach(thread);
}

/* ---------------------------------------------------------------------------------------------
 * Sizes and alignments from the input
 * ------------------------------------------------------------------------------------------- */

/* A size: tiny, small, large, huge, near a boundary of the size classes, or absurd (*absurd set:
 * every allocation of it must fail with ENOMEM). */
static size_t read_size(reader_t *r, bool *absurd) {
  static const size_t edges[] = {16, 128, 1024, 4096, 8192, 64 * KiB, 512 * KiB, 2 * MiB, 4 * MiB};
  static const size_t huge[] = {
      SIZE_MAX,        SIZE_MAX - 15,   (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX / 2 + 1,
      (size_t)1 << 62, (size_t)1 << 60, SIZE_MAX - 4 * MiB,  SIZE_MAX / 3};
  uint8_t sel = rd8(r);
  size_t n = rd16(r);
  *absurd = false;
  switch (sel % 8) {
  case 0:
    return n % 256;
  case 1:
    return n % 4096;
  case 2:
    return n;
  case 3:
    return 64 * KiB + n * 32; /* large: up to 2 MiB + 64 KiB */
  case 4: {
    size_t edge = edges[n % (sizeof edges / sizeof edges[0])];
    size_t delta = (n >> 8) % 33;
    return edge + delta >= 16 ? edge + delta - 16 : 0;
  }
  case 5:
    return 2 * MiB + n * 64; /* huge: up to 6 MiB */
  case 6:
    *absurd = true;
    return huge[n % (sizeof huge / sizeof huge[0])];
  default:
    return n % 64;
  }
}

/* An alignment: a power of two up to 8 MiB, or (*bad set) a value that is not a power of two. */
static size_t read_alignment(reader_t *r, bool *bad) {
  static const size_t odd[] = {3, 24, 48, 1000, 4097, 12 * KiB, 3 * MiB, 6};
  uint8_t b = rd8(r);
  *bad = false;
  if (b % 32 < 24)
    return (size_t)1 << (b % 32);
  *bad = true;
  return odd[b % 8];
}

static size_t next_pow2(size_t x) {
  size_t p = 1;
  while (p < x)
    p <<= 1;
  return p;
}

/* ---------------------------------------------------------------------------------------------
 * Releasing blocks
 * ------------------------------------------------------------------------------------------- */

static void forget(slot_t *s) {
  live_bytes -= slot_cost(s);
  memset(s, 0, sizeof *s);
}

/* Frees a slot's block on this thread (checking it first); how: 0 free, 1 free_sized, 2 free_aligned_sized.
 */
static void release(slot_t *s, int how) {
  if (s->p == NULL)
    return;
  check_pattern("free", s->p, s->size, s->size, s->seed);
  if (s->kind == K_POOL) {
    qm_pool_free(pools[s->owner].pool, s->p);
  } else if (how == 2 && s->alignment != 0) {
    qm_free_aligned_sized(s->p, s->alignment, s->size);
  } else if (how >= 1) {
    qm_free_sized(s->p, s->size);
  } else {
    qm_free(s->p);
  }
  forget(s);
}

/* Puts a new block in slot i (whose old block was released by the caller). */
static void store(unsigned i, void *p, size_t size, size_t alignment, uint8_t kind, uint8_t owner, bool zero,
                  const char *what) {
  slot_t *s = &slots[i];
  s->p = p;
  s->size = size;
  s->alignment = alignment;
  s->kind = kind;
  s->owner = owner;
  s->seed = new_seed(i);
  live_bytes += slot_cost(s);
  check_new(what, p, size, alignment, zero, s->seed);
}

/* After a failed allocation that must fail, or one that may: NULL with errno ENOMEM. */
static void expect_enomem(const char *what, void *p, size_t size) {
  CHECK(p == NULL, "%s(%zu) succeeded: %p", what, size, p);
  check_errno(what, ENOMEM);
}

/* ---------------------------------------------------------------------------------------------
 * Operations on the malloc family
 * ------------------------------------------------------------------------------------------- */

static void op_malloc(reader_t *r, int which) {
  static const char *const names[] = {"malloc", "valloc", "pvalloc"};
  unsigned i = rd8(r) % NSLOTS;
  bool absurd;
  size_t size = read_size(r, &absurd);
  if (!absurd && !budget(size + PAGE))
    return;
  release(&slots[i], 0);
  errno = 0;
  void *p = which == 0 ? qm_malloc(size) : which == 1 ? qm_valloc(size) : qm_pvalloc(size);
  if (absurd) {
    expect_enomem(names[which], p, size);
    return;
  }
  CHECK(p != NULL, "%s(%zu) failed, errno %d", names[which], size, errno);
  if (which == 2) {
    size_t rounded = size == 0 ? PAGE : (size + PAGE - 1) & ~(size_t)(PAGE - 1);
    check_usable("pvalloc", p, rounded);
  }
  store(i, p, size, which == 0 ? 0 : PAGE, K_MALLOC, 0, false, names[which]);
}

static void op_calloc(reader_t *r) {
  unsigned i = rd8(r) % NSLOTS;
  size_t count = rd8(r);
  bool absurd;
  size_t size = read_size(r, &absurd);
  if (absurd) {
    /* count * size overflows, or is absurd. */
    errno = 0;
    void *p = qm_calloc(count | 2, size);
    expect_enomem("calloc", p, size);
    return;
  }
  size_t each = count == 0 ? size : size / count;
  size_t total = count * each;
  if (!budget(total))
    return;
  release(&slots[i], 0);
  errno = 0;
  void *p = qm_calloc(count, each);
  CHECK(p != NULL, "calloc(%zu, %zu) failed, errno %d", count, each, errno);
  store(i, p, total, 0, K_MALLOC, 0, true, "calloc");
}

/* realloc (which 0) or reallocarray (which 1) of slot i, also when empty (NULL). */
static void op_realloc(reader_t *r, int which) {
  unsigned i = rd8(r) % NSLOTS;
  size_t count = which ? 1 + rd8(r) % 8 : 1;
  bool absurd;
  size_t size = read_size(r, &absurd);
  slot_t *s = &slots[i];
  /* Pool objects are not malloc blocks; reallocarray (qm_realloc) of a heap's block could leave it in
   * the heap, which would then free it at destroy: the heap's blocks go through qm_heap_realloc. */
  if (s->p != NULL && (s->kind == K_POOL || (s->kind == K_HEAP && which)))
    return;
  if (!absurd && !budget(size * count + s->size))
    return;
  const char *what = which ? "reallocarray" : "realloc";
  if (s->p)
    check_pattern(what, s->p, s->size, s->size, s->seed);
  errno = 0;
  void *p;
  size_t total = size;
  if (which) {
    size_t each = absurd ? size : size / count;
    total = each * count;
    if (absurd && __builtin_mul_overflow(each, count, &total))
      total = SIZE_MAX;
    p = qm_reallocarray(s->p, each, count);
  } else if (s->p != NULL && s->kind == K_HEAP) {
    p = qm_heap_realloc(heaps[s->owner], s->p, size);
  } else {
    p = qm_realloc(s->p, size);
  }
  if (absurd) {
    expect_enomem(what, p, total);
    if (s->p)
      check_pattern("the block after a failed realloc", s->p, s->size, s->size, s->seed);
    return;
  }
  if (total == 0 && s->p != NULL) {
    /* realloc(p, 0) frees p and returns NULL. */
    CHECK(p == NULL, "%s(%p, 0) returned %p, expected NULL", what, (void *)s->p, p);
    forget(s);
    return;
  }
  CHECK(p != NULL, "%s(%p, %zu) failed, errno %d", what, (void *)s->p, total, errno);
  if (s->p)
    check_pattern(what, p, s->size, total, s->seed); /* the common prefix moved with the block */
  uint8_t kind = s->p != NULL && s->kind == K_HEAP ? K_HEAP : K_MALLOC;
  uint8_t owner = s->owner;
  uint32_t seed = s->p ? s->seed : new_seed(i);
  live_bytes -= slot_cost(s);
  s->p = p;
  s->size = total;
  s->alignment = 0;
  s->kind = kind;
  s->owner = kind == K_HEAP ? owner : 0;
  s->seed = seed;
  live_bytes += slot_cost(s);
  check_aligned(what, p, 16);
  check_usable(what, p, total);
  fill(p, total, seed);
}

/* aligned_alloc (0), posix_memalign (1), memalign (2). */
static void op_aligned(reader_t *r, int which) {
  static const char *const names[] = {"aligned_alloc", "posix_memalign", "memalign"};
  unsigned i = rd8(r) % NSLOTS;
  bool bad, absurd;
  size_t alignment = read_alignment(r, &bad);
  size_t size = read_size(r, &absurd);
  size_t effective = bad ? next_pow2(alignment) : alignment;
  if (!absurd && !budget(size + effective))
    return;
  void *p = NULL;
  errno = 0;
  if (which == 0) {
    p = qm_aligned_alloc(alignment, size);
  } else if (which == 1) {
    int saved = errno = 12345;
    int rc = qm_posix_memalign(&p, alignment, size);
    CHECK(errno == saved, "posix_memalign changed errno to %d", errno);
    bool invalid = bad || alignment % sizeof(void *) != 0;
    if (invalid || absurd) {
      CHECK(rc == (invalid ? EINVAL : ENOMEM), "posix_memalign(%zu, %zu) returned %d", alignment, size, rc);
      return;
    }
    CHECK(rc == 0 && p != NULL, "posix_memalign(%zu, %zu) failed: %d", alignment, size, rc);
  } else {
    p = qm_memalign(alignment, size);
  }
  if (which == 0 && bad) {
    CHECK(p == NULL, "aligned_alloc(%zu, %zu) accepted a bad alignment", alignment, size);
    check_errno("aligned_alloc", EINVAL);
    return;
  }
  if (absurd) {
    expect_enomem(names[which], p, size);
    return;
  }
  CHECK(p != NULL, "%s(%zu, %zu) failed, errno %d", names[which], alignment, size, errno);
  release(&slots[i], 0);
  store(i, p, size, effective, K_MALLOC, 0, false, names[which]);
}

static void op_free(reader_t *r, int how) {
  slot_t *s = &slots[rd8(r) % NSLOTS];
  if (s->p == NULL) {
    qm_free(NULL);
    qm_free_sized(NULL, 0);
    return;
  }
  release(s, how);
}

/* Writes over the slack between the requested and the usable size: it belongs to the block, so no
 * other block's pattern may change. */
static void op_usable(reader_t *r) {
  slot_t *s = &slots[rd8(r) % NSLOTS];
  if (s->p == NULL || s->kind == K_POOL) {
    CHECK(qm_usable_size(NULL) == 0, "usable_size(NULL) is not 0");
    return;
  }
  size_t usable = qm_usable_size(s->p);
  CHECK(usable >= s->size, "usable_size(%p) is %zu, below %zu", (void *)s->p, usable, s->size);
  size_t end = usable - s->size > 64 * KiB ? s->size + 64 * KiB : usable;
  memset(s->p + s->size, 0xa5, end - s->size);
  memset(s->p + usable - (usable - s->size < 4096 ? usable - s->size : 4096), 0x5a,
         usable - s->size < 4096 ? usable - s->size : 4096);
}

/* ---------------------------------------------------------------------------------------------
 * First-class heaps
 * ------------------------------------------------------------------------------------------- */

/* Forgets the slots whose blocks died with heap h (or pool h). */
static void forget_owned(uint8_t kind, unsigned owner) {
  for (unsigned i = 0; i < NSLOTS; i++)
    if (slots[i].p && slots[i].kind == kind && slots[i].owner == owner)
      forget(&slots[i]);
}

static void heap_destroy(unsigned h) {
  if (heaps[h] == NULL)
    return;
  for (unsigned i = 0; i < NSLOTS; i++)
    if (slots[i].p && slots[i].kind == K_HEAP && slots[i].owner == h)
      check_pattern("heap_destroy", slots[i].p, slots[i].size, slots[i].size, slots[i].seed);
  qm_heap_destroy(heaps[h]);
  heaps[h] = NULL;
  forget_owned(K_HEAP, h);
}

static void op_heap_new(reader_t *r) {
  unsigned h = rd8(r) % NHEAPS;
  heap_destroy(h);
  heaps[h] = qm_heap_new();
  CHECK(heaps[h] != NULL, "heap_new failed, errno %d", errno);
  CHECK(qm_heap_check(heaps[h]), "qm_heap_check failed on a new heap");
}

/* heap_malloc (0), heap_calloc (1), heap_aligned_alloc (2). */
static void op_heap_alloc(reader_t *r, int which) {
  static const char *const names[] = {"heap_malloc", "heap_calloc", "heap_aligned_alloc"};
  unsigned h = rd8(r) % NHEAPS;
  unsigned i = rd8(r) % NSLOTS;
  bool bad = false, absurd;
  size_t alignment = which == 2 ? read_alignment(r, &bad) : 0;
  size_t count = which == 1 ? rd8(r) % 16 : 1;
  size_t size = read_size(r, &absurd);
  if (heaps[h] == NULL)
    return;
  if (!absurd && !budget(size + alignment))
    return;
  errno = 0;
  void *p;
  size_t total = size;
  if (which == 0) {
    p = qm_heap_malloc(heaps[h], size);
  } else if (which == 1) {
    size_t each = absurd || count == 0 ? size : size / count;
    if (absurd)
      count |= 2;
    total = count * each;
    p = qm_heap_calloc(heaps[h], count, each);
  } else {
    p = qm_heap_aligned_alloc(heaps[h], alignment, size);
  }
  if (bad) {
    CHECK(p == NULL, "heap_aligned_alloc(%zu) accepted a bad alignment", alignment);
    check_errno("heap_aligned_alloc", EINVAL);
    return;
  }
  if (absurd) {
    expect_enomem(names[which], p, size);
    return;
  }
  CHECK(p != NULL, "%s(%zu) failed, errno %d", names[which], total, errno);
  release(&slots[i], 0);
  store(i, p, total, which == 2 ? alignment : 0, K_HEAP, (uint8_t)h, which == 1, names[which]);
}

/* qm_heap_realloc of any block but a pool object into heap h. */
static void op_heap_realloc(reader_t *r) {
  unsigned h = rd8(r) % NHEAPS;
  unsigned i = rd8(r) % NSLOTS;
  bool absurd;
  size_t size = read_size(r, &absurd);
  slot_t *s = &slots[i];
  if (heaps[h] == NULL || (s->p && s->kind == K_POOL))
    return;
  if (!absurd && !budget(size + s->size))
    return;
  if (s->p)
    check_pattern("heap_realloc", s->p, s->size, s->size, s->seed);
  errno = 0;
  void *p = qm_heap_realloc(heaps[h], s->p, size);
  if (absurd) {
    expect_enomem("heap_realloc", p, size);
    if (s->p)
      check_pattern("the block after a failed heap_realloc", s->p, s->size, s->size, s->seed);
    return;
  }
  if (size == 0 && s->p) {
    CHECK(p == NULL, "heap_realloc(%p, 0) returned %p", (void *)s->p, p);
    forget(s);
    return;
  }
  CHECK(p != NULL, "heap_realloc(%zu) failed, errno %d", size, errno);
  if (s->p)
    check_pattern("heap_realloc", p, s->size, size, s->seed);
  uint32_t seed = s->p ? s->seed : new_seed(i);
  live_bytes -= slot_cost(s);
  *s = (slot_t){.p = p, .size = size, .seed = seed, .kind = K_HEAP, .owner = (uint8_t)h};
  live_bytes += slot_cost(s);
  check_aligned("heap_realloc", p, 16);
  check_usable("heap_realloc", p, size);
  fill(p, size, seed);
}

/* ---------------------------------------------------------------------------------------------
 * Pools
 * ------------------------------------------------------------------------------------------- */

static void pool_destroy(unsigned k) {
  if (pools[k].pool == NULL)
    return;
  for (unsigned i = 0; i < NSLOTS; i++)
    if (slots[i].p && slots[i].kind == K_POOL && slots[i].owner == k)
      check_pattern("pool_destroy", slots[i].p, slots[i].size, slots[i].size, slots[i].seed);
  qm_pool_destroy(pools[k].pool);
  live_bytes -= pools[k].cost;
  memset(&pools[k], 0, sizeof pools[k]);
  forget_owned(K_POOL, k);
}

static void op_pool_new(reader_t *r) {
  unsigned k = rd8(r) % NPOOLS;
  uint8_t sel = rd8(r);
  size_t object_size = rd16(r);
  uint8_t a = rd8(r);
  uint8_t flags = rd8(r);
  if (sel % 4 == 3)
    object_size *= 16; /* up to 1 MiB */
  else if (sel % 4 != 2)
    object_size %= 512;
  size_t alignment = a % 16 < 13 ? (a % 16 == 0 ? 0 : (size_t)1 << (a % 16 - 1)) : 24;
  unsigned fl = flags % 8 == 7 ? 2u : flags % 2 ? QM_POOL_THREAD_SAFE : 0;
  /* Chunks hold 16 objects at least, and the slots hold at most NSLOTS objects live. */
  size_t cost = (NSLOTS + 16) * (object_size + (alignment == 24 ? 0 : alignment) + 16) + 64 * KiB;
  pool_destroy(k);
  if (!budget(cost))
    return;
  errno = 0;
  qm_pool_t *pool = fl == 0 && flags % 4 == 0 ? qm_pool_new(object_size, alignment)
                                              : qm_pool_new_ex(object_size, alignment, fl);
  bool bad = alignment == 24 || fl == 2;
  if (bad) {
    CHECK(pool == NULL, "pool_new accepted alignment %zu, flags %u", alignment, fl);
    check_errno("pool_new", EINVAL);
    return;
  }
  CHECK(pool != NULL, "pool_new(%zu, %zu) failed, errno %d", object_size, alignment, errno);
  size_t real = qm_pool_object_size(pool);
  size_t align = alignment ? alignment : 16;
  CHECK(real >= object_size && real % align == 0, "pool_object_size is %zu for %zu bytes aligned to %zu",
        real, object_size, align);
  pools[k] = (pool_state_t){pool, object_size, align, cost, fl == QM_POOL_THREAD_SAFE};
  live_bytes += cost;
}

static void op_pool_alloc(reader_t *r) {
  unsigned k = rd8(r) % NPOOLS;
  unsigned i = rd8(r) % NSLOTS;
  pool_state_t *ps = &pools[k];
  if (ps->pool == NULL || !budget(ps->object_size))
    return;
  release(&slots[i], 0);
  void *p = qm_pool_alloc(ps->pool);
  CHECK(p != NULL, "pool_alloc failed, errno %d", errno);
  slot_t *s = &slots[i];
  *s = (slot_t){.p = p, .size = ps->object_size, .seed = new_seed(i), .kind = K_POOL, .owner = (uint8_t)k};
  live_bytes += slot_cost(s);
  check_aligned("pool_alloc", p, ps->alignment < 8 ? 8 : ps->alignment);
  fill(p, s->size, s->seed);
}

static void op_pool_destroy(reader_t *r) { pool_destroy(rd8(r) % NPOOLS); }

/* ---------------------------------------------------------------------------------------------
 * Arenas
 * ------------------------------------------------------------------------------------------- */

static void arena_destroy(unsigned k) {
  arena_state_t *a = &arenas[k];
  if (a->arena == NULL)
    return;
  for (size_t j = 0; j < a->nblocks; j++)
    check_pattern("arena_destroy", a->blocks[j].p, a->blocks[j].size, a->blocks[j].size, a->blocks[j].seed);
  live_bytes -= arena_cost(a);
  qm_arena_destroy(a->arena);
  memset(a, 0, sizeof *a);
}

static void op_arena_new(reader_t *r) {
  unsigned k = rd8(r) % NARENAS;
  size_t capacity = (size_t)rd16(r) * 16; /* up to 1 MiB; 0 means the default */
  arena_destroy(k);
  arena_state_t *a = &arenas[k];
  a->arena = qm_arena_new(capacity);
  CHECK(a->arena != NULL, "arena_new(%zu) failed, errno %d", capacity, errno);
  CHECK(qm_arena_mark(a->arena) == 0, "a new arena's mark is not 0");
}

static void op_arena_alloc(reader_t *r, bool aligned) {
  unsigned k = rd8(r) % NARENAS;
  bool bad = false, absurd;
  size_t alignment = aligned ? read_alignment(r, &bad) : 16;
  size_t size = read_size(r, &absurd);
  arena_state_t *a = &arenas[k];
  if (a->arena == NULL || a->nblocks == ARENA_BLOCKS)
    return;
  if (!absurd)
    size %= MiB + 1;
  if (!bad && alignment > 64 * KiB) /* a bad one must stay bad: clamped, it would be a power of two */
    alignment = 64 * KiB;
  size_t before = qm_arena_mark(a->arena);
  CHECK(before >= a->last_mark, "arena mark went down from %zu to %zu", a->last_mark, before);
  arena_block_t b = {NULL, size, before, new_seed(NSLOTS + k)};
  if (!absurd && !budget(2 * (size + 64 * KiB)))
    return;
  errno = 0;
  b.p = aligned ? qm_arena_aligned_alloc(a->arena, alignment, size) : qm_arena_alloc(a->arena, size);
  if (bad) {
    CHECK(b.p == NULL, "arena_aligned_alloc accepted alignment %zu", alignment);
    check_errno("arena_aligned_alloc", EINVAL);
    return;
  }
  if (absurd) {
    expect_enomem("arena_alloc", b.p, size);
    return;
  }
  CHECK(b.p != NULL, "arena_alloc(%zu) failed, errno %d", size, errno);
  check_aligned("arena_alloc", b.p, alignment < 16 ? 16 : alignment);
  a->last_mark = qm_arena_mark(a->arena);
  CHECK(a->last_mark >= before + (size > 0), "arena mark %zu after a block of %zu made at %zu", a->last_mark,
        size, before);
  live_bytes -= arena_cost(a);
  a->blocks[a->nblocks++] = b;
  live_bytes += arena_cost(a);
  fill(b.p, size, b.seed);
}

static void op_arena_mark(reader_t *r) {
  arena_state_t *a = &arenas[rd8(r) % NARENAS];
  if (a->arena == NULL)
    return;
  if (a->nmarks == ARENA_MARKS) {
    memmove(a->marks, a->marks + 1, (ARENA_MARKS - 1) * sizeof a->marks[0]);
    a->nmarks--;
  }
  a->marks[a->nmarks++] = qm_arena_mark(a->arena);
}

/* Keeps the blocks made before `mark`. */
static void arena_drop_from(arena_state_t *a, size_t mark) {
  size_t kept = 0;
  live_bytes -= arena_cost(a);
  for (size_t j = 0; j < a->nblocks; j++) {
    if (a->blocks[j].premark < mark)
      a->blocks[kept++] = a->blocks[j];
  }
  a->nblocks = kept;
  live_bytes += arena_cost(a);
  for (size_t j = 0; j < a->nblocks; j++)
    check_pattern("a block kept by arena_reset_to", a->blocks[j].p, a->blocks[j].size, a->blocks[j].size,
                  a->blocks[j].seed);
}

static void op_arena_reset(reader_t *r, bool to_mark) {
  arena_state_t *a = &arenas[rd8(r) % NARENAS];
  uint8_t which = rd8(r);
  if (a->arena == NULL)
    return;
  if (to_mark && a->nmarks > 0) {
    size_t m = a->marks[which % a->nmarks];
    qm_arena_reset_to(a->arena, m);
    /* Marks above m are void now: positions above m will be handed out again. */
    size_t kept = 0;
    for (size_t j = 0; j < a->nmarks; j++)
      if (a->marks[j] <= m)
        a->marks[kept++] = a->marks[j];
    a->nmarks = kept;
    CHECK(qm_arena_mark(a->arena) == m, "arena mark is %zu after reset_to(%zu)", qm_arena_mark(a->arena), m);
    a->last_mark = m;
    arena_drop_from(a, m);
  } else if (!to_mark) {
    qm_arena_reset(a->arena);
    CHECK(qm_arena_mark(a->arena) == 0, "arena mark is %zu after reset", qm_arena_mark(a->arena));
    a->last_mark = 0;
    a->nmarks = 0;
    arena_drop_from(a, 0);
  }
}

static void op_arena_destroy(reader_t *r) { arena_destroy(rd8(r) % NARENAS); }

/* ---------------------------------------------------------------------------------------------
 * Stacks
 * ------------------------------------------------------------------------------------------- */

static void stack_destroy(unsigned k) {
  stack_state_t *st = &stacks[k];
  if (st->stack == NULL)
    return;
  for (size_t j = 0; j < st->depth; j++)
    check_pattern("stack_destroy", st->blocks[j].p, st->blocks[j].size, st->blocks[j].size,
                  st->blocks[j].seed);
  qm_stack_destroy(st->stack);
  live_bytes -= st->capacity;
  memset(st, 0, sizeof *st);
}

static void op_stack_new(reader_t *r) {
  unsigned k = rd8(r) % NSTACKS;
  size_t capacity = (size_t)rd16(r) * 16; /* up to 1 MiB */
  stack_destroy(k);
  if (!budget(capacity))
    return;
  stack_state_t *st = &stacks[k];
  st->stack = qm_stack_new(capacity);
  CHECK(st->stack != NULL, "stack_new(%zu) failed, errno %d", capacity, errno);
  st->capacity = (capacity + 15) & ~(size_t)15;
  live_bytes += st->capacity;
}

static void op_stack_alloc(reader_t *r) {
  unsigned k = rd8(r) % NSTACKS;
  bool absurd;
  size_t size = read_size(r, &absurd);
  stack_state_t *st = &stacks[k];
  if (st->stack == NULL || st->depth == STACK_DEPTH)
    return;
  if (!absurd)
    size %= 256 * KiB;
  size_t room = st->capacity - st->used;
  bool fits = room >= 16 && size <= room - 16;
  errno = 0;
  uint8_t *p = qm_stack_alloc(st->stack, size);
  if (!fits) {
    expect_enomem("stack_alloc", p, size);
    return;
  }
  CHECK(p != NULL, "stack_alloc(%zu) failed with %zu bytes left", size, room);
  if (st->used == 0 && st->base == NULL)
    st->base = p - 16;
  CHECK(p == st->base + st->used + 16, "stack_alloc returned %p, expected %p", (void *)p,
        (void *)(st->base + st->used + 16));
  check_aligned("stack_alloc", p, 16);
  st->used += 16 + ((size + 15) & ~(size_t)15);
  stack_block_t *b = &st->blocks[st->depth++];
  *b = (stack_block_t){p, size, new_seed(NSLOTS + NARENAS + k)};
  fill(p, size, b->seed);
}

static void op_stack_free(reader_t *r) {
  stack_state_t *st = &stacks[rd8(r) % NSTACKS];
  if (st->stack == NULL)
    return;
  if (st->depth == 0) {
    qm_stack_free(st->stack, NULL);
    return;
  }
  stack_block_t *b = &st->blocks[--st->depth];
  check_pattern("stack_free", b->p, b->size, b->size, b->seed);
  qm_stack_free(st->stack, b->p);
  st->used -= 16 + ((b->size + 15) & ~(size_t)15);
}

static void op_stack_destroy(reader_t *r) { stack_destroy(rd8(r) % NSTACKS); }

/* ---------------------------------------------------------------------------------------------
 * Threads, options, maintenance
 * ------------------------------------------------------------------------------------------- */

/* Hands the slots named by a 32-bit mask to the worker, which frees them. Pool objects go only
 * from thread-safe pools. */
static void op_worker_free(reader_t *r) {
  uint32_t mask = (uint32_t)rd16(r) | (uint32_t)rd16(r) << 16;
  uint8_t sized = rd8(r);
  worker.count = 0;
  for (unsigned i = 0; i < NSLOTS; i++) {
    slot_t *s = &slots[i];
    if (!(mask >> i & 1) || s->p == NULL)
      continue;
    if (s->kind == K_POOL && !pools[s->owner].thread_safe)
      continue;
    check_pattern("cross-thread free", s->p, s->size, s->size, s->seed);
    worker.items[worker.count++] =
        (handoff_t){s->p, s->size, s->kind == K_POOL ? pools[s->owner].pool : NULL, (sized >> (i % 8)) & 1};
    forget(s);
  }
  if (worker.count > 0)
    worker_run(W_FREE);
}

/* The worker allocates a block that the main thread keeps (and frees later, across threads). */
static void op_worker_alloc(reader_t *r) {
  unsigned i = rd8(r) % NSLOTS;
  bool absurd;
  size_t size = read_size(r, &absurd);
  if (!absurd && !budget(size))
    return;
  release(&slots[i], 0);
  worker.size = size;
  worker_run(W_ALLOC);
  if (absurd) {
    CHECK(worker.result == NULL && worker.error == ENOMEM, "malloc(%zu) on the worker: %p, errno %d", size,
          worker.result, worker.error);
    return;
  }
  CHECK(worker.result != NULL, "malloc(%zu) on the worker failed, errno %d", size, worker.error);
  store(i, worker.result, size, 0, K_MALLOC, 0, false, "malloc on the worker");
}

static void op_worker_done(void) { worker_run(W_THREAD_DONE); }

typedef struct {
  const char *name, *value;
  int error; /* 0: accepted */
} option_case_t;

static const option_case_t option_cases[] = {
    {"purge_delay", "0", 0},
    {"purge_delay", "1", 0},
    {"QMALLOC_PURGE_DELAY", "100ms", 0},
    {"purge_method", "free", 0},
    {"purge_method", "dontneed", 0},
    {"segment_decay", "0", 0},
    {"Segment_Decay", "1s", 0},
    {"show_stats", "0", 0},
    {"purge_delay", "banana", EINVAL},
    {"no_such_option", "1", EINVAL},
    {"thp", "1", EBUSY},
    {"arena_reserve", "64m", EBUSY},
    {"purge_delay", "61s", EINVAL},
    {"purge_method", "", EINVAL},
    {"verbose", "off", 0},
    {"segment_decay", "2", 0},
};

static void op_option(reader_t *r) {
  const option_case_t *c = &option_cases[rd8(r) % (sizeof option_cases / sizeof option_cases[0])];
  errno = 0;
  int rc = qm_option_set(c->name, c->value);
  if (c->error == 0) {
    CHECK(rc == 0, "option_set(%s, %s) failed, errno %d", c->name, c->value, errno);
  } else {
    CHECK(rc == -1 && errno == c->error, "option_set(%s, %s): %d, errno %d, expected errno %d", c->name,
          c->value, rc, errno, c->error);
  }
  char buf[64];
  CHECK(qm_option_get("purge_delay", buf, sizeof buf) == 0, "option_get(purge_delay) failed");
  errno = 0;
  CHECK(qm_option_get("purge_delay", buf, 1) == -1 && errno == ERANGE, "option_get into 1 byte did not fail");
}

static void reset_options(void) {
  qm_option_set("purge_delay", "100ms");
  qm_option_set("purge_method", "dontneed");
  qm_option_set("segment_decay", "1s");
}

static void op_stats(reader_t *r) {
  uint8_t which = rd8(r);
  if (which % 2 == 0) {
    qm_stats_t st;
    qm_stats_get(&st);
    CHECK(st.row_count == QM_STATS_ROWS, "stats row_count is %zu", st.row_count);
  } else {
    qm_process_info_t info;
    qm_process_info(&info);
    CHECK(info.heaps_active >= 1, "process_info: no active heap");
  }
}

/* ---------------------------------------------------------------------------------------------
 * The program
 * ------------------------------------------------------------------------------------------- */

enum {
  OP_MALLOC,
  OP_CALLOC,
  OP_REALLOC,
  OP_REALLOCARRAY,
  OP_FREE,
  OP_FREE_SIZED,
  OP_FREE_ALIGNED_SIZED,
  OP_POSIX_MEMALIGN,
  OP_ALIGNED_ALLOC,
  OP_MEMALIGN,
  OP_VALLOC,
  OP_PVALLOC,
  OP_USABLE_SIZE,
  OP_HEAP_NEW,
  OP_HEAP_MALLOC,
  OP_HEAP_CALLOC,
  OP_HEAP_ALIGNED_ALLOC,
  OP_HEAP_REALLOC,
  OP_HEAP_DESTROY,
  OP_POOL_NEW,
  OP_POOL_ALLOC,
  OP_POOL_FREE,
  OP_POOL_DESTROY,
  OP_ARENA_NEW,
  OP_ARENA_ALLOC,
  OP_ARENA_ALIGNED_ALLOC,
  OP_ARENA_MARK,
  OP_ARENA_RESET_TO,
  OP_ARENA_RESET,
  OP_ARENA_DESTROY,
  OP_STACK_NEW,
  OP_STACK_ALLOC,
  OP_STACK_FREE,
  OP_STACK_DESTROY,
  OP_WORKER_FREE,
  OP_WORKER_ALLOC,
  OP_WORKER_THREAD_DONE,
  OP_OPTION,
  OP_TRIM,
  OP_STATS,
  OP_COUNT
};

static void run_op(reader_t *r, unsigned op) {
  switch (op) {
  case OP_MALLOC:
    op_malloc(r, 0);
    break;
  case OP_CALLOC:
    op_calloc(r);
    break;
  case OP_REALLOC:
    op_realloc(r, 0);
    break;
  case OP_REALLOCARRAY:
    op_realloc(r, 1);
    break;
  case OP_FREE:
    op_free(r, 0);
    break;
  case OP_FREE_SIZED:
    op_free(r, 1);
    break;
  case OP_FREE_ALIGNED_SIZED:
    op_free(r, 2);
    break;
  case OP_POSIX_MEMALIGN:
    op_aligned(r, 1);
    break;
  case OP_ALIGNED_ALLOC:
    op_aligned(r, 0);
    break;
  case OP_MEMALIGN:
    op_aligned(r, 2);
    break;
  case OP_VALLOC:
    op_malloc(r, 1);
    break;
  case OP_PVALLOC:
    op_malloc(r, 2);
    break;
  case OP_USABLE_SIZE:
    op_usable(r);
    break;
  case OP_HEAP_NEW:
    op_heap_new(r);
    break;
  case OP_HEAP_MALLOC:
    op_heap_alloc(r, 0);
    break;
  case OP_HEAP_CALLOC:
    op_heap_alloc(r, 1);
    break;
  case OP_HEAP_ALIGNED_ALLOC:
    op_heap_alloc(r, 2);
    break;
  case OP_HEAP_REALLOC:
    op_heap_realloc(r);
    break;
  case OP_HEAP_DESTROY:
    heap_destroy(rd8(r) % NHEAPS);
    break;
  case OP_POOL_NEW:
    op_pool_new(r);
    break;
  case OP_POOL_ALLOC:
    op_pool_alloc(r);
    break;
  case OP_POOL_FREE:
    op_free(r, 0); /* any slot: release() frees pool objects into their pool */
    break;
  case OP_POOL_DESTROY:
    op_pool_destroy(r);
    break;
  case OP_ARENA_NEW:
    op_arena_new(r);
    break;
  case OP_ARENA_ALLOC:
    op_arena_alloc(r, false);
    break;
  case OP_ARENA_ALIGNED_ALLOC:
    op_arena_alloc(r, true);
    break;
  case OP_ARENA_MARK:
    op_arena_mark(r);
    break;
  case OP_ARENA_RESET_TO:
    op_arena_reset(r, true);
    break;
  case OP_ARENA_RESET:
    op_arena_reset(r, false);
    break;
  case OP_ARENA_DESTROY:
    op_arena_destroy(r);
    break;
  case OP_STACK_NEW:
    op_stack_new(r);
    break;
  case OP_STACK_ALLOC:
    op_stack_alloc(r);
    break;
  case OP_STACK_FREE:
    op_stack_free(r);
    break;
  case OP_STACK_DESTROY:
    op_stack_destroy(r);
    break;
  case OP_WORKER_FREE:
    op_worker_free(r);
    break;
  case OP_WORKER_ALLOC:
    op_worker_alloc(r);
    break;
  case OP_WORKER_THREAD_DONE:
    op_worker_done();
    break;
  case OP_OPTION:
    op_option(r);
    break;
  case OP_TRIM:
    qm_trim(rd8(r));
    break;
  case OP_STATS:
    op_stats(r);
    break;
  }
}

/* The checks run after every operation: the structures of the caller's heap and of every live
 * first-class heap, and the pattern of one slot (in turn). */
static void check_all(void) {
  CHECK(qm_heap_validate(), "qm_heap_validate() failed");
  for (unsigned h = 0; h < NHEAPS; h++)
    if (heaps[h])
      CHECK(qm_heap_check(heaps[h]), "qm_heap_check(heap %u) failed", h);
  slot_t *s = &slots[step_no % NSLOTS];
  if (s->p)
    check_pattern("a live block", s->p, s->size, s->size, s->seed);
}

/* Releases everything, so that each input starts from nothing. */
static void release_all(void) {
  for (unsigned i = 0; i < NSLOTS; i++)
    release(&slots[i], 0);
  for (unsigned k = 0; k < NHEAPS; k++)
    heap_destroy(k);
  for (unsigned k = 0; k < NPOOLS; k++)
    pool_destroy(k);
  for (unsigned k = 0; k < NARENAS; k++)
    arena_destroy(k);
  for (unsigned k = 0; k < NSTACKS; k++)
    stack_destroy(k);
  CHECK(live_bytes == 0, "%zu live bytes left after releasing everything", live_bytes);
  reset_options();
  next_seed = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  start_once();
  reader_t r = {data, size};
  for (step_no = 0; r.left > 0 && step_no < MAX_STEPS; step_no++) {
    run_op(&r, rd8(&r) % OP_COUNT);
    check_all();
  }
  release_all();
  check_all();
  return 0;
}
