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

#ifdef __cplusplus
}
#endif

#endif /* QMALLOC_H */
