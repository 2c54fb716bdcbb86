/* types.h - the data structures of qmalloc, and the design they carry.
 *
 * This header is the design document in code: read it first. docs/DESIGN.md tells the same story
 * with pictures. Nothing here is installed; the public interface is include/qmalloc.h.
 *
 * Glossary
 *   block    what malloc returns. Small blocks carry no header: their size is their page's.
 *   slice    the 8 KiB unit a segment is cut into. Every slice has a descriptor (qm_page_t).
 *   span     a run of contiguous slices of one segment: free, a small page, or one large block.
 *   page     a span cut into blocks of one size class, with its own free list.
 *   segment  a 4 MiB region, aligned to 4 MiB, owned by one heap. Its first slices hold the
 *            segment header and the descriptor of every slice, so that the metadata of any
 *            block is found from the block's address by arithmetic (segment_of, slice_of).
 *   huge     a block above QM_LARGE_MAX: a mapping of its own, with a small header placed so
 *            that segment_of() of the block finds that header too.
 *   heap     the allocation state of one thread: pages per size class, free spans, segments,
 *            and an inbox where other threads drop the blocks they free.
 *
 * Size classes: 16-byte steps up to 128, then 8 classes per doubling up to QM_SMALL_MAX. Blocks of
 * at most QM_SMALL_MAX live in pages; up to QM_LARGE_MAX a block is a span of its own (a "large"
 * page with one block); above, huge.
 *
 * Ownership and threads: a segment, its spans and pages belong to the heap in segment->owner_heap,
 * and only the thread of that heap touches them, without locks or atomic read-modify-writes.
 * Another thread freeing a block pushes it onto the owner heap's inbox (one atomic push); the owner
 * takes the whole inbox with one exchange when it next runs a slow path. When a thread exits, its
 * segments are abandoned (owner_heap = NULL) and adopted later by any thread that frees into them
 * or needs a segment.
 */
#ifndef QM_TYPES_H
#define QM_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------
 * Build levels, declared once. Everything derived is computed here.
 * ------------------------------------------------------------------------------------------- */

/* QM_DEBUG: 0 no internal checks, 1 cheap assertions, 2 + internal assertions, 3 + expensive ones
 * (walks of lists on every operation). Debug builds default to 2. */
#ifndef QM_DEBUG
#if defined(QM_DEBUG_BUILD)
#define QM_DEBUG 2
#else
#define QM_DEBUG 0
#endif
#endif
_Static_assert(QM_DEBUG >= 0 && QM_DEBUG <= 3, "QM_DEBUG must be 0..3");

/* QM_STATS: 0 no statistics (the counters and every update of them compile to nothing);
 * 1 (default) counters updated on slow paths only, figures about live blocks computed when asked
 * for by walking the heaps, so the malloc and free fast paths are exactly those of level 0;
 * 2 adds per-class request counters and exact bytes-in-use accounting on the fast paths (heap-local
 * fields, written by the owner with plain stores). CMake: -DQMALLOC_STATS=N. */
#ifndef QM_STATS
#define QM_STATS 1
#endif
_Static_assert(QM_STATS >= 0 && QM_STATS <= 2, "QM_STATS must be 0..2");

/* QM_VARIANT_PROFILE: the profiling variant of the library (libqmalloc-profile.so, built with
 * qm_add_variant; docs/REPORT.md). It samples allocation sizes and call stacks on the malloc entry
 * points and can write an HTML memory report at exit. It keeps the statistics level it is built with
 * (1 by default): the report's requests and waste per size class are estimated from the samples,
 * so that the fast paths carry only the sampling countdown. */
#ifndef QM_VARIANT_PROFILE
#define QM_VARIANT_PROFILE 0
#endif
/* QM_SECURE: the hardened variant (libqmalloc-secure.so, built with QM_VARIANT_SECURE=1). Free-list
 * links are stored encoded and checked when decoded, pages hand out fresh blocks in a random order,
 * frees look for the block a few links down the page's free list (double frees), and a guard page
 * separates each segment's metadata from its first span. 0 in every other build, where none of it
 * is compiled. docs/HARDENING.md describes it. */
#ifndef QM_VARIANT_SECURE
#define QM_VARIANT_SECURE 0
#endif
#define QM_SECURE QM_VARIANT_SECURE
/* How many links of a page's free list a free walks looking for the block it frees (secure only). */
#define QM_SECURE_FREE_WALK 2

/* Memory tools (track.h): QM_VALGRIND (CMake -DQMALLOC_VALGRIND=ON) tells memcheck about every block
 * with client requests; QM_ASAN_POISON (-DQMALLOC_ASAN_POISON=ON) poisons free and never-handed-out
 * memory for AddressSanitizer. Both 0 by default: the hooks then compile to nothing. */
#ifndef QM_VALGRIND
#define QM_VALGRIND 0
#endif
#ifndef QM_ASAN_POISON
#define QM_ASAN_POISON 0
#endif
_Static_assert(QM_SECURE == 0 || QM_SECURE == 1, "QM_VARIANT_SECURE must be 0 or 1");

/* ---------------------------------------------------------------------------------------------
 * Geometry
 * ------------------------------------------------------------------------------------------- */

#define QM_ALIGNMENT 16 /* every block is aligned at least this much */

#define QM_SEGMENT_SHIFT 22 /* 4 MiB segments */
#define QM_SEGMENT_SIZE ((size_t)1 << QM_SEGMENT_SHIFT)
#define QM_SEGMENT_MASK (QM_SEGMENT_SIZE - 1)

#define QM_SLICE_SHIFT 13 /* 8 KiB slices */
#define QM_SLICE_SIZE ((size_t)1 << QM_SLICE_SHIFT)
#define QM_SLICES_PER_SEGMENT (QM_SEGMENT_SIZE / QM_SLICE_SIZE) /* 512 */

/* What one last-level page table maps (x86-64, and most 64-bit systems with 4 KiB pages), which is
 * also the size of a transparent huge page. */
#define QM_PMD_SIZE ((size_t)2 << 20)

#define QM_SMALL_MAX ((size_t)64 * 1024)         /* largest block served from a page */
#define QM_LARGE_MAX ((size_t)2 * 1024 * 1024)   /* largest block served from a segment span */
#define QM_REALLOC_SPAN_MIN ((size_t)16 * 1024)  /* realloc growth above this goes to a span */
#define QM_REALLOC_STEP_MIN ((size_t)4 * 1024)   /* ... and above this when it grows by at most half */
#define QM_CARVE_BYTES ((size_t)4 * 1024)        /* a small page carves this much of itself at a time */
#define QM_SMALL_PAGE_MAX_BLOCK ((size_t)256)    /* blocks up to this size live in the smallest pages */
#define QM_SMALL_PAGE_SLICES 2                   /* ... of this many slices (16 KiB) */
#define QM_DIRECT_MAX ((size_t)1024)             /* sizes with a direct page pointer in the heap */
#define QM_DIRECT_COUNT (QM_DIRECT_MAX / 16 + 1) /* heap->direct[] entries, indexed by (size+15)/16 */
#define QM_CLASS_COUNT 80                        /* small size classes */
#define QM_CLASS_LARGE QM_CLASS_COUNT            /* slice_class of a slice in a large block */
#define QM_SPAN_BINS 40                          /* free span lists per heap, by slice count */

/* A huge block sits this far into its mapping at least; the header lives in front of it. */
#define QM_HUGE_HEADER_SIZE ((size_t)4096)

/* Requests above this fail at once with ENOMEM (a half of the address space is never available). */
#define QM_MAX_REQUEST ((size_t)PTRDIFF_MAX / 2)

_Static_assert((QM_SMALL_MAX % QM_SLICE_SIZE) == 0, "small max must be slice aligned");
_Static_assert(QM_LARGE_MAX <= QM_SEGMENT_SIZE / 2, "large blocks must fit a segment with room to spare");
_Static_assert(QM_SLICES_PER_SEGMENT <= 65536, "slice counts are 16-bit");

/* ---------------------------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------------------------- */

/* A free block: its first word links it into a free list. A block that serves as a parcel of
 * remote frees (block-inl.h) also holds block addresses in the words after it. */
typedef struct qm_block_s {
  struct qm_block_s *next;
} qm_block_t;

/* ---------------------------------------------------------------------------------------------
 * Slices, spans and pages
 * ------------------------------------------------------------------------------------------- */

typedef enum qm_span_kind_e {
  QM_SPAN_META = 0,  /* segment header slices (descriptor unused) */
  QM_SPAN_FREE = 1,  /* free span, in one of the heap's span bins */
  QM_SPAN_SMALL = 2, /* a page of small blocks of one size class */
  QM_SPAN_LARGE = 3, /* one large block */
} qm_span_kind_t;

/* Page flags. Any flag set sends the owner's free of a block in this page to the slow path, so the
 * fast path tests them all with one compare. */
enum {
  QM_PAGE_IN_FULL = 1 << 0,    /* page was full: not in its class queue until a block comes back */
  QM_PAGE_FREE_ZERO = 1 << 1,  /* every block on `free` is fresh memory, zero but its first word */
  QM_PAGE_LARGE = 1 << 2,      /* a large block: freeing it frees the span */
  QM_PAGE_NOT_IN_USE = 1 << 3, /* a free span's descriptor, or one absorbed into a free span */
};

/* What the memory of a free span or large block holds. */
typedef enum qm_memory_e {
  QM_MEMORY_DIRTY = 0, /* may be resident and hold old data */
  QM_MEMORY_ZERO = 1,  /* reads as zero: fresh from the OS, or purged with MADV_DONTNEED */
  QM_MEMORY_LAZY = 2,  /* purged with MADV_FREE: the OS may take it, but it need not read as zero */
} qm_memory_t;

/* A small page's place in the decay passes (purge.c): a state in the low two bits of purge_mark
 * (qm_purge_state), and two flags above it that only the current page of a class above
 * QM_DIRECT_MAX uses ("The current page of an idle class" in purge.c). Those classes are not served
 * by the inline fast path, so every allocation from their pages runs code that sets a flag. */
typedef enum qm_purge_mark_e {
  QM_PURGE_NONE = 0,      /* allocated from since the last pass */
  QM_PURGE_CANDIDATE = 1, /* seen idle by one pass: the next one may purge it */
  QM_PURGE_THINNED = 2,   /* its free memory was purged; nothing more until it is allocated from */
  QM_PURGE_STATE = 3,     /* the mask of the state */
  QM_PURGE_ALLOCATED = 4, /* flag: allocated from since the last pass (small_alloc, the slow path) */
  QM_PURGE_EMPTIED = 8,   /* flag: emptied by a free as its class's current page, not allocated from
                             since (_qm_page_emptied) */
} qm_purge_mark_t;

/* A range of memory a purge for the peak gave back to the OS, and when (purge.c). Sixteen bytes, so
 * that the ring of them leaves the heap within an OS page (below): the length in bytes (the range
 * lies inside one segment) and the coarse clock in ticks of 2^QM_PURGED_TICK_SHIFT ns (65.5 us),
 * compared by their unsigned difference, which 32 bits keep exact for 78 hours, far beyond the
 * refault window it is compared with. */
typedef struct qm_purged_range_s {
  uintptr_t start;
  uint32_t bytes;
  uint32_t at_tick;
} qm_purged_range_t;
#define QM_PEAK_PURGE_RING 8
#define QM_PURGED_TICK_SHIFT 16

/* qm_page_t: the descriptor of one slice. The descriptor of a span's first slice describes the
 * whole span; the descriptors of its other slices hold only a kind and flags (META and NOT_IN_USE
 * where no span begins). Which head a slice belongs to is in the segment's slice_head[] map.
 *
 * Invariants (checked by validate.c):
 *   Small page:  used + |free| + hole_blocks == capacity <= reserved; blocks on `free` lie in
 *                [page_start, page_start + capacity * block_size), at block boundaries, and
 *                overlap no hole. A hole is a purge unit (purge.c) whose memory was given back to
 *                the OS while every block overlapping it was free; those blocks (hole_blocks of
 *                them) are on no list until the page refills from its holes.
 *                (Blocks sitting in the heap's inbox still count as used.)
 *                resident_slices <= slice_count: what of the span may have been resident when the
 *                page was made, less what a decay pass purged past the carved part since; carving
 *                past it counts as growth (purge.c, growth passes).
 *                IN_FULL  <=>  the page is in no class queue.
 *   Large page:  reserved == capacity == 1; block_size == slice_count * QM_SLICE_SIZE;
 *                used == 1 while the block is live.
 *   Free span:   kind == FREE, in span bin span_bin(slice_count) of the owning heap, where the
 *                spans that may be resident (is_zero != QM_MEMORY_ZERO) come before the others;
 *                is_zero == QM_MEMORY_DIRTY => dirty_since_ns says since when (purge.c ages it);
 *                resident_slices <= slice_count, and the slices past the first resident_slices
 *                were not written since they were fresh or purged with MADV_DONTNEED: they read
 *                as zero and are not resident (but where a transparent huge page that holds
 *                resident slices covers them); is_zero == QM_MEMORY_ZERO => resident_slices == 0.
 *
 * Layout: 64 bytes, so indexing is a shift. The fields the fast paths touch come first.
 */
typedef struct qm_page_s {
  qm_block_t *free;   /* next blocks to hand out (LIFO of frees and fresh blocks) */
  uint32_t used;      /* blocks handed out and not yet freed back to this page */
  uint8_t flags;      /* QM_PAGE_* */
  uint8_t kind;       /* qm_span_kind_t, meaningful on a span's first slice */
  uint8_t size_class; /* small pages: the class index */
  union {
    uint8_t is_zero;    /* free spans and large pages: qm_memory_t, what the memory holds */
    uint8_t purge_mark; /* small pages: qm_purge_mark_t, where the page is in the decay passes */
  };
  uint32_t block_size;      /* bytes per block (small: class size; large: span bytes) */
  uint32_t resident_slices; /* free spans and small pages: slices from its start that may be resident */
  uint32_t slice_count;     /* slices in the span (first descriptor only) */
  uint32_t hole_blocks;     /* small pages: free blocks lying in purged holes (on no free list) */
  union {
    struct {
      uint32_t capacity; /* small pages: blocks carved out of the page so far */
      uint32_t reserved; /* small pages: blocks that fit in the page */
    };
    uint64_t dirty_since_ns; /* free spans with is_zero == QM_MEMORY_DIRTY: when they became dirty */
  };
  struct qm_page_s *next; /* class queue, or span bin for free spans */
  struct qm_page_s *prev;
  uint64_t hole_map; /* small pages: bit i set <=> purge unit i of the page was given back to the OS */
} qm_page_t;

#define QM_PAGE_SHIFT 6
_Static_assert(sizeof(qm_page_t) == ((size_t)1 << QM_PAGE_SHIFT), "slice descriptors are 64 bytes");

/* A doubly-linked list of pages (a size-class queue) or of free spans (a span bin). */
typedef struct qm_page_list_s {
  qm_page_t *first;
  qm_page_t *last;
} qm_page_list_t;

/* ---------------------------------------------------------------------------------------------
 * Segments
 * ------------------------------------------------------------------------------------------- */

typedef enum qm_segment_kind_e {
  QM_SEGMENT_NORMAL = 1, /* slices, spans, pages */
  QM_SEGMENT_HUGE = 2,   /* one huge block */
} qm_segment_kind_t;

/* Where a range of huge-block pages may be split into separate kernel mappings (VMAs): page
 * offsets from the range's start, ascending, each strictly inside the range; a superset of the
 * real boundaries (the kernel may merge neighbours). count == QM_VMA_LIST_UNKNOWN: too many to
 * list, so the range is never moved or resized, only used where it lies. See huge.c. */
#define QM_VMA_LIST_MAX 31
#define QM_VMA_LIST_UNKNOWN UINT32_MAX
typedef struct qm_vma_list_s {
  uint32_t count;
  uint32_t start[QM_VMA_LIST_MAX];
} qm_vma_list_t;

struct qm_heap_s;

/* qm_segment_t: the header at the start of every segment and huge mapping.
 *
 *   +------------------+------------------------------+--------+--------+-----  ---+
 *   | header | slices[] (512 x 64 B descriptors)       | span   | span   |   ...    |
 *   +------------------+------------------------------+--------+--------+-----  ---+
 *   ^ 4 MiB aligned        first QM_SEGMENT_META_SLICES slices      ^ segment + 4 MiB
 *
 * A huge mapping has the same header (without slices), and the block at segment + block_offset
 * with 0 < block_offset <= QM_SEGMENT_SIZE, so segment_of(p) = (p - 1) & ~mask finds it.
 *
 * owner_thread and owner_heap are atomic: other threads read them to route a free. They are written
 * by the owner when it abandons the segment (0 / NULL), and by the adopter under the abandoned-list
 * lock. owner_heap == NULL => owner_thread == 0; owner_thread == 0 with an owner_heap means that heap
 * is a first-class heap whose thread has exited (orphaned: every free goes to its inbox).
 *
 * Slice map invariant (checked by validate.c): slice_class[i] is the size_class of the small page
 * covering slice i, QM_CLASS_LARGE where a large block covers it, QM_SLICE_NO_BLOCK elsewhere
 * (metadata slices, free spans).
 *
 * Head invariant (checked by validate.c): slice_head[i] is the byte offset, from the segment, of
 * the descriptor of the head of the span that slice i belongs to, for every slice of a small page
 * or large block and for the first and last slice of every span (so a block's head descriptor is
 * one load away, and span coalescing finds a left neighbour's head from its last slice). Metadata
 * slices point at their own descriptors, which are marked not in use; so do the inner slices of a
 * freed span when it is freed (later merges may leave older values there, never read).
 */
typedef struct qm_segment_s {
  /* The first cache line: what a free by another thread reads (owner, kind, magic), and what never
   * changes while the segment is mapped. Fields the owner writes as it works lie further on, so
   * that its work does not take the line away from the other cores. */
  _Atomic(uintptr_t) owner_thread;        /* the owner heap's thread_id; 0: abandoned, orphaned, huge.
                                             The free fast path compares it with the thread pointer. */
  _Atomic(struct qm_heap_s *) owner_heap; /* NULL: abandoned, or huge */
  uint32_t kind;                          /* qm_segment_kind_t */
  uint32_t magic;                         /* QM_SEGMENT_MAGIC while mapped */
  /* normal segments: 1 while the owner is a first-class heap (whose blocks may die all at once
   * with qm_heap_destroy, so other threads must not hold its blocks back in remote batches);
   * written with the owner, before any block of the segment is handed out */
  uint32_t owner_is_user_heap;
  uint32_t unused_;
  size_t mapping_size; /* bytes mapped at mapping_base */
  void *mapping_base;  /* start of the OS mapping (huge: may precede segment) */
  /* huge segments */
  size_t block_offset;          /* bytes from segment to the block */
  size_t block_size;            /* usable bytes of the huge block */
  struct qm_heap_s *huge_owner; /* the first-class heap that lists this huge block (next/prev link it
                                   into its huge_blocks), or NULL; written under that heap's huge_lock */
  /* normal segments */
  uint32_t used_slices;       /* slices in small or large spans */
  uint32_t abandoned;         /* 0: owned or free; on an abandoned list: 1 dirty, 2 clean, 3 nothing live */
  uint64_t abandoned_at_ns;   /* when it was abandoned (monotonic clock) */
  qm_block_t *abandoned_free; /* blocks freed while abandoned; under the abandoned-list lock */
  struct qm_segment_s *next;  /* in the owner heap's segment list, or the abandoned list */
  struct qm_segment_s *prev;
  /* abandoned segments: blocks still live in it (handed out by its pages, one per large block),
   * less the frees parked since it was abandoned; under the abandoned-list lock (segment.c) */
  uint32_t abandoned_live;
  uint8_t padding_[12];
  /* The small pages the decay passes must look at (purge.c), one bit per slice, set only at the
   * head of a small page. A small page whose bit is clear is full (IN_FULL) or thinned: a pass
   * would do nothing with it (but for a thinned page the frees have emptied since, which a pass
   * that reads every descriptor finds, purge.c). What ends either state (a block freed into a full
   * page, the page allocated from again) sets the bit; the pass clears it. So a pass reads only the
   * descriptors it may act on: a big heap of full or thinned pages costs it a few words per
   * segment. Owner only, as the descriptors. */
  uint64_t decay_watch[QM_SLICES_PER_SEGMENT / 64];
  /* What each slice holds, for a free by another thread, which so reads no page descriptor (the
   * owner writes those with every malloc and free): the class of the small page it is part of,
   * QM_CLASS_LARGE in a large block, QM_SLICE_NO_BLOCK anywhere else (metadata, free spans).
   * Written by the owner when a span is carved into a page or block and when it is freed; a
   * slice under a live block does not change until that block is freed. Own cache lines. */
  union {
    uint8_t slice_class[QM_SLICES_PER_SEGMENT];
    qm_vma_list_t huge_vmas; /* huge segments: where the mapping may be split into VMAs */
  };
  /* Where the head descriptor of each slice's span is (see the head invariant above). Kept here, 2
   * bytes a slice, rather than in the 64-byte descriptors, so that the free of a block reads one
   * small, mostly cached array instead of a descriptor line inside its page: 1 KiB for the whole
   * segment against 32 KiB of descriptors. */
  uint16_t slice_head[QM_SLICES_PER_SEGMENT];
  qm_page_t slices[QM_SLICES_PER_SEGMENT];
} qm_segment_t;

#define QM_SEGMENT_MAGIC 0x716d5347u /* "qmSG" */
#define QM_SLICE_NO_BLOCK 0xff       /* slice_class of a slice under no block */
_Static_assert(offsetof(qm_segment_t, slice_class) % 64 == 0 &&
                   offsetof(qm_segment_t, slice_head) % 64 == 0 && offsetof(qm_segment_t, slices) % 64 == 0,
               "the slice maps and descriptors begin on cache lines");
_Static_assert(sizeof(qm_segment_t) <= 65536, "slice_head values (descriptor offsets) fit 16 bits");
_Static_assert(offsetof(qm_segment_t, huge_vmas) + sizeof(qm_vma_list_t) <= QM_HUGE_HEADER_SIZE,
               "a huge block's header fits the page before the block");
_Static_assert(QM_CLASS_LARGE < QM_SLICE_NO_BLOCK, "slice_class values fit a byte");
#define QM_SEGMENT_META_SLICES ((sizeof(qm_segment_t) + QM_SLICE_SIZE - 1) / QM_SLICE_SIZE)
#define QM_SEGMENT_FIRST_SLICE QM_SEGMENT_META_SLICES
#define QM_SEGMENT_USABLE_SLICES (QM_SLICES_PER_SEGMENT - QM_SEGMENT_META_SLICES)

/* ---------------------------------------------------------------------------------------------
 * Locks: a spin lock, taken only on paths a steady-state allocation never takes.
 * ------------------------------------------------------------------------------------------- */

typedef struct qm_lock_s {
  _Atomic int locked;
} qm_lock_t;

/* ---------------------------------------------------------------------------------------------
 * Heaps
 * ------------------------------------------------------------------------------------------- */

#if QM_STATS >= 2
/* Level-2 statistics of one heap. Only the owner writes them (a relaxed load and a relaxed store,
 * never a read-modify-write); stats.c reads them from any thread as racy snapshots. When the heap
 * is handed back, stats.c merges them into process-wide totals and they start again from zero.
 *   in_use      bytes of blocks this heap handed out minus bytes freed back to it (may go below
 *               zero: a heap frees what another heap allocated in a segment it adopted);
 *   published   the part of in_use already added to the process total (stats.c);
 *   peak_local  the highest in_use since the last publication. */
typedef struct qm_heap_stats_s {
  uint64_t requests[QM_CLASS_COUNT];        /* small requests served, per class */
  uint64_t bytes_requested[QM_CLASS_COUNT]; /* bytes asked for in those requests */
  int64_t in_use;
  int64_t published;
  int64_t peak_local;
} qm_heap_stats_t;
#endif

/* qm_heap_t: one thread's allocator, or a first-class heap (qm_heap_new, src/user_heap.c).
 *
 * A first-class heap is an ordinary heap that is not the thread's TLS heap: it allocates only when
 * asked by name, from the thread that created it (thread_id), and qm_heap_destroy releases all of
 * its segments and huge blocks at once. Its thread heap lists it in user_heaps, so that it can be
 * orphaned (thread_id 0) when the thread exits.
 *
 * Invariants:
 *   direct[i] (size (i*16-15 .. i*16)) and class_page[c] point at the first page of the class's
 *   queue, or at the shared empty page (whose free list is NULL), never at NULL: the fast path
 *   never tests for a missing page.
 *   Every page in class_queue[c] has size_class == c and is not IN_FULL.
 *   pages_emptied == pages_emptied_swept => every page in class_queue[c] but the first has used > 0.
 *   pages_emptied == pages_emptied_quick_swept => the same for the classes of the quick sweeps.
 *   Every free span of every segment in `segments` is in span_bins[span_bin(count)].
 *   inbox and inbox_pushed are the only fields other threads write freely (atomic push, then an
 *   atomic add of the count pushed); the owner takes the inbox with exchange. Taken parcels are
 *   the owner's alone: drain_parcel and the parcels its link leads to, of whose blocks the entries
 *   from drain_slot on (up to drain_end <= the parcel's capacity) and the parcels themselves are
 *   still to be collected; until then they count as used in their pages, as blocks in the inbox do.
 *   purge_seen_drains and inbox_purged are written by other threads under span_lock; the owner
 *   reads inbox_purged (atomically) when it takes the inbox.
 *   remote[] is empty while the heap is in the pool (flushed when its thread exits).
 *   thread_id identifies the owning thread; 0 when the heap is not in use, or orphaned.
 *   user_magic == QM_USER_HEAP_MAGIC exactly while the heap is a live first-class heap; then every
 *   segment in `segments` has owner_thread == thread_id, and no segment ever leaves it except to
 *   be released (a first-class heap never adopts nor abandons segments).
 *   huge_blocks (first-class heaps): every live huge block allocated from the heap, each with
 *   huge_owner == this heap; under huge_lock, since any thread may free a huge block.
 *   A heap is on the live list (live_next/live_prev) from the moment it leaves the pool until it
 *   goes back; pool_next is meaningful only while it is in the pool.
 */
#define QM_REMOTE_SLOTS 8        /* batches per heap, one owner each, chosen by a hash of the owner */
#define QM_REMOTE_BATCH 32       /* blocks in a batch before it is pushed (parcels and their entries) */
#define QM_AHEAD 2               /* how many entries ahead the owner's drain prefetches (heap.c) */
#define QM_DRAIN_SHARE 16        /* blocks of the inbox a small slow path collects (heap.c) */
#define QM_DRAIN_MALLOC_MIN 128  /* ... when more than this many wait (fewer: the frees collect) */
#define QM_DRAIN_BACKLOG_MAX 256 /* ... all of them once more than this many wait */
#define QM_DRAIN_ON_PARCEL 32    /* blocks a free that closes a parcel collects of its own inbox */

/* Blocks one thread freed that belong to another thread heap, held back so that they reach the
 * owner's inbox together: one compare-and-swap per QM_REMOTE_BATCH blocks instead of one per
 * block, and the inbox's cache line moves between cores that much less often.
 * The batch is a chain of parcels (block-inl.h): freed blocks that carry, after their link, the
 * addresses of other freed blocks of the same owner. The freeing thread writes only into its
 * newest parcel, never into the blocks it lists, and the owner reads the addresses eight to a
 * cache line instead of taking one block's cache line after another.
 * Invariants: first == NULL <=> the batch is empty, and then room == 0. Otherwise first is the open
 * parcel: its entries run from qm_parcel_slot(first, 0) to cursor, room more may follow (never more
 * than it has words for), and `below` is the parcel it will link to when it is closed (NULL if
 * none). below .. last are closed parcels, newest first, last the oldest (last == first when there
 * is one parcel). Every block in them was owned, when it was freed, by `owner`, a thread heap,
 * never a first-class heap. count is the number of blocks in the batch except first's entries.
 * `owner` may be stale while the batch is empty.
 * Aligned (so padded) to 64 bytes: the cross-thread free turns hash bits straight into a batch's
 * offset (free.c, remote_batch_of). */
typedef struct __attribute__((aligned(64))) qm_remote_batch_s {
  struct qm_heap_s *owner;
  qm_block_t **cursor; /* where first's next entry goes */
  uint32_t room;       /* entries first may still take */
  uint32_t count;
  qm_block_t *first; /* the open parcel */
  qm_block_t *below; /* the closed parcels, newest first */
  qm_block_t *last;  /* the oldest parcel */
} qm_remote_batch_t;

_Static_assert(sizeof(qm_remote_batch_t) == 64, "remote batches are indexed by a shift");
_Static_assert((QM_REMOTE_SLOTS & (QM_REMOTE_SLOTS - 1)) == 0, "remote slots are chosen by hash bits");
_Static_assert(QM_AHEAD >= 1, "the drain's cursor runs ahead of the entry it collects");

typedef struct qm_heap_s {
  qm_page_t *direct[QM_DIRECT_COUNT];    /* fast path for sizes <= QM_DIRECT_MAX */
  qm_page_t *class_page[QM_CLASS_COUNT]; /* fast path for the other small sizes */
  qm_page_list_t class_queue[QM_CLASS_COUNT];
  qm_page_list_t span_bins[QM_SPAN_BINS];
  _Atomic(qm_block_t *) inbox; /* blocks freed by other threads */
  /* Blocks pushed onto the inbox so far (by the pushers) and blocks the owner has collected from
   * it: their difference is the backlog that sets how much a slow path drains (heap.c). */
  _Atomic uint64_t inbox_pushed;
  uint64_t inbox_collected;
  /* The parcel the owner is draining (NULL: none), the next of its entries to collect and the end
   * of its entries; the parcels after it follow its link (heap.c, "Draining the inbox in shares"). */
  qm_block_t *drain_parcel;
  uint32_t drain_slot;
  uint32_t drain_end;
  bool collecting; /* a collect is running: what it frees must not start another (heap.c) */
  /* Its byte in the segment map (QM_MAP_OWNED_MIN and up, or QM_MAP_NO_OWNER): given when the struct
   * is carved and kept for good, so no two heaps ever share one. */
  uint8_t map_owner;
  uintptr_t thread_id;
  qm_remote_batch_t remote[QM_REMOTE_SLOTS]; /* this thread's frees bound for other heaps */
  qm_segment_t *segments;                    /* segments owned by this heap (doubly linked via next/prev) */
  size_t segment_count;
  size_t empty_segment_count; /* segments with no used slice (kept one for reuse) */
  /* The segment whose parked frees an adoption is freeing (segment.c), or NULL: it stays in the
   * heap when it empties (neither span.c nor a decay pass releases it), so that the adopter may
   * still look at it; a decay pass run by one of those frees adopts nothing. */
  qm_segment_t *adopting;
  uint64_t slow_path_count; /* drives periodic sweeps of empty pages */
  /* Counts events that may leave an empty page in a class queue behind its front, and the count
   * as it stood after the last sweep: while the two are equal, every queued page but each queue's
   * first holds a block, and a sweep that keeps the first pages would free nothing (page.c). */
  uint64_t pages_emptied;
  uint64_t pages_emptied_swept;
  uint64_t pages_emptied_quick_swept; /* the count after the last sweep of either kind */
  uint64_t decay_next_ns;             /* when _qm_heap_decay is next due: a quick sweep, or a decay pass */
  uint64_t decay_pass_ns;             /* when the next decay pass is due (purge.c) */
  /* Bytes of freed large blocks the owner may still purge at once before the next decay pass,
   * which sets it back to qm_eager_purge_budget() (span.c, "Eager purges"). */
  size_t eager_purge_left;
  /* Bytes of emptied current pages a growth pass may still uncarve at once before the next decay
   * pass, which sets it back to qm_idle_uncarve_budget() (purge.c, "The current page of an idle
   * class"). */
  size_t idle_uncarve_left;
  /* Fresh memory (never written, or purged) the heap has made resident since its last growth pass
   * (purge.c, "Growth passes"); counted where it carves or hands out such memory. */
  uint64_t grown_bytes;
  uint64_t growth_pass_ns; /* when the last growth pass ran */
  /* Until when the purges for the peak are off (purge.c, "Purges for the peak"): the process was
   * found well below its peak resident set, or the heap keeps taking back what they give back
   * ("Purges taken back at once"); 0 at first. */
  uint64_t peak_purges_off_until_ns;
  /* The last QM_PEAK_PURGE_RING ranges purged for the peak, the newest at
   * peak_purges[(peak_purge_count - 1) % QM_PEAK_PURGE_RING]; one made longer than the refault window
   * ago no longer counts. The refault state (purge.c, "Purges taken back at once"): peak_refault_bytes
   * counts what the heap took back within the window, ever; peak_refault_ns is when it last took some
   * back, or when the pause that started ends; the pause lasts the window << peak_refault_streak. */
  qm_purged_range_t peak_purges[QM_PEAK_PURGE_RING];
  uint64_t peak_purge_last_ns; /* when the newest was made; 0 for none */
  uint64_t peak_refault_bytes;
  uint64_t peak_refault_ns;
  uint32_t peak_purge_count;
  uint32_t peak_refault_streak;
  uint64_t page_pass_ns; /* when the last pass of either kind looked at the pages */
  /* The purge of an idle heap's inbox (purge.c): inbox_drains counts the owner's drains (only the
   * owner writes it, others read it); purge_seen_drains (its value at the last visit) and
   * inbox_purged (the newest parcel of the chain that visit handled, or NULL) are written by other
   * threads' decay passes, under this heap's span lock; inbox_purged is stored before the chain
   * goes back into the inbox, so the owner's exchange that takes it sees the mark (heap.c). */
  uint64_t inbox_drains;
  uint64_t quick_sweep_drains; /* the owner's: inbox_drains at its last quick sweep (page.c) */
  uint64_t purge_seen_drains;
  qm_block_t *inbox_purged;
  qm_block_t *inbox_purge_seen; /* the owner's: the last inbox_purged its collect acted on (heap.c) */
  /* Guards the span layer of this heap (bins, free spans, segment list) against the one foreign
   * visitor it has: a thread purging an idle heap's free spans and inbox, or running malloc_trim.
   * The owner holds it during span-layer work, re-entrantly (span_lock_depth is the owner's alone);
   * the fast paths never take it. */
  qm_lock_t span_lock;
  uint32_t span_lock_depth;
  struct qm_heap_s *pool_next; /* in the heap pool while no thread uses it */
  /* first-class heaps */
  uint32_t user_magic;          /* QM_USER_HEAP_MAGIC: a live first-class heap */
  qm_lock_t huge_lock;          /* guards huge_blocks and the huge_owner links */
  qm_segment_t *huge_blocks;    /* this heap's huge blocks (linked via next/prev) */
  struct qm_heap_s *user_heaps; /* thread heap: the first-class heaps this thread owns */
  struct qm_heap_s *user_next;  /* first-class heap: in its thread heap's user_heaps */
  struct qm_heap_s *user_prev;
  struct qm_heap_s *live_next; /* in the list of heaps in use (heap.c), under the pool lock */
  struct qm_heap_s *live_prev;
#if QM_STATS >= 2
  qm_heap_stats_t stats;
#endif
#if QM_SECURE
  uint64_t random; /* state of the heap's generator for carving order (secure.c); 0: not seeded */
#endif
} qm_heap_t;

/* The heap pool (heap.c) carves thread heaps back to back from page-aligned chunks: at most an OS
 * page each, a program with one thread writes one page for its heap, where 4160 bytes took two. */
#if !QM_SECURE && QM_STATS < 2
_Static_assert(sizeof(qm_heap_t) <= 4096, "a thread heap of the default library fits one OS page");
#endif

#define QM_USER_HEAP_MAGIC 0x716d4850u /* "qmHP" */

#endif /* QM_TYPES_H */
