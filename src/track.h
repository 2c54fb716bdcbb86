/* track.h - hooks that tell memory tools which memory holds a live block: Valgrind's memcheck
 * (client requests, built with -DQMALLOC_VALGRIND=ON) and AddressSanitizer (poisoning, built with
 * -DQMALLOC_ASAN_POISON=ON inside an ASan build). In every other build each hook is empty and
 * compiles to nothing, so the fast paths of alloc-inl.h stay as they are.
 *
 * The contract, in block terms (sizes are usable sizes: a small block's class size, a large block's
 * span, a huge block's mapping):
 *   qm_track_malloc   a block is handed out: addressable from now on (defined if zero);
 *   qm_track_free     a block is given back: nothing may touch it until it is handed out again
 *                     (size 0 for huge blocks: their memory is unmapped, never poisoned);
 *   qm_track_resize   a live block changes size in place;
 *   qm_track_reserve  memory that holds no block yet (a fresh page, a free span): ASan only, as
 *                     memcheck already knows mmap'd memory and learns about blocks one by one;
 *   qm_track_release  memory about to go back to the OS: ASan forgets its poison there;
 *   qm_track_link_*   the allocator's own access to the link word of a free block (block-inl.h).
 */
#ifndef QM_TRACK_H
#define QM_TRACK_H

#include "types.h"

#if QM_VALGRIND
#include <valgrind/memcheck.h>
#endif
#if QM_ASAN_POISON
#include <sanitizer/asan_interface.h>
#endif

static inline void qm_track_malloc(void *p, size_t size, bool zero) {
#if QM_VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zero);
#endif
#if QM_ASAN_POISON
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
  (void)p, (void)size, (void)zero;
}

static inline void qm_track_free(void *p, size_t size) {
#if QM_VALGRIND
  VALGRIND_FREELIKE_BLOCK(p, 0);
#endif
#if QM_ASAN_POISON
  ASAN_POISON_MEMORY_REGION(p, size);
#endif
  (void)p, (void)size;
}

static inline void qm_track_resize(void *p, size_t old_size, size_t new_size) {
#if QM_VALGRIND
  VALGRIND_RESIZEINPLACE_BLOCK(p, old_size, new_size, 0);
#endif
#if QM_ASAN_POISON
  ASAN_POISON_MEMORY_REGION(p, old_size);
  ASAN_UNPOISON_MEMORY_REGION(p, new_size);
#endif
  (void)p, (void)old_size, (void)new_size;
}

/* A huge block handed out: fresh from the OS, so zero, and never poisoned (see below); telling
 * ASan would only write shadow memory for the whole mapping. */
static inline void qm_track_huge_malloc(void *p, size_t size) {
#if QM_VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 1);
#endif
  (void)p, (void)size;
}

/* A huge block resized in place. Huge memory is never poisoned: what leaves the block is unmapped,
 * and poison left on unmapped addresses would wrongly cover the next mapping placed there. */
static inline void qm_track_huge_resize(void *p, size_t old_size, size_t new_size) {
#if QM_VALGRIND
  VALGRIND_RESIZEINPLACE_BLOCK(p, old_size, new_size, 0);
#endif
  (void)p, (void)old_size, (void)new_size;
}

static inline void qm_track_reserve(void *p, size_t size) {
#if QM_ASAN_POISON
  ASAN_POISON_MEMORY_REGION(p, size);
#endif
  (void)p, (void)size;
}

static inline void qm_track_release(void *p, size_t size) {
#if QM_ASAN_POISON
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
  (void)p, (void)size;
}

/* Opens the link word of a free block for the allocator (to read it, or to write it), and closes
 * it again. Between the two, the word is addressable; outside, a program touching it is reported. */
static inline void qm_track_link_open(const void *block, bool write) {
#if QM_VALGRIND
  if (write)
    VALGRIND_MAKE_MEM_UNDEFINED(block, sizeof(void *));
  else
    VALGRIND_MAKE_MEM_DEFINED(block, sizeof(void *));
#endif
#if QM_ASAN_POISON
  ASAN_UNPOISON_MEMORY_REGION(block, sizeof(void *));
#endif
  (void)block, (void)write;
}

static inline void qm_track_link_close(const void *block) {
#if QM_VALGRIND
  VALGRIND_MAKE_MEM_NOACCESS(block, sizeof(void *));
#endif
#if QM_ASAN_POISON
  ASAN_POISON_MEMORY_REGION(block, sizeof(void *));
#endif
  (void)block;
}

#endif /* QM_TRACK_H */
