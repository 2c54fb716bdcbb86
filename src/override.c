/* override.c - the standard names: malloc, free and the rest of the family, and the glibc extras
 * programs call (malloc_usable_size, malloc_trim, malloc_stats, mallinfo2, mallinfo). Built only when
 * QMALLOC_OVERRIDE is on; then linking or preloading the library makes qmalloc the process's malloc.
 *
 * Each function is the qm_ one under another name; the fast paths are inlined here too, so a call
 * to malloc costs exactly what a call to qm_malloc does. In the trace variant (QM_VARIANT_TRACE) the
 * QM_TRACE_* hooks of trace.h record each call; in every other build they are the bare calls.
 */
#define _GNU_SOURCE
#include "alloc-inl.h"
#include "qmalloc.h"
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define QM_EXPORT __attribute__((visibility("default")))

#if QM_VARIANT_DEBUG
/* The debug variant: through the qm_ entry points, which hand the call to the debug layer. */
#define MALLOC_ENTRY(size) qm_malloc(size)
#define CALLOC_ENTRY(count, size) qm_calloc(count, size)
#define FREE_ENTRY(p) qm_free(p)
#else
#define MALLOC_ENTRY(size) qm_malloc_inline(size)
#define CALLOC_ENTRY(count, size) qm_calloc_inline(count, size)
#define FREE_ENTRY(p) qm_free_inline(p)
#endif

QM_EXPORT void *malloc(size_t size) { return QM_TRACE_ALLOC(MALLOC, 0, size, MALLOC_ENTRY(size)); }
QM_EXPORT void *calloc(size_t count, size_t size) {
  return QM_TRACE_ALLOC(CALLOC, count, size, CALLOC_ENTRY(count, size));
}
QM_EXPORT void free(void *p) {
  QM_TRACE_FREE(FREE, p, 0, 0);
  FREE_ENTRY(p);
}
QM_EXPORT void *realloc(void *p, size_t size) {
  return QM_TRACE_REALLOC(REALLOC, p, 1, size, qm_realloc(p, size));
}
QM_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  return QM_TRACE_REALLOC(REALLOCARRAY, p, count, size, qm_reallocarray(p, count, size));
}
QM_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  int result = qm_posix_memalign(out, alignment, size);
  QM_TRACE_NOTE_ALLOC(POSIX_MEMALIGN, alignment, size, result == 0 ? *out : NULL);
  return result;
}
QM_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  return QM_TRACE_ALLOC(ALIGNED_ALLOC, alignment, size, qm_aligned_alloc(alignment, size));
}
QM_EXPORT void *memalign(size_t alignment, size_t size) {
  return QM_TRACE_ALLOC(MEMALIGN, alignment, size, qm_memalign(alignment, size));
}
QM_EXPORT void *valloc(size_t size) { return QM_TRACE_ALLOC(VALLOC, 0, size, qm_valloc(size)); }
QM_EXPORT void *pvalloc(size_t size) { return QM_TRACE_ALLOC(PVALLOC, 0, size, qm_pvalloc(size)); }
QM_EXPORT size_t malloc_usable_size(void *p) { return qm_usable_size(p); }

/* C23. Declared here because older C libraries do not declare them. */
QM_EXPORT void free_sized(void *p, size_t size);
QM_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size);
void free_sized(void *p, size_t size) {
  QM_TRACE_FREE(FREE_SIZED, p, 0, size);
  qm_free_sized(p, size);
}
void free_aligned_sized(void *p, size_t alignment, size_t size) {
  QM_TRACE_FREE(FREE_ALIGNED, p, alignment, size);
  qm_free_aligned_sized(p, alignment, size);
}

/* glibc's internal names: some programs and static links reach for them. */
QM_EXPORT void *__libc_malloc(size_t size);
QM_EXPORT void *__libc_calloc(size_t count, size_t size);
QM_EXPORT void *__libc_realloc(void *p, size_t size);
QM_EXPORT void __libc_free(void *p);
QM_EXPORT void *__libc_memalign(size_t alignment, size_t size);
void *__libc_malloc(size_t size) { return QM_TRACE_ALLOC(MALLOC, 0, size, MALLOC_ENTRY(size)); }
void *__libc_calloc(size_t count, size_t size) {
  return QM_TRACE_ALLOC(CALLOC, count, size, CALLOC_ENTRY(count, size));
}
void *__libc_realloc(void *p, size_t size) {
  return QM_TRACE_REALLOC(REALLOC, p, 1, size, qm_realloc(p, size));
}
void __libc_free(void *p) {
  QM_TRACE_FREE(FREE, p, 0, 0);
  FREE_ENTRY(p);
}
void *__libc_memalign(size_t alignment, size_t size) {
  return QM_TRACE_ALLOC(MEMALIGN, alignment, size, qm_memalign(alignment, size));
}

QM_EXPORT int malloc_trim(size_t pad) { return qm_trim(pad); }

/* mallinfo2 in qmalloc's terms. glibc's convention is kept: `arena` and `uordblks` cover the
 * ordinary heap and `hblkhd` the separately mapped blocks, so a program's "total in use" of
 * uordblks + hblkhd counts each byte once.
 *   arena     committed bytes of small pages and large spans (huge mappings excluded)
 *   ordblks   0 (free space is not kept as chunks; fordblks has the bytes)
 *   smblks, fsmblks  0 (no fastbins)
 *   hblks     huge blocks (each its own mapping)
 *   hblkhd    bytes of the huge mappings
 *   usmblks   peak bytes in use (QMALLOC_STATS=2 builds; else 0, as glibc leaves it)
 *   uordblks  bytes in use in small and large blocks, at block size
 *   fordblks  arena - uordblks: free space inside the committed pages and spans
 *   keepcost  0 (nothing is kept at the top of a heap for trimming)
 * A library built without statistics (QMALLOC_STATS=0) reports the bytes of the segments mapped as
 * arena, and hblks/hblkhd; the rest is 0. */
QM_EXPORT struct mallinfo2 mallinfo2(void) {
  qm_stats_t stats;
  qm_stats_get(&stats);
  const qm_class_stats_t *huge = &stats.rows[QM_STATS_ROW_HUGE];
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = stats.committed - huge->committed;
  m.uordblks = stats.bytes_in_use - huge->bytes_in_use;
  m.fordblks = m.arena > m.uordblks ? m.arena - m.uordblks : 0;
  m.hblks = stats.huge_blocks;
  m.hblkhd = huge->committed;
  m.usmblks = stats.peak_bytes_in_use;
  if (stats.level == 0) {
    qm_process_info_t info;
    qm_process_info(&info);
    m.arena = info.segment_bytes;
    m.hblks = info.huge_blocks;
    m.hblkhd = info.huge_bytes;
  }
  return m;
}

#ifdef __GLIBC__
/* The older int version, deprecated by glibc but still called: the same figures, saturated. */
static int saturated(size_t n) { return n > INT_MAX ? INT_MAX : (int)n; }
QM_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m;
  m.arena = saturated(m2.arena);
  m.ordblks = saturated(m2.ordblks);
  m.smblks = saturated(m2.smblks);
  m.hblks = saturated(m2.hblks);
  m.hblkhd = saturated(m2.hblkhd);
  m.usmblks = saturated(m2.usmblks);
  m.fsmblks = saturated(m2.fsmblks);
  m.uordblks = saturated(m2.uordblks);
  m.fordblks = saturated(m2.fordblks);
  m.keepcost = saturated(m2.keepcost);
  return m;
}
#endif

/* The statistics table on stderr (README, "Statistics"), written without allocating. */
QM_EXPORT void malloc_stats(void) { _qm_stats_print_stderr(); }
