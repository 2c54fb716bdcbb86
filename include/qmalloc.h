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
 * afterwards; it then gets a fresh heap. Useful before a thread parks for a long time. */
QM_API void qm_thread_done(void);

/* Process-wide counters (always available, cheap: maintained on slow paths only). */
typedef struct qm_process_info_s {
  size_t segments_mapped;    /* segments currently mapped */
  size_t segment_bytes;      /* bytes of address space held by segments */
  size_t huge_blocks;        /* huge blocks currently mapped */
  size_t huge_bytes;         /* bytes held by huge mappings */
  size_t heaps_active;       /* thread heaps in use */
  size_t segments_abandoned; /* segments waiting to be adopted by a live thread */
  size_t os_map_calls;       /* mmap calls so far */
  size_t os_unmap_calls;     /* munmap calls so far */
} qm_process_info_t;
QM_API void qm_process_info(qm_process_info_t *info);

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
  size_t process_resident;  /* the resident set of the whole process (/proc/self/statm) */
  size_t bytes_purged;      /* bytes given back to the OS with madvise so far */
  /* Operating-system calls so far. */
  size_t mmap_calls, munmap_calls, madvise_calls, mremap_calls;
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

#ifdef __cplusplus
}
#endif

#endif /* QMALLOC_H */
