/* qmalloc.h - the public interface of qmalloc, a general-purpose memory allocator.
 *
 * qmalloc serves the standard malloc family (malloc, free, ...) when it is preloaded or linked, and
 * exports the same operations under the qm_ prefix so that a program can call it explicitly beside
 * another allocator. Everything a program may rely on is declared here; nothing under src/ is public.
 */
#ifndef QMALLOC_H
#define QMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QMALLOC_VERSION_MAJOR 0
#define QMALLOC_VERSION_MINOR 1
#define QMALLOC_VERSION_PATCH 0
#define QMALLOC_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define QM_API __attribute__((visibility("default")))
#define QM_MALLOC_LIKE __attribute__((malloc, warn_unused_result))
#define QM_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define QM_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#else
#define QM_API
#define QM_MALLOC_LIKE
#define QM_ALLOC_SIZE(n)
#define QM_ALLOC_SIZE2(n, m)
#endif

/* ---- The malloc family, prefixed. Same semantics as the standard functions (see README). ---- */

QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(1) void *qm_malloc(size_t size);
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE2(1, 2) void *qm_calloc(size_t count, size_t size);
/* realloc(p, 0) frees p and returns NULL, as glibc does. */
QM_API QM_ALLOC_SIZE(2) void *qm_realloc(void *p, size_t size);
QM_API QM_ALLOC_SIZE2(2, 3) void *qm_reallocarray(void *p, size_t count, size_t size);
QM_API void qm_free(void *p);
/* C23: the size (and alignment) must be those the block was requested with. Builds with internal
 * checks (QM_DEBUG >= 1) abort when the size exceeds the block's usable size. */
QM_API void qm_free_sized(void *p, size_t size);
QM_API void qm_free_aligned_sized(void *p, size_t alignment, size_t size);

/* Aligned allocation. Any power of two is accepted as alignment; qm_aligned_alloc does not require
 * size to be a multiple of alignment. */
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(2) void *qm_aligned_alloc(size_t alignment, size_t size);
QM_API int qm_posix_memalign(void **out, size_t alignment, size_t size);
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(2) void *qm_memalign(size_t alignment, size_t size);
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(1) void *qm_valloc(size_t size);
QM_API QM_MALLOC_LIKE void *qm_pvalloc(size_t size);

/* The number of bytes usable at p (at least what was requested); 0 for NULL. */
QM_API size_t qm_usable_size(const void *p);

/* ---- Introspection and maintenance ---- */

/* The library version, as "major.minor.patch". */
QM_API const char *qm_version(void);

/* Walks every structure of the calling thread's heap (its segments, spans, pages, free lists,
 * size-class queues and span bins), checking their invariants. Returns true when all hold;
 * otherwise prints what is wrong on stderr and returns false. Any thread may call it at any time;
 * it inspects only the caller's own heap, which no other thread changes. */
QM_API bool qm_heap_validate(void);

/* True when p lies in memory that qmalloc manages (a block, or metadata). Cheap: one table lookup. */
QM_API bool qm_is_heap_pointer(const void *p);

/* Releases what can be released now: the calling thread's empty pages and segments, the pages of
 * its free spans, cached empty segments, and the segments of exited threads (adopted by the caller
 * and released if nothing in them is live). Other live threads' heaps are not touched. Returns 1
 * if memory was returned to the OS, 0 otherwise (as malloc_trim). */
QM_API int qm_trim(size_t pad);

/* Hands the calling thread's heap back (as if the thread exited). The thread may allocate again
 * afterwards; it then gets a fresh heap. Until then, its frees of other threads' blocks go to
 * their owners one at a time instead of in batches. Useful before a thread parks for a long time. */
QM_API void qm_thread_done(void);

/* Process-wide counters (always available, cheap: maintained on slow paths only). */
typedef struct qm_process_info_s {
  size_t segments_mapped;    /* segments currently mapped */
  size_t segment_bytes;      /* bytes of address space held by segments */
  size_t huge_blocks;        /* huge blocks currently mapped */
  size_t huge_bytes;         /* bytes held by huge mappings */
  size_t heaps_active;       /* heaps in use: thread heaps and first-class heaps (qm_heap_new) */
  size_t segments_abandoned; /* segments waiting to be adopted by a live thread */
  size_t os_map_calls;       /* mmap calls so far */
  size_t os_unmap_calls;     /* munmap calls so far */
} qm_process_info_t;
QM_API void qm_process_info(qm_process_info_t *info);

/* ---- First-class heaps (docs/POOLS.md) ----
 *
 * A heap of its own, destroyed in one call with every block still in it. Blocks come from the
 * same pages, size classes and checks as malloc's and are freed with qm_free()/free() (or realloc'ed)
 * like any other block, from any thread.
 * Threads: allocation (qm_heap_malloc, ...) and qm_heap_destroy only on the thread that created the
 * heap; anything else aborts with a message. When that thread exits (or calls qm_thread_done) the
 * heap is orphaned: its blocks stay valid and may still be freed, it allocates no more, and any one
 * thread may then destroy it (nothing else frees its memory). Blocks of a destroyed heap must not
 * be used or freed again. */
typedef struct qm_heap_s qm_heap_t;

/* A new empty heap owned by the calling thread; NULL with errno ENOMEM when out of memory. */
QM_API qm_heap_t *qm_heap_new(void);
/* Frees every block of the heap at once, then the heap itself. NULL does nothing. Aborts when
 * another live thread owns the heap. */
QM_API void qm_heap_destroy(qm_heap_t *h);
/* malloc, calloc and aligned_alloc from h: same semantics as the qm_ functions (errno ENOMEM on
 * failure; EINVAL for an alignment that is not a power of two). */
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(2) void *qm_heap_malloc(qm_heap_t *h, size_t size);
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE2(2, 3) void *qm_heap_calloc(qm_heap_t *h, size_t count, size_t size);
QM_API QM_MALLOC_LIKE QM_ALLOC_SIZE(3) void *qm_heap_aligned_alloc(qm_heap_t *h, size_t alignment,
                                                                   size_t size);
/* realloc into h: p may be any qmalloc block (or NULL); the result is a block of h. (qm_realloc of
 * a block of h may move it to the calling thread's own heap.) size 0 frees p and returns NULL. */
QM_API QM_ALLOC_SIZE(3) void *qm_heap_realloc(qm_heap_t *h, void *p, size_t size);
/* As qm_heap_validate, for h: checks every structure of h (and its list of huge blocks). Call it on
 * the owning thread, or on an orphaned heap. */
QM_API bool qm_heap_check(qm_heap_t *h);

/* ---- Object pools: fixed-size objects, allocated and freed in O(1) ----
 *
 * alignment 0 means 16; it must be a power of two (objects are at least pointer-aligned).
 * object_size may be 0 (objects of one pointer) and at most 64 MiB. NULL with errno EINVAL for a bad
 * alignment or flag, ENOMEM when out of memory. A plain pool is for one thread at a time (the
 * caller serialises); QM_POOL_THREAD_SAFE makes every call take the pool's spin lock. Freeing an
 * object into a pool it does not come from aborts with a message; so does the most common double
 * free (the object freed last, freed again). Memory goes back to qmalloc only at qm_pool_destroy,
 * which frees every object, live or not. */
typedef struct qm_pool_s qm_pool_t;
#define QM_POOL_THREAD_SAFE 1u

QM_API qm_pool_t *qm_pool_new(size_t object_size, size_t alignment);
QM_API qm_pool_t *qm_pool_new_ex(size_t object_size, size_t alignment, unsigned flags);
/* An object, or NULL with errno ENOMEM. */
QM_API QM_MALLOC_LIKE void *qm_pool_alloc(qm_pool_t *p);
/* NULL does nothing. */
QM_API void qm_pool_free(qm_pool_t *p, void *obj);
QM_API void qm_pool_destroy(qm_pool_t *p);
/* The pool's object size (object_size rounded up to the alignment). */
QM_API size_t qm_pool_object_size(const qm_pool_t *p);

/* ---- Arenas (regions): bump allocation, freed all at once or back to a mark ----
 *
 * Single-threaded: one thread at a time. The arena grows: when its current chunk is full it takes a
 * new one (sizes start at initial_capacity, 0 meaning 64 KiB, and double up to 64 MiB); a request
 * above a quarter of the chunk size gets a block of its own. NULL with errno ENOMEM only when qmalloc
 * itself is out of memory. */
typedef struct qm_arena_s qm_arena_t;

QM_API qm_arena_t *qm_arena_new(size_t initial_capacity);
/* size bytes aligned to 16. size 0 returns a valid pointer that may equal the next block. */
QM_API void *qm_arena_alloc(qm_arena_t *a, size_t size);
/* alignment: a power of two (else NULL with EINVAL). */
QM_API void *qm_arena_aligned_alloc(qm_arena_t *a, size_t alignment, size_t size);
/* The arena's current top, to return to with qm_arena_reset_to. Marks only grow between resets. */
QM_API size_t qm_arena_mark(qm_arena_t *a);
/* Frees everything allocated after the mark. A mark above the top (not a mark of this arena, or
 * one taken before a reset) aborts with a message. */
QM_API void qm_arena_reset_to(qm_arena_t *a, size_t mark);
/* Frees everything; keeps the newest (largest) chunk, so a loop that fills and resets the arena
 * stops growing after its first rounds. Marks taken before are void. */
QM_API void qm_arena_reset(qm_arena_t *a);
/* Frees the arena and everything in it. NULL does nothing. */
QM_API void qm_arena_destroy(qm_arena_t *a);

/* ---- Stacks: LIFO allocation in a fixed buffer ----
 *
 * Single-threaded. The stack does not grow: each block takes its size rounded up to 16 plus 16
 * bytes, and an allocation that does not fit in the capacity left returns NULL with errno ENOMEM.
 * qm_stack_free must be given the newest live block (NULL does nothing); any other pointer aborts
 * with "stack block freed out of order". */
typedef struct qm_stack_s qm_stack_t;

QM_API qm_stack_t *qm_stack_new(size_t capacity);
/* size bytes aligned to 16, or NULL (ENOMEM). */
QM_API void *qm_stack_alloc(qm_stack_t *s, size_t size);
QM_API void qm_stack_free(qm_stack_t *s, void *p);
/* Frees the stack and every block in it. NULL does nothing. */
QM_API void qm_stack_destroy(qm_stack_t *s);
/* ---- Options (README, "Environment") ----
 *
 * Every option is read once from the environment as QMALLOC_<NAME> when the library starts
 * (setuid and setgid programs ignore them). A program may also set them: the name is given with
 * or without the QMALLOC_ prefix, in any case ("purge_delay", "QMALLOC_PURGE_DELAY"), the value
 * as in the environment ("250ms", "64m", "1", "free"). Some options only take effect before the
 * first allocation (the README's table says which).
 *
 * qm_option_set returns 0, or -1 with errno: EINVAL for an unknown name or a value that does not
 * parse or is out of range (nothing is printed), EBUSY for an option that cannot change once
 * memory has been allocated, ENOTSUP for a mode this build of the library does not have. */
QM_API int qm_option_set(const char *name, const char *value);
/* Writes the option's value as text ("100ms", "0", "dontneed", "64m") into buf. Returns 0, or -1
 * with errno EINVAL (unknown name) or ERANGE (buf too small). */
QM_API int qm_option_get(const char *name, char *buf, size_t size);

/* ---- Statistics (README, "Statistics") ----
 *
 * The figures are computed when asked for: counters kept on slow paths, plus a walk over the pages
 * of every heap for the blocks in use. What other threads do meanwhile is seen as a snapshot. The
 * library's statistics level (0, 1 or 2, chosen when it is built) says which figures exist:
 *   0  none: every figure below is 0 except the process counters (mapped, segments, OS calls);
 *   1  everything but requests and bytes requested of small blocks, and peak_bytes_in_use;
 *   2  everything (the fast paths then count requests and bytes in use). */

#define QM_STATS_SMALL_CLASSES 80                      /* small size classes */
#define QM_STATS_ROW_LARGE QM_STATS_SMALL_CLASSES      /* the row of all large blocks */
#define QM_STATS_ROW_HUGE (QM_STATS_SMALL_CLASSES + 1) /* the row of all huge blocks */
#define QM_STATS_ROWS (QM_STATS_SMALL_CLASSES + 2)

/* One row: a small size class, all large blocks (64 KiB to 2 MiB), or all huge blocks. */
typedef struct qm_class_stats_s {
  size_t block_size;      /* the class size (what a block of the class occupies); 0 for large, huge */
  size_t requests;        /* allocations served (small classes: level 2 only) */
  size_t bytes_requested; /* bytes asked for by those allocations */
  size_t blocks_in_use;   /* live blocks */
  size_t bytes_in_use;    /* their size: blocks x class size; large: span bytes; huge: usable bytes */
  size_t pages;           /* small: pages of the class; large: spans; huge: mappings */
  size_t committed;       /* bytes of those pages, spans or mappings */
} qm_class_stats_t;

typedef struct qm_stats_s {
  int level; /* the statistics level of this library: 0, 1 or 2 */
  /* Blocks, over all rows. */
  size_t requests;          /* allocations served (level 1: large and huge only) */
  size_t bytes_requested;   /* bytes asked for by them */
  size_t blocks_in_use;     /* live blocks */
  size_t bytes_in_use;      /* their bytes, at block size */
  size_t peak_bytes_in_use; /* level 2: the highest bytes_in_use so far (see README) */
  size_t committed;         /* pages, large spans and huge mappings holding blocks */
  double fragmentation;     /* 1 - bytes_in_use / committed, at this moment (0 when empty) */
  /* Memory. */
  size_t mapped;            /* address space held: segments (4 MiB each) and huge mappings */
  size_t peak_mapped;       /* the highest `mapped` so far */
  size_t metadata;          /* segment headers and slice descriptors */
  size_t free_dirty;        /* free spans in segments that may still be resident */
  size_t free_clean;        /* free spans given back to the OS, or never touched */
  size_t resident_estimate; /* committed + free_dirty + metadata: what qmalloc may hold resident */
  size_t process_resident;  /* the resident set of the whole process (VmRSS of /proc/self/status) */
  size_t bytes_purged;      /* bytes given back to the OS with madvise so far */
  /* Operating-system calls so far. */
  size_t mmap_calls, munmap_calls, madvise_calls, mremap_calls; /* process_madvise counts as madvise */
  /* Structures. */
  size_t segments;           /* normal segments mapped */
  size_t segments_peak;      /* the most segments mapped at once */
  size_t segments_abandoned; /* segments of exited threads waiting to be adopted */
  size_t segments_cached;    /* empty segments kept for reuse */
  size_t huge_blocks;        /* huge blocks (each a mapping) */
  size_t heaps;              /* thread heaps in use */
  size_t arena_reserved;     /* address space reserved by QMALLOC_ARENA_RESERVE */
  size_t arena_used;         /* the part of it handed out as segments */
  /* Per row: small classes 0 .. QM_STATS_SMALL_CLASSES - 1, then QM_STATS_ROW_LARGE and
   * QM_STATS_ROW_HUGE. */
  size_t row_count; /* QM_STATS_ROWS */
  qm_class_stats_t rows[QM_STATS_ROWS];
} qm_stats_t;

/* Fills *out. Allocates nothing. */
QM_API void qm_stats_get(qm_stats_t *out);
/* Prints the statistics as a table (what malloc_stats prints on stderr). */
QM_API void qm_stats_print(FILE *out);
/* Writes the statistics and the options in force as one JSON object. Returns 0, or -1 on a write
 * error. */
QM_API int qm_stats_json(FILE *out);

/* ---- Heap profile (README, "Memory report and heap profile"; docs/REPORT.md) ----
 *
 * libqmalloc-profile.so (`qmalloc-run --variant profile`, or `--report FILE`) captures a call stack
 * about every QMALLOC_PROFILE_SAMPLE bytes allocated (default 512 KiB). qm_profile_dump writes what
 * the samples stand for as folded stacks, one line per stack, the largest first:
 *     main;parse_file;read_record;xstrdup 1048576
 * frames from the outermost to the one that called malloc, separated by ';', then a space and the
 * estimated bytes allocated by that stack since the start. Flame-graph tools read this format.
 * Returns 0, or -1 with errno: ENOTSUP in other builds of the library, or on a write error. */
QM_API int qm_profile_dump(FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* QMALLOC_H */
