/* internal.h - what the files of qmalloc share: attributes, assertions, address arithmetic, size
 * classes, and the functions each layer offers the ones above it.
 *
 * Layers, each using only those before it (the include order of the design):
 *   os.c (system calls) -> segment.c (segments, segment map, abandonment) -> span.c (free spans,
 *   large blocks) -> page.c (small pages, the small-object slow path) -> huge.c (direct mappings)
 *   -> heap.c (thread heaps) -> alloc.c / free.c (entry points) -> override.c (malloc names).
 *   init.c, options.c and validate.c stand beside them.
 * Names: qm_ public, _qm_ shared between files, plain names file-static.
 */
#ifndef QM_INTERNAL_H
#define QM_INTERNAL_H

#include "types.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------------------------------- */

#define qm_likely(x) __builtin_expect(!!(x), 1)
#define qm_unlikely(x) __builtin_expect(!!(x), 0)
#define qm_cold __attribute__((cold, noinline))
#define qm_noreturn __attribute__((noreturn))
#define qm_printf_like(f, a) __attribute__((format(printf, f, a)))

/* The thread's heap. initial-exec TLS: one fs-relative load, no call. See docs/DESIGN.md on why
 * this also works when the library is dlopen'ed (these 16 bytes fit glibc's static TLS surplus). */
extern __thread qm_heap_t *_qm_tls_heap __attribute__((tls_model("initial-exec")));
/* The thread has given its heap back (it is exiting, or called qm_thread_done): its frees of other
 * threads' blocks no longer take a heap to batch them in (free.c, remote_free). */
extern __thread bool _qm_tls_heap_given_back __attribute__((tls_model("initial-exec")));
/* The map byte of the thread's heap (QM_MAP_NO_OWNER while it has none): set with _qm_tls_heap. */
extern __thread uint8_t _qm_tls_map_owner __attribute__((tls_model("initial-exec")));

extern qm_heap_t _qm_empty_heap; /* the heap of a thread that has not allocated yet */
extern qm_page_t _qm_empty_page; /* has no free block: makes the fast path fall through */

/* Whether the CPU has x86's PREFETCHW (init.c reads it once at start-up; false elsewhere). */
extern bool _qm_cpu_prefetchw;

/* Asks for the cache line at p in the state a write needs, so that the write that follows does
 * not wait for other cores to give it up. Compilers emit a read prefetch for a write hint on x86
 * unless told the CPU has PREFETCHW, which not every x86-64 CPU has: the caller passes
 * _qm_cpu_prefetchw, read once before its loop (a loop that calls out would load it again each
 * time). A prefetch never faults, whatever p is. */
static inline void qm_prefetch_for_write(const void *p, bool cpu_prefetchw) {
#if defined(__x86_64__)
  if (qm_likely(cpu_prefetchw)) {
    __asm__ volatile("prefetchw (%0)" ::"r"(p));
    return;
  }
#else
  (void)cpu_prefetchw;
#endif
  __builtin_prefetch(p, 1);
}

/* ---------------------------------------------------------------------------------------------
 * Fatal errors and assertions (reported without allocating)
 * ------------------------------------------------------------------------------------------- */

/* Prints "qmalloc: <message>" as one line on stderr and aborts. */
qm_cold qm_noreturn void _qm_fatal(const char *fmt, ...) qm_printf_like(1, 2);
/* Prints "qmalloc: <message>" on stderr and returns. */
void _qm_message(const char *fmt, ...) qm_printf_like(1, 2);
void _qm_vmessage(const char *fmt, va_list args);

qm_cold qm_noreturn void _qm_assert_fail(const char *expr, const char *file, int line, const char *func);

#define QM_ASSERT_AT(level, expr)                                                                            \
  do {                                                                                                       \
    if (QM_DEBUG >= (level) && qm_unlikely(!(expr)))                                                         \
      _qm_assert_fail(#expr, __FILE__, __LINE__, __func__);                                                  \
  } while (0)
#define qm_assert(expr) QM_ASSERT_AT(1, expr)          /* cheap */
#define qm_assert_internal(expr) QM_ASSERT_AT(2, expr) /* internal consistency */
#define qm_assert_expensive(expr) QM_ASSERT_AT(3, expr)

/* The validator of validate.c, for expensive assertions: checks the calling thread's heap. */
bool _qm_heap_is_valid(qm_heap_t *heap);

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

/* A 64-bit mixing function (splitmix64's finaliser): every input bit reaches every output bit.
 * For hashing addresses and stacks and for seeding; not a cryptographic function. */
static inline uint64_t qm_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

static inline size_t qm_align_up(size_t n, size_t alignment) {
  return (n + alignment - 1) & ~(alignment - 1);
}
static inline uintptr_t qm_align_up_ptr(uintptr_t p, size_t alignment) {
  return (p + alignment - 1) & ~(uintptr_t)(alignment - 1);
}
static inline bool qm_is_power_of_two(size_t n) { return n != 0 && (n & (n - 1)) == 0; }
static inline size_t qm_log2_floor(size_t n) { return (size_t)(63 - __builtin_clzll(n)); }
static inline size_t qm_next_power_of_two(size_t n) {
  return n <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(n - 1));
}

/* A number that differs between live threads: the thread pointer where one is cheap to read. */
static inline uintptr_t _qm_thread_id(void) {
#if defined(__x86_64__)
  uintptr_t tp;
  __asm__("movq %%fs:0, %0" : "=r"(tp));
  return tp;
#elif defined(__aarch64__)
  uintptr_t tp;
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
  return tp;
#else
  return (uintptr_t)&_qm_tls_heap;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * Address arithmetic: from a block to its metadata in O(1)
 * ------------------------------------------------------------------------------------------- */

/* The segment holding p. (p - 1) so that a huge block placed exactly one segment size after its
 * header still finds it; no block ever starts at a segment's first byte. */
static inline qm_segment_t *qm_segment_of(const void *p) {
  return (qm_segment_t *)(((uintptr_t)p - 1) & ~(uintptr_t)QM_SEGMENT_MASK);
}

/* The segment holding p, when p is known to lie in a normal segment (never at its first byte). */
static inline qm_segment_t *qm_segment_of_normal(const void *p) {
  return (qm_segment_t *)((uintptr_t)p & ~(uintptr_t)QM_SEGMENT_MASK);
}

/* The head descriptor of the span holding p (a page or a large block): the slice index from p's
 * address bits, and slice_head says where its head's descriptor is. */
static inline qm_page_t *qm_page_of(qm_segment_t *segment, const void *p) {
  size_t index = ((uintptr_t)p >> QM_SLICE_SHIFT) & (QM_SLICES_PER_SEGMENT - 1);
  return (qm_page_t *)((uint8_t *)segment + segment->slice_head[index]);
}

static inline qm_segment_t *qm_segment_of_page(const qm_page_t *page) {
  return (qm_segment_t *)((uintptr_t)page & ~(uintptr_t)QM_SEGMENT_MASK);
}
static inline size_t qm_slice_index(const qm_segment_t *segment, const qm_page_t *page) {
  return (size_t)(page - segment->slices);
}
/* Address of the first byte of the span whose head descriptor is page. */
static inline uint8_t *qm_page_start(const qm_page_t *page) {
  qm_segment_t *segment = qm_segment_of_page(page);
  return (uint8_t *)segment + (qm_slice_index(segment, page) << QM_SLICE_SHIFT);
}

/* The decay passes look at the small page again, or no more (the segment's decay_watch, types.h). */
static inline void qm_page_watch(const qm_page_t *page) {
  qm_assert_internal(page->kind == QM_SPAN_SMALL && page->slice_count > 0);
  qm_segment_t *segment = qm_segment_of_page(page);
  size_t index = qm_slice_index(segment, page);
  segment->decay_watch[index / 64] |= 1ull << (index % 64);
}
static inline void qm_page_unwatch(const qm_page_t *page) {
  qm_segment_t *segment = qm_segment_of_page(page);
  size_t index = qm_slice_index(segment, page);
  segment->decay_watch[index / 64] &= ~(1ull << (index % 64));
}
/* The page's state in the decay passes, without the flags (types.h, qm_purge_mark_t). */
static inline unsigned qm_purge_state(const qm_page_t *page) { return page->purge_mark & QM_PURGE_STATE; }
static inline bool qm_page_is_watched(const qm_page_t *page) {
  const qm_segment_t *segment = qm_segment_of_page(page);
  size_t index = qm_slice_index(segment, page);
  return (segment->decay_watch[index / 64] >> (index % 64)) & 1;
}

/* The head descriptor that slice_head names for the slice whose descriptor is slice. */
static inline qm_page_t *qm_slice_head(qm_page_t *slice) {
  qm_segment_t *segment = qm_segment_of_page(slice);
  return (qm_page_t *)((uint8_t *)segment + segment->slice_head[qm_slice_index(segment, slice)]);
}
/* Makes each of the count slices from `first` name its own descriptor (metadata, freed spans). */
static inline void qm_slice_head_reset(qm_page_t *first, size_t count) {
  qm_segment_t *segment = qm_segment_of_page(first);
  uint16_t offset = (uint16_t)((uint8_t *)first - (uint8_t *)segment);
  uint16_t *head = &segment->slice_head[qm_slice_index(segment, first)];
  for (size_t i = 0; i < count; i++, offset += sizeof(qm_page_t))
    head[i] = offset;
}
/* Names page as the head of each of the count slices from it (small pages and large blocks). */
static inline void qm_slice_head_fill(qm_page_t *page, size_t count) {
  qm_segment_t *segment = qm_segment_of_page(page);
  uint16_t offset = (uint16_t)((uint8_t *)page - (uint8_t *)segment);
  uint16_t *head = &segment->slice_head[qm_slice_index(segment, page)];
  for (size_t i = 0; i < count; i++)
    head[i] = offset;
}

/* slice_class of the slice holding p (what a free by another thread goes by). */
static inline uint8_t qm_slice_class_of(const qm_segment_t *segment, const void *p) {
  return segment->slice_class[((uintptr_t)p >> QM_SLICE_SHIFT) & (QM_SLICES_PER_SEGMENT - 1)];
}
/* Marks the count slices of the span whose head is page as holding `what` (a slice_class value). */
static inline void qm_slice_class_set(qm_page_t *page, size_t count, uint8_t what) {
  qm_segment_t *segment = qm_segment_of_page(page);
  qm_assert_internal(qm_slice_index(segment, page) < QM_SLICES_PER_SEGMENT &&
                     count <= QM_SLICES_PER_SEGMENT - qm_slice_index(segment, page));
  memset(&segment->slice_class[qm_slice_index(segment, page)], what, count);
}

/* Walks the spans of a segment from a thread that does not own it (the statistics, the report's
 * heap map): returns the span at or after slice *index, with its slice count in *count, and moves
 * *index past it; NULL at the end. The owner may be changing the spans meanwhile, so every field is
 * a relaxed snapshot, and a slice count that cannot be right moves on by one slice: the walk ends
 * whatever it reads. */
static inline qm_page_t *qm_segment_next_span_snapshot(qm_segment_t *segment, size_t *index, size_t *count) {
  while (*index < QM_SLICES_PER_SEGMENT) {
    qm_page_t *span = &segment->slices[*index];
    size_t slices = __atomic_load_n(&span->slice_count, __ATOMIC_RELAXED);
    if (slices == 0 || slices > QM_SLICES_PER_SEGMENT - *index) {
      (*index)++;
      continue;
    }
    *count = slices;
    *index += slices;
    return span;
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Segment map: which 4 MiB regions of the address space qmalloc owns. One byte per region, in
 * .bss (64 MiB of address space, resident only where written: one 4 KiB page per 16 GiB used).
 * ------------------------------------------------------------------------------------------- */

enum {
  QM_MAP_NONE = 0,   /* never ours */
  QM_MAP_NORMAL = 1, /* a live normal segment with no owner's byte (below) */
  QM_MAP_HUGE = 2,   /* the header region of a live huge block */
  QM_MAP_FREED = 3,  /* was ours, now unmapped or cached: a free here is a double or invalid free */
};
/* A live normal segment owned by a thread heap is marked with that heap's own byte instead of
 * QM_MAP_NORMAL (heap.c gives each heap struct one as it is carved, while they last), so that the
 * free fast path tells "this thread's segment" from the byte it reads anyway, without reading the
 * segment header's owner (DESIGN.md, section 6, "The owner's byte in the segment map"). Segments of
 * first-class heaps, abandoned ones and those of heaps without a byte are QM_MAP_NORMAL.
 * QM_MAP_NO_OWNER is never stored: it is the byte of heaps that have none and of threads with no
 * heap, which therefore never match. */
#define QM_MAP_OWNED_MIN 4u
#define QM_MAP_NO_OWNER 255u
#define QM_MAP_ENTRIES ((size_t)1 << (48 - QM_SEGMENT_SHIFT))
extern _Atomic uint8_t _qm_segment_map[QM_MAP_ENTRIES];

/* The map is indexed by the region p lies in. A huge block placed exactly one segment after its
 * header has both regions marked, so this works for every block start. */
static inline size_t qm_map_index(const void *p) { return (uintptr_t)p >> QM_SEGMENT_SHIFT; }
/* The state of p's region: an owner's byte reads as QM_MAP_NORMAL. */
static inline unsigned qm_map_state(const void *p) {
  size_t i = qm_map_index(p);
  if (qm_unlikely(i >= QM_MAP_ENTRIES))
    return QM_MAP_NONE;
  unsigned state = atomic_load_explicit(&_qm_segment_map[i], memory_order_relaxed);
  return state >= QM_MAP_OWNED_MIN ? QM_MAP_NORMAL : state;
}
void _qm_segment_map_set(const void *segment, unsigned state);

/* The free fast path's read of p's byte, owners' bytes as they are: one byte load, which it compares
 * with the thread's byte; NULL reads entry 0, which is NONE. There is no bounds check: a "pointer"
 * at or above 2^48 is not a user-space address, and the read past the map faults (as the use of such
 * a pointer would) or finds a value after which the segment header read faults; either way nothing
 * is written. */
static inline unsigned qm_map_byte(const void *p) {
  return atomic_load_explicit(&_qm_segment_map[qm_map_index(p)], memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Size classes
 *
 *   class:  0    1    2  ...   7  |   8    9  ...  15  |  16   17  ...  23  | ...  |  79
 *   size:  16   32   48  ...  128 | 144  160  ... 256  | 288  320  ... 512  | ...  | 65536
 *           step 16               | 8 per doubling: step = 2^(k-3) for sizes in (2^k, 2^(k+1)]
 * ------------------------------------------------------------------------------------------- */

static inline size_t qm_size_class(size_t size) {
  if (size <= 128)
    return size <= 16 ? 0 : (size - 1) >> 4;
  size_t k = qm_log2_floor(size - 1); /* size in (2^k, 2^(k+1)] */
  size_t step_shift = k - 3;
  return 8 + (k - 7) * 8 + (((size - 1) >> step_shift) & 7);
}

/* The block size of class c, as a constant expression: it fills _qm_class_sizes (page.c). The
 * inner conditional keeps the shift counts of the unused branch non-negative. */
#define QM_CLASS_SIZE_ABOVE_128(c)                                                                           \
  (((size_t)1 << (7 + ((c)-8) / 8)) + ((((c)-8) % 8 + 1) << (4 + ((c)-8) / 8)))
#define QM_CLASS_SIZE(c) ((c) < 8 ? ((size_t)(c) + 1) * 16 : QM_CLASS_SIZE_ABOVE_128((c) < 8 ? 8 : (c)))

extern const uint32_t _qm_class_sizes[QM_CLASS_COUNT];

static inline size_t qm_class_size(size_t cls) { return _qm_class_sizes[cls]; }

/* Slices in a page of the class: 16 KiB for blocks up to QM_SMALL_PAGE_MAX_BLOCK, 64 KiB for blocks
 * up to 8 KiB, else room for 8 blocks. Why the smallest classes get the smallest pages: a page goes
 * back to the span layer, where any class can use its memory, only once all its blocks are free,
 * and a page of 16 KiB empties far more often than one of 64 KiB when a program's phases free
 * most of their small objects but leave survivors scattered among them (docs/DESIGN.md, section 4). */
static inline size_t qm_class_page_slices(size_t cls) {
  size_t size = qm_class_size(cls);
  if (size <= QM_SMALL_PAGE_MAX_BLOCK)
    return QM_SMALL_PAGE_SLICES;
  if (size <= 8 * 1024)
    return 8;
  size_t slices = (8 * size + QM_SLICE_SIZE - 1) / QM_SLICE_SIZE;
  return slices;
}

/* ---------------------------------------------------------------------------------------------
 * Page lists (size-class queues and span bins): doubly linked through next/prev.
 * ------------------------------------------------------------------------------------------- */

static inline void qm_list_push_front(qm_page_list_t *list, qm_page_t *page) {
  page->prev = NULL;
  page->next = list->first;
  if (list->first)
    list->first->prev = page;
  else
    list->last = page;
  list->first = page;
}

static inline void qm_list_push_back(qm_page_list_t *list, qm_page_t *page) {
  page->next = NULL;
  page->prev = list->last;
  if (list->last)
    list->last->next = page;
  else
    list->first = page;
  list->last = page;
}

static inline void qm_list_remove(qm_page_list_t *list, qm_page_t *page) {
  if (page->prev)
    page->prev->next = page->next;
  else
    list->first = page->next;
  if (page->next)
    page->next->prev = page->prev;
  else
    list->last = page->prev;
  page->next = page->prev = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Locks: only on paths a steady-state allocation never takes (segment adoption, heap pool).
 * ------------------------------------------------------------------------------------------- */

void _qm_lock(qm_lock_t *lock);
static inline void _qm_unlock(qm_lock_t *lock) {
  atomic_store_explicit(&lock->locked, 0, memory_order_release);
}
static inline bool _qm_trylock(qm_lock_t *lock) {
  return atomic_exchange_explicit(&lock->locked, 1, memory_order_acquire) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * os.c: every system call. Sizes are multiples of the OS page; addresses OS-page aligned.
 * ------------------------------------------------------------------------------------------- */

size_t _qm_os_page_size(void);
/* Fresh zeroed read-write memory, or NULL. */
void *_qm_os_map(size_t size);
/* Fresh memory of `size` bytes at an address that is `alignment`-aligned plus `offset`
 * (offset < alignment), or NULL. */
void *_qm_os_map_aligned(size_t size, size_t alignment, size_t offset);
void _qm_os_unmap(void *p, size_t size);
/* Makes [p, p + size) inaccessible (a guard page); false if the system refused. */
bool _qm_os_protect_none(void *p, size_t size);
/* Gives the physical pages back with the configured method (QMALLOC_PURGE_METHOD); the range stays
 * mapped. Returns what the memory holds afterwards: QM_MEMORY_ZERO (MADV_DONTNEED), QM_MEMORY_LAZY
 * (MADV_FREE: the OS takes the pages when it needs them), or QM_MEMORY_DIRTY when the kernel
 * refused (locked pages): nothing, or not all, was given back. */
qm_memory_t _qm_os_purge(void *p, size_t size);
/* Ranges waiting to be purged together (_qm_os_purge_add). Invariant: ranges[0, count) are OS-page
 * aligned, disjoint, and hold nothing anybody reads: the caller flushes the list before any of
 * that memory is handed out or released, and before the list goes out of scope. */
#define QM_PURGE_LIST_MAX 64
typedef struct qm_purge_list_s {
  size_t count;
  struct {
    void *start;
    size_t bytes;
  } ranges[QM_PURGE_LIST_MAX];
} qm_purge_list_t;
/* Adds a range to the list: joined to the last one when they touch; the list is flushed when full. */
void _qm_os_purge_add(qm_purge_list_t *list, void *p, size_t size);
/* Purges every range of the list, with one system call where the kernel allows it, and empties it. */
void _qm_os_purge_flush(qm_purge_list_t *list);
/* Moves/resizes a mapping: in place when possible (may_move false), else to `target` if non-NULL.
 * Returns the new address or NULL (the old mapping is then unchanged). */
void *_qm_os_remap(void *p, size_t old_size, size_t new_size, void *target);
/* After an mremap onto `target` (size bytes, mapped by us) failed: the kernel may or may not have
 * unmapped the target range already, and another thread may have mapped something into a hole
 * since. Unmaps the range only where it is a hole it can take back, never another mapping; a
 * range still mapped is left in place (address space only: none of its pages was touched). */
void _qm_os_release_failed_target(void *target, size_t size);
/* Advises transparent huge pages for [p, p + size) (MADV_HUGEPAGE); no effect where the system
 * has none. */
void _qm_os_advise_huge_pages(void *p, size_t size);
/* Whether a page fault in a range advised for huge pages never waits for the kernel to reclaim or
 * compact memory (its defrag setting is "defer" or "never"). Read once. */
bool _qm_os_huge_faults_never_stall(void);
/* Whether mremap can move a range that spans several kernel mappings (VMAs) as a whole (Linux
 * 6.17 and later); it never resizes one. Probed once, with a few system calls. */
bool _qm_os_moves_across_mappings(void);
/* A fresh zeroed segment (QM_SEGMENT_SIZE bytes, aligned to it): carved from the arena reserved
 * with QMALLOC_ARENA_RESERVE while it lasts, else mapped; advised for transparent huge pages
 * with QMALLOC_THP. NULL when out of memory. _qm_os_unmap takes arena segments back. */
void *_qm_os_map_segment(void);
/* Bytes of the arena reserved and handed out as segments (both 0 without an arena). */
void _qm_os_arena_info(size_t *reserved, size_t *used);
/* While held, nothing qmalloc mapped is unmapped (munmap waits), so a thread reading another
 * heap's segments (statistics) never touches memory that went away. Take it after the heap-pool
 * lock, never the other way round, and release it before anything that may allocate. */
void _qm_os_hold_mappings(void);
void _qm_os_release_mappings(void);
void _qm_os_fork_prepare(void);
void _qm_os_fork_parent(void);
void _qm_os_fork_child(void);
/* The resident set of the whole process in bytes, and in *peak (unless NULL) the highest it has
 * been since its exec, from /proc/self/status (0 where unreadable). The kernel keeps the counts in
 * per-CPU batches: they may be off by some hundreds of KiB. */
size_t _qm_os_resident_bytes(size_t *peak);
void _qm_os_write_stderr(const char *s, size_t n);
/* Keeps a copy of stderr (at start), and puts it back at exit if the program closed fd 2. */
void _qm_os_stderr_keep(void);
void _qm_os_stderr_restore(void);
const char *_qm_os_getenv(const char *name);
/* The environment, or NULL in setuid/setgid programs (which ignore QMALLOC_* variables). */
char *const *_qm_os_environ(void);
int _qm_os_getpid(void);
/* Monotonic clock, for decay decisions on slow paths. */
uint64_t _qm_os_now_ns(void);
/* The same clock at a few milliseconds' resolution, several times cheaper to read. */
uint64_t _qm_os_now_coarse_ns(void);

/* ---------------------------------------------------------------------------------------------
 * Statistics kept always (slow paths only): relaxed atomic counters.
 * ------------------------------------------------------------------------------------------- */

typedef struct qm_counters_s {
  _Atomic size_t segments_mapped, segments_peak, segment_bytes;
  _Atomic size_t huge_blocks, huge_bytes;
  _Atomic size_t heaps_active, heaps_created, segments_abandoned;
  _Atomic size_t os_map_calls, os_unmap_calls, os_purge_calls;
} qm_counters_t;
extern qm_counters_t _qm_counters;
static inline void qm_counter_add(_Atomic size_t *c, size_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
static inline void qm_counter_sub(_Atomic size_t *c, size_t n) {
  atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}
static inline size_t qm_counter_get(_Atomic size_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * segment.c
 * ------------------------------------------------------------------------------------------- */

/* Gives heap a segment with free space for a span of `need` slices: an abandoned one adopted, a
 * cached one, or a new one. Its free spans are in heap's bins on return. NULL when out of memory. */
qm_segment_t *_qm_segment_acquire(qm_heap_t *heap, size_t need);
/* Releases a segment with no used slice (its single free span must still be in heap's bins). */
void _qm_segment_release(qm_heap_t *heap, qm_segment_t *segment);
/* Releases a segment whatever is live in it (qm_heap_destroy): its blocks cease to exist, and a
 * later free of one is reported. heap's span bins and queues are left stale: the caller resets them. */
void _qm_segment_discard(qm_heap_t *heap, qm_segment_t *segment);
/* Hands a segment with live blocks to the abandoned list. */
void _qm_segment_abandon(qm_heap_t *heap, qm_segment_t *segment);
/* Frees a block into a segment that has no owner: the block waits on the segment's list until a
 * thread adopts the segment (one that needs space, or a trim). Returns 1 when done, 0 when the
 * segment has an owner again (route the block there), -1 when it is neither owned nor abandoned. */
int _qm_segment_free_abandoned(qm_segment_t *segment, qm_block_t *block);
/* Adopts every abandoned segment into heap, releasing those that turn out empty. */
bool _qm_segment_collect_abandoned(qm_heap_t *heap);
/* Adopts the abandoned segments in which nothing has been live for the purge delay and releases
 * them (decay passes of thread heaps, span lock held). Returns whether any was released. */
bool _qm_segment_collect_free(qm_heap_t *heap);
/* Purges and unmaps cached segments that have waited long enough. */
void _qm_segment_cache_decay(uint64_t now);
/* Purges the free spans of abandoned segments that have waited the purge delay (from the decay
 * passes, so that this happens even when no thread starts or exits). */
void _qm_segment_abandoned_decay(uint64_t now);
/* Unmaps cached segments; returns whether anything was released. */
bool _qm_segment_cache_trim(void);
size_t _qm_segment_abandoned_count(void);
/* The validator's part for the abandoned segments: the lists' links and states, and each
 * segment's live count (segment.c). */
bool _qm_segment_abandoned_are_valid(void);
/* Calls visit(segment, arg) for every abandoned segment, under the abandoned-list lock. */
void _qm_segment_visit_abandoned(void (*visit)(qm_segment_t *segment, void *arg), void *arg);
void _qm_segment_fork_prepare(void);
void _qm_segment_fork_parent(void);
void _qm_segment_fork_child(void);

/* ---------------------------------------------------------------------------------------------
 * span.c: free spans and large blocks
 * ------------------------------------------------------------------------------------------- */

size_t _qm_span_bin(size_t slices);
void _qm_span_insert_free(qm_heap_t *heap, qm_page_t *span);
void _qm_span_remove_free(qm_heap_t *heap, qm_page_t *span);
/* Sets the descriptors of a free span of `count` slices at `span` and puts it into a bin. */
void _qm_span_make_free(qm_heap_t *heap, qm_page_t *span, size_t count, qm_memory_t memory);
/* Gives back the resident part of a dirty free span, to the end of the 2 MiB page it ends in (not in
 * use; under its heap's span lock, or in a segment no heap owns). */
void _qm_span_purge(qm_page_t *span);
/* A used span of exactly `count` slices, or NULL (errno untouched). */
qm_page_t *_qm_span_alloc(qm_heap_t *heap, size_t count);
/* Frees a used span; coalesces with free neighbours; may release the segment. */
void _qm_span_free(qm_heap_t *heap, qm_page_t *span);
void *_qm_large_alloc(qm_heap_t *heap, size_t size, size_t alignment, bool zero);
/* Resizes a large block in place; returns whether it could. */
bool _qm_large_resize_in_place(qm_heap_t *heap, qm_page_t *page, size_t new_size);
/* Whether realloc leaves a large block of `block_size` bytes as it is for `size` bytes: the size
 * fits, and the tail it leaves unused lies within the block's last slice or is under a quarter of
 * the block. The quarter is the headroom realloc gives a block it moves to grow by a small step
 * (alloc.c, realloc_move), so that the next steps find it; a block shrunk by less than that keeps
 * its tail, as a class block keeps up to half of itself. */
static inline bool qm_large_keeps(size_t block_size, size_t size) {
  return size <= block_size && (block_size - size < QM_SLICE_SIZE || size >= block_size - block_size / 4);
}
/* Frees the live large block whose page is `page`, by its owner; gives a big one back to the OS at
 * once while the heap's eager-purge budget allows (span.c, "Eager purges"). */
void _qm_large_free(qm_heap_t *heap, qm_page_t *page);
/* A freed large block of at least QM_EAGER_PURGE_MIN bytes is purged at once, up to a budget of
 * bytes between two decay passes of its heap (span.c): QM_EAGER_PURGE_BUDGET at the default purge
 * delay, less in proportion to a longer one (nothing beyond 1.6 s: the program wants its freed
 * memory kept), everything with no delay. */
#define QM_EAGER_PURGE_MIN ((size_t)128 * 1024)
#define QM_EAGER_PURGE_BUDGET ((size_t)2 * 1024 * 1024)

/* ---------------------------------------------------------------------------------------------
 * page.c: small blocks
 * ------------------------------------------------------------------------------------------- */

/* may_borrow: the block may come from one of the next classes (page.c, "Borrowing"). */
void *_qm_small_alloc_slow(qm_heap_t *heap, size_t cls, bool zero, bool may_borrow);
/* A free by the owner into a page with flags set. */
void _qm_page_free_flagged(qm_heap_t *heap, qm_page_t *page, qm_block_t *block);
/* Frees the spans of pages with no used block (all but each queue's current page if keep_current,
 * and then only if an empty page may have been left behind a queue's front since the last sweep). */
bool _qm_heap_sweep_pages(qm_heap_t *heap, bool keep_current);
/* The quick sweep of the decay schedule (purge.c): the same for the classes of blocks up to
 * QM_QUICK_SWEEP_MAX_SIZE, keeping each queue's first page. */
#define QM_QUICK_SWEEP_MAX_SIZE 1024
#define QM_QUICK_SWEEP_CLASSES (qm_size_class(QM_QUICK_SWEEP_MAX_SIZE) + 1) /* classes 0 .. this - 1 */
/* The classes the inline fast path serves (heap->direct[]) are 0 .. this - 1; every allocation of a
 * class from here on goes through small_alloc (alloc.c) or the slow path, which flag the page. */
#define QM_DIRECT_CLASSES (qm_size_class(QM_DIRECT_MAX) + 1)
bool _qm_heap_sweep_small_pages(qm_heap_t *heap);
/* After an owner's free took a page's used count from 1 to 0 (the page is released if idle) or
 * from 0 (wrapped to UINT32_MAX: the block was free already, reported). */
void _qm_page_free_emptied(qm_heap_t *heap, qm_page_t *page, qm_block_t *block);
/* Frees the span of a page with no used block, unless it is its queue's current page. */
void _qm_page_release_if_idle(qm_heap_t *heap, qm_page_t *page);
/* The free fast path emptied page, of segment (owned by the calling thread): counts it for the
 * sweeps, and flags it for the growth passes if it is the current page of a class above
 * QM_DIRECT_MAX (purge.c, "The current page of an idle class"). */
void _qm_page_emptied(qm_segment_t *segment, qm_page_t *page);
/* After a segment is adopted: puts a small page into heap's queues as it stands. */
void _qm_page_adopt(qm_heap_t *heap, qm_page_t *page);
/* Refreshes heap->direct[] and class_page[] for a class after its queue's first page changed. */
void _qm_heap_update_class_page(qm_heap_t *heap, size_t cls);

/* Makes an empty small page never carved again (capacity 0, no free list, no holes), whatever its
 * free list held, and adds its carved part to purges where the page starts on an OS page (purge.c).
 * Returns the bytes added. */
size_t _qm_page_uncarve_reset(qm_page_t *page, qm_purge_list_t *purges);
/* Blocks of a small page that overlap its holes go back on its free list (the page ran dry). */
void _qm_page_refill_holes(qm_page_t *page);

/* ---------------------------------------------------------------------------------------------
 * purge.c: memory back to the OS on a decay schedule
 * ------------------------------------------------------------------------------------------- */

/* Runs a quick sweep (owner only), and when one is due a decay pass over heap: idle empty pages go
 * back to the span layer, sparse pages give back the OS pages that hold no live block, and free
 * spans dirty for longer than the purge delay are purged. The pass also ages the segment cache and,
 * now and then, idle heaps of other threads (purge.c). */
void _qm_heap_decay(qm_heap_t *heap, uint64_t now);
/* A decay pass's page half, run when the heap has made QM_GROWTH_PASS_BYTES of fresh memory
 * resident per segment it owns (purge.c, "Growth passes"). Owner only. */
void _qm_heap_growth_pass(qm_heap_t *heap);
#define QM_GROWTH_PASS_BYTES ((uint64_t)64 * 1024)
static inline void qm_heap_grew(qm_heap_t *heap, size_t fresh_bytes) { heap->grown_bytes += fresh_bytes; }
/* Runs a growth pass or a decay pass when one is due; called from the owner's slow paths. */
static inline void qm_heap_decay_tick(qm_heap_t *heap) {
  size_t segments = heap->segment_count > 1 ? heap->segment_count : 1;
  if (qm_unlikely(heap->grown_bytes >= QM_GROWTH_PASS_BYTES * segments))
    _qm_heap_growth_pass(heap);
  uint64_t now = _qm_os_now_coarse_ns();
  if (qm_unlikely(now >= heap->decay_next_ns))
    _qm_heap_decay(heap, now);
}
/* Whether a purge of `bytes` now may lower the process's peak resident set: whether the process is
 * within the most of bytes, a sixty-fourth of that peak and 256 KiB of it, or that is unknown
 * (purge.c, "Purges for the peak"). Owner only. */
bool _qm_heap_near_peak(qm_heap_t *heap, size_t bytes);
/* A purge for the peak gave [start, start + bytes) back to the OS (purge.c, "Purges taken back at
 * once"). Owner only. */
void _qm_heap_note_peak_purge(qm_heap_t *heap, const void *start, size_t bytes);
/* The heap is about to make [start, start + bytes), which reads as zero, resident again: what of it
 * a purge for the peak gave back within the refault window counts toward pausing those purges
 * (purge.c, "Purges taken back at once"). Owner only. */
void _qm_heap_note_refault(qm_heap_t *heap, const void *start, size_t bytes);
/* Purges the free spans of heap whose memory has been dirty since before `older_than` (all of them
 * with UINT64_MAX); `for_peak` when a growth pass purges them for the peak (they are noted). The
 * caller holds the heap's span lock (span.c). Returns whether it purged. */
bool _qm_heap_purge_spans(qm_heap_t *heap, uint64_t older_than, bool for_peak);
/* Releases everything the heap can release now (malloc_trim): empty pages, free OS pages inside
 * small pages, free spans, empty segments. Owner only. Returns whether anything was released. */
bool _qm_heap_purge_all(qm_heap_t *heap);
/* Purges the free spans of every heap but self that have been dirty since before older_than;
 * heaps whose owner is busy in its span layer are skipped. Any thread. */
bool _qm_purge_other_heaps(qm_heap_t *self, uint64_t older_than);
/* Sorts a[0 .. n) ascending, in place: a heap sort, with no allocation and no recursion, since the
 * library may not call its own malloc from where it sorts (purge.c). */
void _qm_sort_addresses(uintptr_t *a, size_t n);
#define QM_PAGE_BLOCKS_MAX (QM_SLICE_SIZE * 8 / 16) /* the most blocks a page holds: 64 KiB of 16 B */
/* Sets bit i of free_bits (QM_PAGE_BLOCKS_MAX bits) for each carved block i of a small page that is
 * free: on its free list or in a hole; the bits of used blocks are clear. */
void _qm_page_free_bits(const qm_page_t *page, uint64_t *free_bits);

/* ---------------------------------------------------------------------------------------------
 * secure.c: the hardened variant only (QM_SECURE)
 * ------------------------------------------------------------------------------------------- */

#if QM_SECURE
extern uintptr_t _qm_secure_secret; /* drawn at start-up, never changed: keys the link encoding */
/* Draws the secret (getrandom, else clocks and addresses); at start-up, before any block exists. */
void _qm_secure_init(void);
/* Reports a free-list link that does not decode to a block where one must be, and aborts. page is
 * NULL for lists that mix pages (inboxes, parked frees). */
qm_cold qm_noreturn void _qm_secure_bad_link(const qm_page_t *page, const void *block, uintptr_t next);
/* Threads the n blocks from `first` (just carved, counted in capacity) onto page's free list in an
 * order drawn from heap's generator. */
void _qm_secure_carve(qm_heap_t *heap, qm_page_t *page, uint8_t *first, size_t n);
/* Makes the unused tail of a segment's metadata slices a guard page. */
void _qm_secure_guard_segment(qm_segment_t *segment);
#endif

/* ---------------------------------------------------------------------------------------------
 * huge.c
 * ------------------------------------------------------------------------------------------- */

void *_qm_huge_alloc(size_t size, size_t alignment, bool zero);
/* A huge block listed in the first-class heap `heap`, so that destroying the heap unmaps it. */
void *_qm_huge_alloc_listed(qm_heap_t *heap, size_t size, size_t alignment, bool zero);
/* Unmaps every huge block listed in heap (qm_heap_destroy). */
void _qm_huge_release_listed(qm_heap_t *heap);
void _qm_huge_free(qm_segment_t *segment, void *p);
/* Resizes to new_size (> QM_LARGE_MAX); returns the block's new address or NULL (block intact). */
void *_qm_huge_realloc(qm_segment_t *segment, void *p, size_t new_size);
/* The cache of freed huge mappings: unmaps those cached for longer than the purge delay (decay
 * passes), or all of them (malloc_trim; returns whether there were any). */
void _qm_huge_cache_decay(uint64_t now);
/* The validator's part for the cache of freed huge mappings (its invariants, huge.c). */
bool _qm_huge_cache_is_valid(void);
bool _qm_huge_cache_trim(void);
void _qm_huge_fork_prepare(void);
void _qm_huge_fork_parent(void);
void _qm_huge_fork_child(void);

/* ---------------------------------------------------------------------------------------------
 * heap.c
 * ------------------------------------------------------------------------------------------- */

/* The calling thread's heap, created on first use; NULL only when out of memory. */
qm_heap_t *_qm_heap_get_or_init(void);
/* A heap struct from the pool (reset, thread_id 0), or NULL; and back into the pool. */
qm_heap_t *_qm_heap_pool_take(void);
void _qm_heap_pool_give(qm_heap_t *heap);
/* Empties every list and pointer of heap (its segments must be gone already). */
void _qm_heap_reset(qm_heap_t *heap);
/* Drains the inbox (heap.c): all of it, the parcels taken before included; a small slow path's
 * share of it, when more than `more_than` blocks wait; or what a free that pushed a batch
 * collects. Owner only. */
void _qm_heap_collect_inbox(qm_heap_t *heap);
void _qm_heap_collect_share(qm_heap_t *heap, int64_t more_than);
void _qm_heap_collect_on_free(qm_heap_t *heap);
/* Whether other threads' frees wait for the owner: in the inbox, or taken and not yet collected. */
static inline bool qm_heap_has_inbox_work(qm_heap_t *heap) {
  return heap->drain_parcel != NULL || atomic_load_explicit(&heap->inbox, memory_order_relaxed) != NULL;
}
/* Pushes every remote batch of heap (blocks it freed into other thread heaps) to its owner (free.c).
 * Owner only; runs on thread exit, on qm_trim and on every decay pass. */
void _qm_heap_flush_remote(qm_heap_t *heap);
/* Hands heap back: frees what is free, abandons segments with live blocks. */
void _qm_heap_abandon(qm_heap_t *heap);
void _qm_thread_exit(void *value);
bool _qm_heap_trim(qm_heap_t *heap);
void _qm_heap_fork_prepare(void);
void _qm_heap_fork_parent(void);
void _qm_heap_fork_child(void);
void _qm_heap_segment_link(qm_heap_t *heap, qm_segment_t *segment);

/* The span lock of a heap, taken by its owner around span-layer work (re-entrant for the owner). */
static inline void qm_span_lock_enter(qm_heap_t *heap) {
  if (heap->span_lock_depth++ == 0)
    _qm_lock(&heap->span_lock);
}
static inline void qm_span_lock_leave(qm_heap_t *heap) {
  qm_assert_internal(heap->span_lock_depth > 0);
  if (--heap->span_lock_depth == 0)
    _qm_unlock(&heap->span_lock);
}
void _qm_heap_segment_unlink(qm_heap_t *heap, qm_segment_t *segment);
/* Calls visit(heap, arg) for every heap in use, under the heap-pool lock: no heap starts or is
 * handed back meanwhile, but their owners go on allocating (read their fields as snapshots). */
void _qm_heaps_visit(void (*visit)(qm_heap_t *heap, void *arg), void *arg);
/* Takes a heap off the list of heaps in use (idempotent): before it gives up its segments. */
void _qm_heap_unlist(qm_heap_t *heap);

/* ---------------------------------------------------------------------------------------------
 * user_heap.c: first-class heaps
 * ------------------------------------------------------------------------------------------- */

static inline bool qm_heap_is_user(const qm_heap_t *heap) { return heap->user_magic == QM_USER_HEAP_MAGIC; }
/* The byte a segment owned by heap (NULL: none) carries in the segment map: the heap's own for a
 * thread heap that has one, else QM_MAP_NORMAL; never QM_MAP_NO_OWNER, the byte of every thread with
 * no heap. Written by set_owner (segment.c), checked by the heap validator. */
static inline unsigned qm_heap_map_byte(const qm_heap_t *heap) {
  bool marked = heap != NULL && !qm_heap_is_user(heap) && heap->map_owner != QM_MAP_NO_OWNER;
  return marked ? heap->map_owner : QM_MAP_NORMAL;
}
/* At thread exit: the first-class heaps of thread_heap lose their owner thread (they stay valid). */
void _qm_user_heaps_orphan(qm_heap_t *thread_heap);

/* ---------------------------------------------------------------------------------------------
 * alloc.c / free.c
 * ------------------------------------------------------------------------------------------- */

void *_qm_malloc_generic(size_t size, qm_heap_t *heap, bool zero);
/* A small block aligned to `alignment`: at most QM_SLICE_SIZE, size at most QM_SMALL_MAX. heap is
 * initialised. */
void *_qm_malloc_small_aligned(qm_heap_t *heap, size_t alignment, size_t size, bool zero);
void *_qm_malloc_aligned(size_t alignment, size_t size, bool zero);
/* Frees p owned by any heap, from any thread; the route every non-fast free takes. */
void _qm_free_generic(void *p);
/* free of p, in the normal segment `segment` (the segment map said so), which the calling thread
 * does not own: the cross-thread path, kept short (free.c). */
void _qm_free_foreign(qm_segment_t *segment, void *p);
/* free of p, in the normal segment `segment` that the calling thread owns, when the fast path found
 * the flags of p's span set (a full page, a large block, no block) or p heading its free list, or
 * when the segment is the thread's without its heap's map byte (a first-class heap's, or one of a
 * heap that has no byte). */
void _qm_free_owned_slow(qm_segment_t *segment, void *p);
/* The usable size of a block of qmalloc (below the debug layer: what the block holds). */
size_t _qm_usable_size(const void *p);
/* The same for a block the program freed earlier that comes back from an inbox (memory tools were
 * told of that free already). */
void _qm_free_collected(void *p);
/* The owner's free of a block of a normal segment. */
void _qm_free_local(qm_heap_t *heap, qm_segment_t *segment, void *p);
/* The last parcel of a chain taken from an inbox (first != NULL), and in *parcels how many there
 * are; a chain that loops (a block freed twice from other threads) is reported and aborts. */
qm_block_t *_qm_inbox_chain_last(qm_block_t *first, size_t *parcels);
/* Pushes the parcels first .. last (linked with qm_link_set) onto owner's inbox. Any thread. */
void _qm_inbox_push_chain(qm_heap_t *owner, qm_block_t *first, qm_block_t *last, size_t count);

/* ---------------------------------------------------------------------------------------------
 * init.c, options.c
 * ------------------------------------------------------------------------------------------- */

extern _Atomic int _qm_process_state; /* 0: not started, 1: starting, 2: ready */
void _qm_process_init(void);
static inline void qm_ensure_process_init(void) {
  if (qm_unlikely(atomic_load_explicit(&_qm_process_state, memory_order_acquire) != 2))
    _qm_process_init();
}
void _qm_thread_key_set(qm_heap_t *heap);

enum { QM_PURGE_DONTNEED = 0, QM_PURGE_FREE = 1 };
#define QM_PURGE_DELAY_DEFAULT_MS 100 /* QMALLOC_PURGE_DELAY's default */

/* The options in force, one field per entry of the table in options.c (which says what each one
 * means, its default and its range). Written at start-up and by qm_option_set (relaxed atomic
 * stores of the whole field); read anywhere with plain loads. */
typedef struct qm_options_s {
  bool verbose;              /* QMALLOC_VERBOSE: banner at start, summary at exit */
  bool show_stats;           /* QMALLOC_SHOW_STATS: the statistics table at exit */
  uint64_t purge_delay_ms;   /* QMALLOC_PURGE_DELAY: how long free memory stays resident */
  int purge_method;          /* QMALLOC_PURGE_METHOD: QM_PURGE_DONTNEED or QM_PURGE_FREE */
  bool purge_batch;          /* QMALLOC_PURGE_BATCH: many ranges in one process_madvise call */
  uint64_t segment_decay_ms; /* QMALLOC_SEGMENT_DECAY: how long a wholly free segment stays mapped */
  bool use_thp;              /* QMALLOC_THP: advise transparent huge pages for segments */
  bool huge_thp;             /* QMALLOC_HUGE_THP: advise transparent huge pages for huge blocks */
  size_t arena_reserve;      /* QMALLOC_ARENA_RESERVE: address space reserved for segments */
  bool debug;                /* QMALLOC_DEBUG: only in the debug variant of the library */
  bool leak_report;          /* QMALLOC_LEAK_REPORT: the debug variant's leak report at exit */
  bool secure;               /* QMALLOC_SECURE: only in the secure variant of the library */
  char trace_file[256];      /* QMALLOC_TRACE: only in the trace variant of the library; "": off */
  size_t profile_sample;     /* QMALLOC_PROFILE_SAMPLE: mean bytes between sampled stacks (profile) */
  char report[256];          /* QMALLOC_REPORT: the HTML report to write at exit, "" for none (profile) */
} qm_options_t;
extern qm_options_t _qm_options;
void _qm_options_init(void);
/* The option table as a markdown table (the README's is generated from it), and the options in
 * force as the members of a JSON object (no braces). These use stdio: never call them while
 * holding a lock. */
void _qm_options_markdown(FILE *out);
void _qm_options_json(FILE *out, const char *indent);
/* Writes text as a JSON string: quotes, backslashes and control characters escaped, and '<' as
 * well, so that the text may sit inside an HTML <script> element (report.c). */
void _qm_json_string(FILE *out, const char *text);

/* ---------------------------------------------------------------------------------------------
 * stats.c: statistics. The layers call the hooks below where blocks and memory come and go; each
 * hook compiles to nothing below the QM_STATS level it needs (types.h), so level 1 leaves the
 * fast paths untouched and level 0 removes every update.
 * ------------------------------------------------------------------------------------------- */

#if QM_STATS >= 1
/* Process-wide statistics counters: relaxed atomics, updated on slow paths only. */
typedef struct qm_stat_counters_s {
  _Atomic uint64_t large_requests, large_bytes_requested;
  _Atomic uint64_t huge_requests, huge_bytes_requested;
  _Atomic uint64_t huge_in_use;  /* usable bytes of live huge blocks */
  _Atomic uint64_t bytes_purged; /* bytes given back with madvise so far */
  _Atomic uint64_t remap_calls;  /* mremap calls */
  _Atomic uint64_t advise_calls; /* madvise calls other than purges (transparent huge pages) */
  _Atomic uint64_t mapped_peak;  /* the most segment and huge bytes mapped at once */
#if QM_STATS >= 2
  _Atomic int64_t in_use_published; /* in_use the heaps have published, plus huge_in_use */
  _Atomic uint64_t peak_in_use;     /* the highest in-use total seen (stats.c explains how) */
  _Atomic uint64_t retired_requests[QM_CLASS_COUNT]; /* requests of heaps handed back */
  _Atomic uint64_t retired_bytes_requested[QM_CLASS_COUNT];
#endif
} qm_stat_counters_t;
extern qm_stat_counters_t _qm_stat;
#define QM_STAT_ADD(field, n) atomic_fetch_add_explicit(&_qm_stat.field, (uint64_t)(n), memory_order_relaxed)

void _qm_stats_large_request(size_t requested);
void _qm_stats_huge_alloc(size_t requested, size_t usable);
void _qm_stats_huge_free(size_t usable);
void _qm_stats_huge_resize(size_t old_usable, size_t new_usable);
/* Records the mapped total (segments + huge) as the peak when it is one. */
void _qm_stats_note_mapped(void);
#else
#define QM_STAT_ADD(field, n) ((void)0)
#endif

#if QM_STATS >= 2
/* The owner's update of its own heap's counters: a plain load and a relaxed store (other threads
 * only read them), never a read-modify-write. */
#define QM_OWNER_STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)
static inline void qm_stats_in_use_add(qm_heap_t *heap, int64_t bytes) {
  int64_t in_use = heap->stats.in_use + bytes;
  QM_OWNER_STORE(heap->stats.in_use, in_use);
  if (in_use > heap->stats.peak_local)
    QM_OWNER_STORE(heap->stats.peak_local, in_use);
}
/* Adds the heap's unpublished in_use to the process total and raises the process peak. */
void _qm_stats_publish(qm_heap_t *heap);
/* Before a heap goes back to the pool: publishes it and merges its request counters. */
void _qm_stats_heap_retire(qm_heap_t *heap);
#endif

/* A small request of class cls (every path that serves one, before it is served). */
static inline void qm_stats_small_request(qm_heap_t *heap, size_t cls, size_t size) {
#if QM_STATS >= 2
  QM_OWNER_STORE(heap->stats.requests[cls], heap->stats.requests[cls] + 1);
  QM_OWNER_STORE(heap->stats.bytes_requested[cls], heap->stats.bytes_requested[cls] + size);
#else
  (void)heap, (void)cls, (void)size;
#endif
}
/* A small block handed out from page by the owner. */
static inline void qm_stats_small_alloc(qm_heap_t *heap, const qm_page_t *page) {
#if QM_STATS >= 2
  qm_stats_in_use_add(heap, (int64_t)page->block_size);
#else
  (void)heap, (void)page;
#endif
}
/* The fast paths: request and block at once. */
static inline void qm_stats_small_fast(qm_heap_t *heap, const qm_page_t *page, size_t size) {
  qm_stats_small_request(heap, page->size_class, size);
  qm_stats_small_alloc(heap, page);
}
/* The small slow path: also publishes the heap's in-use figure (a slow path may take an atomic). */
static inline void qm_stats_small_alloc_slow(qm_heap_t *heap, const qm_page_t *page) {
#if QM_STATS >= 2
  qm_stats_in_use_add(heap, (int64_t)page->block_size);
  _qm_stats_publish(heap);
#else
  (void)heap, (void)page;
#endif
}
/* A small block freed back to page by the owner. */
static inline void qm_stats_small_free(qm_heap_t *heap, const qm_page_t *page) {
#if QM_STATS >= 2
  QM_OWNER_STORE(heap->stats.in_use, heap->stats.in_use - (int64_t)page->block_size);
#else
  (void)heap, (void)page;
#endif
}
static inline void qm_stats_large_alloc(qm_heap_t *heap, size_t requested, size_t bytes) {
#if QM_STATS >= 1
  _qm_stats_large_request(requested);
#endif
#if QM_STATS >= 2
  qm_stats_in_use_add(heap, (int64_t)bytes);
  _qm_stats_publish(heap);
#else
  (void)heap, (void)bytes, (void)requested;
#endif
}
static inline void qm_stats_large_free(qm_heap_t *heap, size_t bytes) {
#if QM_STATS >= 2
  QM_OWNER_STORE(heap->stats.in_use, heap->stats.in_use - (int64_t)bytes);
#else
  (void)heap, (void)bytes;
#endif
}
static inline void qm_stats_large_resize(qm_heap_t *heap, size_t old_bytes, size_t new_bytes) {
#if QM_STATS >= 2
  qm_stats_in_use_add(heap, (int64_t)new_bytes - (int64_t)old_bytes);
#else
  (void)heap, (void)old_bytes, (void)new_bytes;
#endif
}
static inline void qm_stats_huge_alloc(size_t requested, size_t usable) {
#if QM_STATS >= 1
  _qm_stats_huge_alloc(requested, usable);
#else
  (void)requested, (void)usable;
#endif
}
static inline void qm_stats_huge_free(size_t usable) {
#if QM_STATS >= 1
  _qm_stats_huge_free(usable);
#else
  (void)usable;
#endif
}
static inline void qm_stats_huge_resize(size_t old_usable, size_t new_usable) {
#if QM_STATS >= 1
  _qm_stats_huge_resize(old_usable, new_usable);
#else
  (void)old_usable, (void)new_usable;
#endif
}
static inline void qm_stats_note_mapped(void) {
#if QM_STATS >= 1
  _qm_stats_note_mapped();
#endif
}

/* Prints the statistics table on stderr with write(2) (malloc_stats, exit): allocates nothing. */
void _qm_stats_print_stderr(void);

/* ---------------------------------------------------------------------------------------------
 * profile.c, report.c: the sampling heap profiler and the memory report (QM_VARIANT_PROFILE only;
 * in other builds qm_profile_alloc is empty and the entry points carry nothing of it).
 * ------------------------------------------------------------------------------------------- */

#if QM_VARIANT_PROFILE
/* Per-thread sampling state. countdown: bytes still to allocate before the next sample; it starts
 * at 0, so a thread's first allocation enters _qm_profile_sample, which arms it (or, when sampling
 * is off, sets it so high that it never runs out). busy: this thread is inside the profiler, whose
 * own allocations (backtrace's, stdio's) are not sampled. */
typedef struct qm_profile_thread_s {
  int64_t countdown;
  uint64_t random;
  uint32_t busy;
} qm_profile_thread_t;
extern __thread qm_profile_thread_t _qm_profile_thread __attribute__((tls_model("initial-exec")));
/* The countdown ran out: records a sample of `size` bytes (or arms the thread's countdown). */
void _qm_profile_sample(size_t size);
/* Counts an allocation of `size` bytes at an entry point: one subtraction in this thread's TLS.
 * True when the countdown ran out: the caller then serves the request with _qm_malloc_sampled. */
static inline bool qm_profile_due(size_t size) {
  qm_profile_thread_t *thread = &_qm_profile_thread;
  return qm_unlikely((thread->countdown -= (int64_t)size) < 0);
}
/* Samples the allocation (_qm_profile_sample), then serves it on the generic path. */
void *_qm_malloc_sampled(size_t size, bool zero);
/* The same for entry points that go on to their own path (aligned allocations). */
static inline void qm_profile_alloc(size_t size) {
  if (qm_profile_due(size))
    _qm_profile_sample(size);
}
/* The profile as the "profile" member of the report's JSON (report.c). Call with no lock held. */
void _qm_profile_json(FILE *out);
/* Whether stacks are being sampled, and the mean bytes between samples. */
bool _qm_profile_enabled(void);
#else
static inline bool qm_profile_due(size_t size) {
  (void)size;
  return false;
}
static inline void *_qm_malloc_sampled(size_t size, bool zero) {
  (void)size, (void)zero;
  return NULL; /* never called: qm_profile_due is false */
}
static inline void qm_profile_alloc(size_t size) { (void)size; }
#endif

static inline uint64_t qm_purge_delay_ns(void) { return _qm_options.purge_delay_ms * 1000000ull; }
static inline size_t qm_eager_purge_budget(void) {
  uint64_t delay_ms = _qm_options.purge_delay_ms;
  return delay_ms == 0 ? SIZE_MAX : (size_t)(QM_EAGER_PURGE_BUDGET * QM_PURGE_DELAY_DEFAULT_MS / delay_ms);
}
/* Half the eager purges' budget: what a growth pass may uncarve at once between two decay passes
 * (purge.c). Uncarved pages of a class that comes back are faulted in again: `realloc`, whose
 * buffers grow through every class, took 39k -> 58k page faults without a bound, 48k with this. */
static inline size_t qm_idle_uncarve_budget(void) { return qm_eager_purge_budget() / 2; }
static inline uint64_t qm_segment_decay_ns(void) { return _qm_options.segment_decay_ms * 1000000ull; }

#endif /* QM_INTERNAL_H */
