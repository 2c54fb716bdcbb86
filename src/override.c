/* override.c - the standard names: malloc, free and the rest of the family, and the glibc extras
 * programs call (malloc_usable_size, malloc_trim, malloc_stats, mallinfo2). Built only when
 * QMALLOC_OVERRIDE is on; then linking or preloading the library makes qmalloc the process's malloc.
 *
 * Each function is the qm_ one under another name; the fast paths are inlined here too, so a call
 * to malloc costs exactly what a call to qm_malloc does.
 */
#define _GNU_SOURCE
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define QM_EXPORT __attribute__((visibility("default")))

QM_EXPORT void *malloc(size_t size) { return qm_malloc_inline(size); }
QM_EXPORT void *calloc(size_t count, size_t size) { return qm_calloc_inline(count, size); }
QM_EXPORT void free(void *p) { qm_free_inline(p); }
QM_EXPORT void *realloc(void *p, size_t size) { return qm_realloc(p, size); }
QM_EXPORT void *reallocarray(void *p, size_t count, size_t size) { return qm_reallocarray(p, count, size); }
QM_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  return qm_posix_memalign(out, alignment, size);
}
QM_EXPORT void *aligned_alloc(size_t alignment, size_t size) { return qm_aligned_alloc(alignment, size); }
QM_EXPORT void *memalign(size_t alignment, size_t size) { return qm_memalign(alignment, size); }
QM_EXPORT void *valloc(size_t size) { return qm_valloc(size); }
QM_EXPORT void *pvalloc(size_t size) { return qm_pvalloc(size); }
QM_EXPORT size_t malloc_usable_size(void *p) { return qm_usable_size(p); }

/* C23. Declared here because older C libraries do not declare them. */
QM_EXPORT void free_sized(void *p, size_t size);
QM_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size);
void free_sized(void *p, size_t size) { qm_free_sized(p, size); }
void free_aligned_sized(void *p, size_t alignment, size_t size) { qm_free_aligned_sized(p, alignment, size); }

/* glibc's internal names: some programs and static links reach for them. */
QM_EXPORT void *__libc_malloc(size_t size);
QM_EXPORT void *__libc_calloc(size_t count, size_t size);
QM_EXPORT void *__libc_realloc(void *p, size_t size);
QM_EXPORT void __libc_free(void *p);
QM_EXPORT void *__libc_memalign(size_t alignment, size_t size);
void *__libc_malloc(size_t size) { return qm_malloc_inline(size); }
void *__libc_calloc(size_t count, size_t size) { return qm_calloc_inline(count, size); }
void *__libc_realloc(void *p, size_t size) { return qm_realloc(p, size); }
void __libc_free(void *p) { qm_free_inline(p); }
void *__libc_memalign(size_t alignment, size_t size) { return qm_memalign(alignment, size); }

QM_EXPORT int malloc_trim(size_t pad) { return qm_trim(pad); }

QM_EXPORT struct mallinfo2 mallinfo2(void) {
  qm_process_info_t info;
  qm_process_info(&info);
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = info.segment_bytes;
  m.hblks = info.huge_blocks;
  m.hblkhd = info.huge_bytes;
  return m;
}

QM_EXPORT void malloc_stats(void) {
  qm_process_info_t info;
  qm_process_info(&info);
  _qm_message("version %s: %zu segments (%zu bytes), %zu huge blocks (%zu bytes), %zu thread heaps, "
              "%zu abandoned segments, %zu mmap / %zu munmap calls",
              QMALLOC_VERSION_STRING, info.segments_mapped, info.segment_bytes, info.huge_blocks,
              info.huge_bytes, info.heaps_active, info.segments_abandoned, info.os_map_calls,
              info.os_unmap_calls);
}
