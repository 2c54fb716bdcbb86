/* debug.h - the debug layer of libqmalloc-debug.so (built with QM_VARIANT_DEBUG=1; src/debug.c).
 *
 * In that library, while QMALLOC_DEBUG is on (its default there), every entry point of alloc.c,
 * free.c and override.c hands its call to the functions below, which wrap each block in a header
 * and a redzone, keep freed blocks in a quarantine, check frees, and report leaks at exit
 * (docs/DEBUGGING.md). Other builds never include this header: their entry points are unchanged.
 */
#ifndef QM_DEBUG_LAYER_H
#define QM_DEBUG_LAYER_H

#include "internal.h"

#if !QM_VARIANT_DEBUG
#error "debug.h belongs to the debug variant (QM_VARIANT_DEBUG=1)"
#endif

/* True when the entry points must go through the debug layer. Reads the options first, so the very
 * first allocation of the process already sees QMALLOC_DEBUG. */
static inline bool qm_debug_active(void) {
  qm_ensure_process_init();
  return _qm_options.debug;
}

/* malloc (alignment 16, zero false), calloc (zero true) and the aligned family (alignment a power
 * of two). NULL with errno ENOMEM when out of memory. */
void *_qm_debug_alloc(size_t alignment, size_t size, bool zero);
void *_qm_debug_calloc(size_t count, size_t size);
void *_qm_debug_realloc(void *p, size_t size);
/* free; free_sized and free_aligned_sized pass the size (and alignment) the caller promises,
 * which must be what was requested (alignment 0: no promise; size SIZE_MAX: no promise). */
void _qm_debug_free(void *p, size_t alignment, size_t size);
/* The size that was requested: all a debug block lets its owner use. */
size_t _qm_debug_usable_size(const void *p);
/* Checks the header and redzone of every live block and the fill of every quarantined one;
 * reports the first corruption and aborts. */
void _qm_debug_validate(void);

#endif /* QM_DEBUG_LAYER_H */
