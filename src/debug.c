/* debug.c - the debug layer of libqmalloc-debug.so: finds heap bugs in a program that runs with it.
 *
 * Built only into the debug variant (QM_VARIANT_DEBUG=1). While QMALLOC_DEBUG is on (its default
 * there), the entry points of alloc.c, free.c and override.c call the functions of debug.h, which
 * allocate every block from the allocator below (the ordinary qmalloc paths) with room for a header
 * in front of it and a redzone behind it:
 *
 *   inner block (from qmalloc)                                   inner usable end
 *   v                                                                          v
 *   +------------------+---------------------+--------------------+-------------+
 *   | slack (aligned   | header (64 bytes)   | user bytes (size)  | redzone     |
 *   | blocks only)     | guard ... canary    | p                  | 0xfb ...    |
 *   +------------------+---------------------+--------------------+-------------+
 *                      ^ p - 64              ^ p = inner + offset (offset = max(64, alignment))
 *
 * What is checked, and when (docs/DEBUGGING.md says it for users):
 *   - the guard and canary words of the header (an underflow, or a smash from the block before)
 *     and every redzone byte (an overflow): on free, realloc, qm_heap_validate() and at exit;
 *   - fresh blocks get 0xaa in their first FILL_ALLOC_MAX bytes (calloc's stay zero);
 *   - freed blocks are filled with 0xdf and kept in a quarantine (at most QUARANTINE_MAX_BLOCKS
 *     blocks and QUARANTINE_MAX_BYTES bytes; blocks above QUARANTINE_MAX_BLOCK go back at once);
 *     a changed byte is a write after free, reported when the block leaves the quarantine, by
 *     qm_heap_validate() and at exit;
 *   - a free of a block that is quarantined or released is a double free (the header's state); a
 *     free of a pointer that is not a block start is found from qmalloc's page metadata: the inner
 *     block holding the pointer is computed, and its header looked for at every possible offset;
 *   - at exit, every block still live is reported, grouped by the call stack that allocated it.
 * Every report is one line "qmalloc: <what> ... at <address>", then lines of details (the stacks),
 * then abort().
 *
 * Call stacks come from backtrace(), which may allocate on its first call (it loads the unwinder):
 * it is called once at load time with capture turned off for this thread, and a thread that
 * allocates while capturing gets no stack (site 0) instead of recursing. Stacks are interned in a
 * table of sites mapped from the OS; no lock of this file is held across a call that may allocate.
 * Lock order: a registry stripe, the quarantine and the site table are never held together, except
 * by the fork handlers, which take them all in the order site table, quarantine, stripes.
 */
#define _GNU_SOURCE
#include "debug.h"

#include "alloc-inl.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------------
 * Block header and fill bytes
 * ------------------------------------------------------------------------------------------- */

#define HEADER_SIZE 64
#define REDZONE_MIN 16                  /* redzone bytes at least; the rest of the inner block too */
#define FILL_ALLOC 0xaa                 /* fresh malloc'ed bytes (calloc'ed ones are zero) */
#define FILL_ALLOC_MAX 4096             /* only the first bytes: filling big blocks would fault them all in */
#define FILL_FREED 0xdf                 /* bytes of a quarantined block */
#define FILL_REDZONE 0xfb               /* bytes behind a block */
#define GUARD_MAGIC 0x716d4447554152ull /* "qmDGUAR" */
#define CANARY_MAGIC 0x716d43414e415259ull /* "qmCANARY" */

typedef enum block_state_e {
  STATE_LIVE = 0x4c495645,        /* "LIVE": handed out, in the registry */
  STATE_QUARANTINED = 0x51554152, /* "QUAR": freed, in the quarantine, still held from qmalloc */
  STATE_RELEASED = 0x52454c53,    /* "RELS": freed and given back to qmalloc */
} block_state_t;

/* The header in front of every debug block. Invariants, for a header h with user bytes at h + 1:
 *   h->guard == GUARD_MAGIC ^ h and h->canary == CANARY_MAGIC ^ h while the block is live or
 *   quarantined (so a stale or random word almost never passes for a header);
 *   h->offset == (h + 1) - inner block start, a power of two >= 64;
 *   state LIVE <=> h is in exactly one registry stripe list (stripe_of(h)), linked by next/prev;
 *   state QUARANTINED <=> h is in the quarantine FIFO, linked by next;
 *   bytes [size, inner usable end) behind the user bytes hold FILL_REDZONE, and while quarantined
 *   the user bytes hold FILL_FREED.
 * The canary is the last word, next to the user bytes, so that a one-byte underflow breaks it; the
 * guard is the first, so that an overflow out of the block in front breaks it. */
typedef struct header_s {
  uint64_t guard;
  struct header_s *next;
  struct header_s *prev;
  size_t size;        /* bytes requested */
  uint32_t site;      /* allocation stack (site table index; 0: none) */
  uint32_t free_site; /* stack of the free that quarantined it */
  uint32_t offset;    /* user bytes - inner block start */
  uint32_t state;     /* block_state_t; changed with compare-and-swap (two racing frees) */
  uint64_t reserved;
  uint64_t canary;
} header_t;
_Static_assert(sizeof(header_t) == HEADER_SIZE, "the debug header is 64 bytes");

static inline uint8_t *user_of(header_t *h) { return (uint8_t *)(h + 1); }
static inline header_t *header_of(const void *p) { return (header_t *)((uintptr_t)p - HEADER_SIZE); }
static inline uint8_t *inner_of(header_t *h) { return user_of(h) - h->offset; }
static inline bool canary_intact(const header_t *h) { return h->canary == (CANARY_MAGIC ^ (uintptr_t)h); }
static inline bool header_intact(const header_t *h) {
  return h->guard == (GUARD_MAGIC ^ (uintptr_t)h) && h->canary == (CANARY_MAGIC ^ (uintptr_t)h);
}

/* ---------------------------------------------------------------------------------------------
 * Bounds
 * ------------------------------------------------------------------------------------------- */

/* The quarantine: freed blocks wait here (oldest leaves first) while either bound is exceeded.
 * Blocks above QUARANTINE_MAX_BLOCK bytes are checked and released at once. */
#define QUARANTINE_MAX_BLOCKS 8192
#define QUARANTINE_MAX_BYTES ((size_t)32 << 20)
#define QUARANTINE_MAX_BLOCK ((size_t)1 << 20)

#define SITE_FRAMES 16      /* frames kept per stack */
#define SITE_CAPACITY 65536 /* distinct stacks (a power of two); more get site 0 */
#define LEAK_SITES_SHOWN 32 /* sites the leak report prints; the rest are summed up */
#define REGISTRY_STRIPES 64

/* ---------------------------------------------------------------------------------------------
 * Call stacks and the site table
 * ------------------------------------------------------------------------------------------- */

/* One distinct allocation (or free) stack. Slot 0 stands for "no stack". hash == 0: empty slot.
 * leak_bytes and leak_blocks are filled only by the leak report. */
typedef struct site_s {
  uint64_t hash;
  uint32_t depth;
  uint32_t reserved;
  void *frames[SITE_FRAMES];
  uint64_t leak_bytes;
  uint64_t leak_blocks;
} site_t;

static site_t *sites;     /* SITE_CAPACITY slots, mapped at load time; NULL: no stacks */
static size_t site_count; /* slots in use, under site_lock */
static qm_lock_t site_lock;
static _Atomic bool capture_ready;
static uintptr_t own_text_start, own_text_end; /* frames in here are the allocator's own: skipped */
static __thread bool tls_capturing __attribute__((tls_model("initial-exec")));

/* The site of blocks that backtrace() itself allocates (the unwinder it loads): they are the
 * debug layer's own, so the leak report leaves them out. */
#define SITE_UNWINDER UINT32_MAX

/* The stack of the calling function's caller, interned; 0 when it cannot be had. */
static uint32_t capture_site(void) {
  if (tls_capturing)
    return SITE_UNWINDER;
  if (!atomic_load_explicit(&capture_ready, memory_order_acquire))
    return 0;
  void *frames[SITE_FRAMES + 8];
  tls_capturing = true;
  int n = backtrace(frames, (int)(sizeof frames / sizeof frames[0]));
  tls_capturing = false;
  int first = 0;
  while (first < n && (uintptr_t)frames[first] >= own_text_start && (uintptr_t)frames[first] < own_text_end)
    first++;
  uint32_t depth = (uint32_t)(n - first < SITE_FRAMES ? n - first : SITE_FRAMES);
  uint64_t hash = depth;
  for (uint32_t i = 0; i < depth; i++)
    hash = qm_mix64(hash ^ (uintptr_t)frames[first + i]);
  hash |= 1; /* 0 marks an empty slot */
  uint32_t found = 0;
  _qm_lock(&site_lock);
  for (size_t i = hash & (SITE_CAPACITY - 1);; i = (i + 1) & (SITE_CAPACITY - 1)) {
    site_t *s = &sites[i];
    if (i == 0)
      continue;
    if (s->hash == 0) {
      if (site_count >= SITE_CAPACITY / 4 * 3)
        break; /* full enough: probes would get long */
      s->hash = hash;
      s->depth = depth;
      memcpy(s->frames, frames + first, depth * sizeof(void *));
      site_count++;
      found = (uint32_t)i;
      break;
    }
    if (s->hash == hash && s->depth == depth &&
        memcmp(s->frames, frames + first, depth * sizeof(void *)) == 0) {
      found = (uint32_t)i;
      break;
    }
  }
  _qm_unlock(&site_lock);
  return found;
}

static int find_own_text(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t self = (uintptr_t)arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && self >= start && self < start + ph->p_memsz) {
      own_text_start = start;
      own_text_end = start + ph->p_memsz;
      return 1;
    }
  }
  return 0;
}

/* Prints one frame: address, symbol+offset when the dynamic symbol table has one, and the object. */
static void print_frame(int index, void *address) {
  Dl_info info;
  /* A return address points after the call: look up the byte before it. */
  if (dladdr((uint8_t *)address - 1, &info) && info.dli_fname != NULL) {
    if (info.dli_sname != NULL)
      _qm_message("    #%d %p in %s+0x%zx (%s)", index, address, info.dli_sname,
                  (size_t)((uintptr_t)address - (uintptr_t)info.dli_saddr), info.dli_fname);
    else
      _qm_message("    #%d %p in %s+0x%zx", index, address, info.dli_fname,
                  (size_t)((uintptr_t)address - (uintptr_t)info.dli_fbase));
  } else {
    _qm_message("    #%d %p", index, address);
  }
}

static void print_site(uint32_t index, const char *what) {
  if (sites == NULL || index == 0 || index >= SITE_CAPACITY || sites[index].hash == 0) {
    _qm_message("  %s at: (no call stack: recorded while the process started or while taking one)", what);
    return;
  }
  _qm_message("  %s at:", what);
  const site_t *s = &sites[index];
  for (uint32_t i = 0; i < s->depth; i++)
    print_frame((int)i, s->frames[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Reports: a first line that says what and where, details, abort. No lock of this file is held.
 * ------------------------------------------------------------------------------------------- */

static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

qm_cold qm_noreturn static void report_end(void) { abort(); }

static void print_block_history(header_t *h) {
  print_site(h->site, "the block was allocated");
  if (h->state != STATE_LIVE && h->free_site != 0)
    print_site(h->free_site, "and freed");
}

/* Redzone bytes [first, last] (counted from the block's end) differ from the fill. */
qm_cold qm_noreturn static void report_overflow(header_t *h, size_t first, size_t last,
                                                const char *found_by) {
  uint8_t *end = user_of(h) + h->size;
  _qm_message("heap overflow: %zu byte%s past the %zu-byte block at %p", last + 1, plural(last + 1), h->size,
              (void *)user_of(h));
  _qm_message("  first byte changed: %zu past the end, at %p (0x%02x, redzone fill 0x%02x); found by %s",
              first, (void *)(end + first), end[first], FILL_REDZONE, found_by);
  print_block_history(h);
  report_end();
}

qm_cold qm_noreturn static void report_use_after_free(header_t *h, size_t index, const char *found_by) {
  _qm_message(
      "use after free: byte %zu of the freed %zu-byte block at %p was written (0x%02x, freed fill 0x%02x)",
      index, h->size, (void *)user_of(h), user_of(h)[index], FILL_FREED);
  _qm_message("  found by %s", found_by);
  print_block_history(h);
  report_end();
}

qm_cold qm_noreturn static void report_header(const void *p, const char *found_by) {
  _qm_message("heap underflow or header overwritten: the header in front of the block at %p is corrupt", p);
  _qm_message("  (its guard or canary word changed: a write before the block, or past the one in front); "
              "found by %s",
              found_by);
  report_end();
}

qm_cold qm_noreturn static void report_double_free(header_t *h, const char *function) {
  _qm_message("double free: %s of the %zu-byte block at %p, which was freed already%s", function, h->size,
              (void *)user_of(h), h->state == STATE_QUARANTINED ? " (it is in quarantine)" : "");
  print_site(capture_site(), "this free");
  print_block_history(h);
  report_end();
}

qm_cold qm_noreturn static void report_invalid(const char *function, const void *p, const char *why) {
  _qm_message("invalid free: %s(%p): %s", function, p, why);
  print_site(capture_site(), "called");
  report_end();
}

qm_cold qm_noreturn static void report_interior(const char *function, const void *p, header_t *h) {
  _qm_message("invalid free: %s(%p): an interior pointer, %zu bytes into the %zu-byte block at %p", function,
              p, (size_t)((const uint8_t *)p - user_of(h)), h->size, (void *)user_of(h));
  print_site(capture_site(), "called");
  print_block_history(h);
  report_end();
}

/* ---------------------------------------------------------------------------------------------
 * Checks of one block
 * ------------------------------------------------------------------------------------------- */

/* The redzone of h; reports an overflow. */
static void check_redzone(header_t *h, const char *found_by) {
  uint8_t *end = user_of(h) + h->size;
  size_t redzone = _qm_usable_size(inner_of(h)) - h->offset - h->size;
  size_t first = SIZE_MAX, last = 0;
  for (size_t i = 0; i < redzone; i++) {
    if (end[i] != FILL_REDZONE) {
      if (first == SIZE_MAX)
        first = i;
      last = i;
    }
  }
  if (qm_unlikely(first != SIZE_MAX))
    report_overflow(h, first, last, found_by);
}

/* The fill of a quarantined block; reports a write after free. */
static void check_freed_fill(header_t *h, const char *found_by) {
  const uint8_t *u = user_of(h);
  for (size_t i = 0; i < h->size; i++)
    if (qm_unlikely(u[i] != FILL_FREED))
      report_use_after_free(h, i, found_by);
}

/* ---------------------------------------------------------------------------------------------
 * Where a pointer lies: the inner block of qmalloc that holds it, from the page metadata
 * ------------------------------------------------------------------------------------------- */

typedef enum locate_e {
  LOCATE_BLOCK,    /* in a block: *start and *usable describe it */
  LOCATE_FOREIGN,  /* not memory of qmalloc's */
  LOCATE_RELEASED, /* memory qmalloc has given back */
  LOCATE_NO_BLOCK, /* qmalloc's, but metadata or free space */
} locate_t;

/* A huge block whose start lies a power of two (>= 64) below p, and which holds p: the segment
 * map marks only the first region of a huge block, and a block aligned to 4 MiB or more puts its
 * user bytes beyond it. */
static bool locate_in_huge(const void *p, uint8_t **start, size_t *usable) {
  for (uintptr_t offset = HEADER_SIZE; offset <= ((uintptr_t)1 << 40) && offset < (uintptr_t)p;
       offset <<= 1) {
    const uint8_t *q = (const uint8_t *)p - offset;
    if (qm_map_state(q) != QM_MAP_HUGE)
      continue;
    qm_segment_t *segment = qm_segment_of(q);
    uint8_t *block = (uint8_t *)segment + segment->block_offset;
    if (segment->magic == QM_SEGMENT_MAGIC && segment->kind == QM_SEGMENT_HUGE && block == q &&
        (const uint8_t *)p < block + segment->block_size) {
      *start = block;
      *usable = segment->block_size;
      return true;
    }
  }
  return false;
}

static locate_t locate(const void *p, uint8_t **start, size_t *usable) {
  unsigned state = qm_map_state(p);
  if (state != QM_MAP_NORMAL && state != QM_MAP_HUGE && locate_in_huge(p, start, usable))
    return LOCATE_BLOCK;
  switch (state) {
  case QM_MAP_HUGE: {
    qm_segment_t *segment = qm_segment_of(p);
    uint8_t *block = (uint8_t *)segment + segment->block_offset;
    if (segment->magic != QM_SEGMENT_MAGIC || segment->kind != QM_SEGMENT_HUGE ||
        (const uint8_t *)p < block || (const uint8_t *)p >= block + segment->block_size)
      return LOCATE_NO_BLOCK;
    *start = block;
    *usable = segment->block_size;
    return LOCATE_BLOCK;
  }
  case QM_MAP_NORMAL:
    break;
  case QM_MAP_FREED:
    return LOCATE_RELEASED;
  default:
    return LOCATE_FOREIGN;
  }
  qm_segment_t *segment = qm_segment_of_normal(p);
  if (segment->magic != QM_SEGMENT_MAGIC || segment->kind != QM_SEGMENT_NORMAL ||
      (uintptr_t)p - (uintptr_t)segment < QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE)
    return LOCATE_NO_BLOCK;
  qm_page_t *page = qm_page_of(segment, p);
  uint8_t *page_start = qm_page_start(page);
  if (page->kind == QM_SPAN_LARGE) {
    *start = page_start;
    *usable = page->block_size;
    return LOCATE_BLOCK;
  }
  if (page->kind != QM_SPAN_SMALL)
    return LOCATE_NO_BLOCK;
  size_t index = (size_t)((const uint8_t *)p - page_start) / page->block_size;
  if (index >= page->capacity)
    return LOCATE_NO_BLOCK;
  *start = page_start + index * page->block_size;
  *usable = page->block_size;
  return LOCATE_BLOCK;
}

/* The header of a debug block in the inner block [start, start + usable), whichever offset it
 * was placed at; NULL when there is none. */
static header_t *find_header(uint8_t *start, size_t usable) {
  for (size_t offset = HEADER_SIZE; offset + REDZONE_MIN <= usable; offset *= 2) {
    header_t *h = header_of(start + offset);
    if (canary_intact(h) && h->offset == offset)
      return h;
  }
  return NULL;
}

/* The header of the debug block p, after checking that p is one; NULL when p is a block of qmalloc
 * that the debug layer did not make (a block of a first-class heap): the caller hands it on. Every
 * other pointer is reported. */
static header_t *checked_header(const void *p, const char *function) {
  uint8_t *start = NULL;
  size_t usable = 0;
  switch (locate(p, &start, &usable)) {
  case LOCATE_BLOCK:
    break;
  case LOCATE_FOREIGN:
    report_invalid(function, p, "not a block allocated by qmalloc");
  case LOCATE_RELEASED:
    report_invalid(function, p, "lies in memory qmalloc has already released (double free?)");
  case LOCATE_NO_BLOCK:
    report_invalid(function, p, "not in an allocated block (double free, or a pointer never returned)");
  }
  size_t offset = (size_t)((const uint8_t *)p - start);
  header_t *h = header_of(p);
  if (offset >= HEADER_SIZE && canary_intact(h) && h->offset == offset) {
    /* A released block's guard may hold the free-list link of the allocator below: the canary
     * and state say enough. */
    uint32_t state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
    if (state == STATE_RELEASED || (state == STATE_QUARANTINED && header_intact(h)))
      report_double_free(h, function);
    if (state == STATE_LIVE && header_intact(h))
      return h;
    report_header(p, function);
  }
  header_t *other = find_header(start, usable);
  if (other != NULL) {
    if (other->state != STATE_LIVE && other->state != STATE_QUARANTINED)
      report_invalid(function, p, "not in an allocated block (double free, or a pointer never returned)");
    if ((const uint8_t *)p > user_of(other) && (const uint8_t *)p < user_of(other) + other->size)
      report_interior(function, p, other);
    report_invalid(function, p, "not the start of a block (it points into a block's header or redzone)");
  }
  if (offset == 0)
    return NULL; /* a plain qmalloc block */
  if (offset >= HEADER_SIZE && qm_is_power_of_two(offset))
    report_header(p, function);
  report_invalid(function, p, "not the start of a block");
}

/* ---------------------------------------------------------------------------------------------
 * The registry of live blocks: REGISTRY_STRIPES locked lists, chosen by the header's address, so
 * that any thread can free any block and threads seldom meet on a lock.
 * ------------------------------------------------------------------------------------------- */

typedef struct stripe_s {
  qm_lock_t lock;
  header_t *first; /* doubly linked through next/prev; first->prev == NULL */
} __attribute__((aligned(64))) stripe_t;

static stripe_t stripes[REGISTRY_STRIPES];

static stripe_t *stripe_of(const header_t *h) {
  return &stripes[qm_mix64((uintptr_t)h) & (REGISTRY_STRIPES - 1)];
}

static void registry_add(header_t *h) {
  stripe_t *s = stripe_of(h);
  _qm_lock(&s->lock);
  h->prev = NULL;
  h->next = s->first;
  if (s->first != NULL)
    s->first->prev = h;
  s->first = h;
  _qm_unlock(&s->lock);
}

static void registry_remove(header_t *h) {
  stripe_t *s = stripe_of(h);
  _qm_lock(&s->lock);
  if (h->prev != NULL)
    h->prev->next = h->next;
  else
    s->first = h->next;
  if (h->next != NULL)
    h->next->prev = h->prev;
  _qm_unlock(&s->lock);
  h->next = h->prev = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The quarantine: a FIFO of freed blocks, bounded by count and bytes
 * ------------------------------------------------------------------------------------------- */

static struct {
  qm_lock_t lock;
  header_t *head, *tail; /* oldest first, linked by next */
  size_t blocks, bytes;  /* bytes: user bytes of the blocks in it */
} quarantine;

/* A block out of the quarantine (or one too big for it) goes back to qmalloc. */
static void release(header_t *h) {
  __atomic_store_n(&h->state, STATE_RELEASED, __ATOMIC_RELEASE);
  qm_free_inline(inner_of(h));
}

/* Puts h into the quarantine and releases, checked, the oldest blocks beyond the bounds. */
static void quarantine_push(header_t *h) {
  enum { BATCH = 16 };
  header_t *leaving[BATCH];
  size_t n;
  h->next = NULL;
  _qm_lock(&quarantine.lock);
  if (quarantine.tail != NULL)
    quarantine.tail->next = h;
  else
    quarantine.head = h;
  quarantine.tail = h;
  quarantine.blocks++;
  quarantine.bytes += h->size;
  do {
    n = 0;
    while (n < BATCH &&
           (quarantine.blocks > QUARANTINE_MAX_BLOCKS || quarantine.bytes > QUARANTINE_MAX_BYTES)) {
      header_t *old = quarantine.head;
      quarantine.head = old->next;
      if (quarantine.head == NULL)
        quarantine.tail = NULL;
      quarantine.blocks--;
      quarantine.bytes -= old->size;
      leaving[n++] = old;
    }
    _qm_unlock(&quarantine.lock);
    for (size_t i = 0; i < n; i++) {
      if (!header_intact(leaving[i]))
        report_header(user_of(leaving[i]), "a block leaving the quarantine");
      check_freed_fill(leaving[i], "the block leaving the quarantine");
      check_redzone(leaving[i], "the block leaving the quarantine");
      release(leaving[i]);
    }
    if (n == BATCH)
      _qm_lock(&quarantine.lock);
  } while (n == BATCH);
}

/* ---------------------------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------------------------- */

void *_qm_debug_alloc(size_t alignment, size_t size, bool zero) {
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t offset = alignment <= HEADER_SIZE ? HEADER_SIZE : alignment;
  size_t inner_alignment = alignment <= QM_ALIGNMENT ? QM_ALIGNMENT : alignment;
  uint8_t *inner = _qm_malloc_aligned(inner_alignment, offset + size + REDZONE_MIN, zero);
  if (inner == NULL)
    return NULL;
  size_t usable = _qm_usable_size(inner);
  uint8_t *user = inner + offset;
  header_t *h = header_of(user);
  h->guard = GUARD_MAGIC ^ (uintptr_t)h;
  h->canary = CANARY_MAGIC ^ (uintptr_t)h;
  h->size = size;
  h->offset = (uint32_t)offset;
  h->free_site = 0;
  h->reserved = 0;
  h->site = capture_site();
  if (!zero)
    memset(user, FILL_ALLOC, size < FILL_ALLOC_MAX ? size : FILL_ALLOC_MAX);
  memset(user + size, FILL_REDZONE, usable - offset - size);
  __atomic_store_n(&h->state, STATE_LIVE, __ATOMIC_RELEASE);
  registry_add(h);
  return user;
}

void *_qm_debug_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return _qm_debug_alloc(QM_ALIGNMENT, total, true);
}

/* Frees the live debug block h (checked already): redzone, then the quarantine. */
static void free_checked(header_t *h, const char *function) {
  uint32_t expected = STATE_LIVE;
  if (!__atomic_compare_exchange_n(&h->state, &expected, STATE_QUARANTINED, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    report_double_free(h, function); /* another thread freed it at the same time */
  check_redzone(h, function);
  registry_remove(h);
  h->free_site = capture_site();
  if (h->size > QUARANTINE_MAX_BLOCK) {
    release(h);
    return;
  }
  memset(user_of(h), FILL_FREED, h->size);
  quarantine_push(h);
}

void _qm_debug_free(void *p, size_t alignment, size_t size) {
  if (p == NULL)
    return;
  const char *function = alignment != 0 ? "free_aligned_sized" : size != SIZE_MAX ? "free_sized" : "free";
  header_t *h = checked_header(p, function);
  if (h == NULL) {
    qm_free_inline(p);
    return;
  }
  if (size != SIZE_MAX && size != h->size) {
    _qm_message("%s: the %zu-byte block at %p was freed with size %zu", function, h->size, p, size);
    print_site(capture_site(), "called");
    print_block_history(h);
    report_end();
  }
  if (alignment != 0 && ((uintptr_t)p & (alignment - 1)) != 0) {
    _qm_message("free_aligned_sized: the block at %p is not aligned to %zu", p, alignment);
    report_end();
  }
  free_checked(h, function);
}

void *_qm_debug_realloc(void *p, size_t size) {
  if (p == NULL)
    return _qm_debug_alloc(QM_ALIGNMENT, size, false);
  header_t *h = checked_header(p, "realloc");
  size_t old_size = h != NULL ? h->size : _qm_usable_size(p);
  if (h != NULL)
    check_redzone(h, "realloc");
  if (size == 0) {
    _qm_debug_free(p, 0, SIZE_MAX);
    return NULL;
  }
  /* Always to a new place, so that a pointer kept to the old block finds the quarantine. */
  void *q = _qm_debug_alloc(QM_ALIGNMENT, size, false);
  if (q == NULL)
    return NULL;
  memcpy(q, p, old_size < size ? old_size : size);
  if (h != NULL)
    free_checked(h, "realloc");
  else
    qm_free_inline(p);
  return q;
}

size_t _qm_debug_usable_size(const void *p) {
  if (p == NULL)
    return 0;
  header_t *h = checked_header(p, "malloc_usable_size");
  return h != NULL ? h->size : _qm_usable_size(p);
}

/* ---------------------------------------------------------------------------------------------
 * Validation of everything the layer holds
 * ------------------------------------------------------------------------------------------- */

/* The first live block of a stripe whose header or redzone is broken, or NULL. Reading the redzone
 * under the stripe lock is safe: the block cannot be freed meanwhile (its free needs the lock). */
static header_t *stripe_first_broken(stripe_t *s, bool *header_broken) {
  for (header_t *h = s->first; h != NULL; h = h->next) {
    if (!header_intact(h)) {
      *header_broken = true;
      return h;
    }
    uint8_t *end = user_of(h) + h->size;
    size_t redzone = _qm_usable_size(inner_of(h)) - h->offset - h->size;
    for (size_t i = 0; i < redzone; i++)
      if (end[i] != FILL_REDZONE)
        return h;
  }
  return NULL;
}

void _qm_debug_validate(void) {
  for (size_t i = 0; i < REGISTRY_STRIPES; i++) {
    bool header_broken = false;
    _qm_lock(&stripes[i].lock);
    header_t *bad = stripe_first_broken(&stripes[i], &header_broken);
    _qm_unlock(&stripes[i].lock);
    if (bad != NULL && header_broken)
      report_header(user_of(bad), "qm_heap_validate");
    if (bad != NULL)
      check_redzone(bad, "qm_heap_validate");
  }
  header_t *bad = NULL;
  size_t bad_index = 0;
  bool header_broken = false;
  _qm_lock(&quarantine.lock);
  for (header_t *h = quarantine.head; h != NULL && bad == NULL; h = h->next) {
    if (!header_intact(h)) {
      bad = h;
      header_broken = true;
      break;
    }
    const uint8_t *u = user_of(h);
    for (size_t k = 0; k < h->size; k++)
      if (u[k] != FILL_FREED) {
        bad = h;
        bad_index = k;
        break;
      }
  }
  _qm_unlock(&quarantine.lock);
  if (bad != NULL && header_broken)
    report_header(user_of(bad), "qm_heap_validate");
  if (bad != NULL)
    report_use_after_free(bad, bad_index, "qm_heap_validate");
}

/* ---------------------------------------------------------------------------------------------
 * The leak report at exit
 * ------------------------------------------------------------------------------------------- */

static bool leak_before(const site_t *a, const site_t *b) {
  return a->leak_bytes != b->leak_bytes ? a->leak_bytes > b->leak_bytes : a->leak_blocks > b->leak_blocks;
}

/* Heap sort of site indices, largest leak first; by hand, because qsort may allocate. */
static void sift_down(uint32_t *v, size_t n, size_t i) {
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n)
      return;
    /* A min-heap on the report order, so that popping puts the largest at the front. */
    if (child + 1 < n && leak_before(&sites[v[child]], &sites[v[child + 1]]))
      child++;
    if (!leak_before(&sites[v[i]], &sites[v[child]]))
      return;
    uint32_t t = v[i];
    v[i] = v[child];
    v[child] = t;
    i = child;
  }
}

static void sort_sites(uint32_t *v, size_t n) {
  for (size_t i = n / 2; i-- > 0;)
    sift_down(v, n, i);
  for (size_t end = n; end-- > 1;) {
    uint32_t t = v[0];
    v[0] = v[end];
    v[end] = t;
    sift_down(v, end, 0);
  }
}

static void leak_report(void) {
  if (sites == NULL)
    return;
  uint64_t total_bytes = 0, total_blocks = 0;
  _qm_lock(&site_lock); /* no new sites meanwhile: their counters are being summed */
  for (size_t i = 0; i < SITE_CAPACITY; i++)
    sites[i].leak_bytes = sites[i].leak_blocks = 0;
  for (size_t i = 0; i < REGISTRY_STRIPES; i++) {
    _qm_lock(&stripes[i].lock);
    for (header_t *h = stripes[i].first; h != NULL; h = h->next) {
      if (h->site == SITE_UNWINDER)
        continue;
      site_t *s = &sites[h->site < SITE_CAPACITY ? h->site : 0];
      s->leak_bytes += h->size;
      s->leak_blocks++;
      total_bytes += h->size;
      total_blocks++;
    }
    _qm_unlock(&stripes[i].lock);
  }
  _qm_unlock(&site_lock);
  if (total_blocks == 0)
    return;
  size_t order_bytes = qm_align_up(SITE_CAPACITY * sizeof(uint32_t), _qm_os_page_size());
  uint32_t *order = _qm_os_map(order_bytes);
  if (order == NULL)
    return;
  size_t n = 0;
  for (uint32_t i = 0; i < SITE_CAPACITY; i++)
    if (sites[i].leak_blocks != 0)
      order[n++] = i;
  sort_sites(order, n);
  _qm_message(
      "leak report: %llu bytes in %llu block%s still allocated at exit, from %zu call stack%s, largest "
      "first (QMALLOC_LEAK_REPORT=0 turns this off)",
      (unsigned long long)total_bytes, (unsigned long long)total_blocks, plural(total_blocks), n, plural(n));
  uint64_t rest_bytes = 0, rest_blocks = 0;
  for (size_t k = 0; k < n; k++) {
    const site_t *s = &sites[order[k]];
    if (k >= LEAK_SITES_SHOWN) {
      rest_bytes += s->leak_bytes;
      rest_blocks += s->leak_blocks;
      continue;
    }
    _qm_message("%llu bytes in %llu block%s:", (unsigned long long)s->leak_bytes,
                (unsigned long long)s->leak_blocks, plural(s->leak_blocks));
    print_site(order[k], "allocated");
  }
  if (n > LEAK_SITES_SHOWN)
    _qm_message("... and %llu bytes in %llu blocks from %zu more call stacks", (unsigned long long)rest_bytes,
                (unsigned long long)rest_blocks, n - LEAK_SITES_SHOWN);
  _qm_os_unmap(order, order_bytes);
}

/* ---------------------------------------------------------------------------------------------
 * Start, fork, exit
 * ------------------------------------------------------------------------------------------- */

static void fork_prepare(void) {
  _qm_lock(&site_lock);
  _qm_lock(&quarantine.lock);
  for (size_t i = 0; i < REGISTRY_STRIPES; i++)
    _qm_lock(&stripes[i].lock);
}

static void fork_release(void) {
  for (size_t i = 0; i < REGISTRY_STRIPES; i++)
    _qm_unlock(&stripes[i].lock);
  _qm_unlock(&quarantine.lock);
  _qm_unlock(&site_lock);
}

/* At load time: maps the site table, finds the library's own code, and calls backtrace() once
 * with capture off, so that the unwinder it loads (and allocates for) is ready before any
 * allocation wants a stack. */
__attribute__((constructor)) static void debug_start(void) {
  if (!qm_debug_active())
    return;
  size_t bytes = qm_align_up(SITE_CAPACITY * sizeof(site_t), _qm_os_page_size());
  sites = _qm_os_map(bytes);
  dl_iterate_phdr(find_own_text, (void *)(uintptr_t)&debug_start);
  void *frames[4];
  tls_capturing = true;
  (void)backtrace(frames, 4);
  tls_capturing = false;
  pthread_atfork(fork_prepare, fork_release, fork_release);
  if (sites != NULL && own_text_end != 0)
    atomic_store_explicit(&capture_ready, true, memory_order_release);
}

/* At exit: what is still wrong is reported (and aborts); then the leaks. Leaks do not change the
 * exit status: programs and the C library keep blocks at exit on purpose. */
__attribute__((destructor)) static void debug_exit(void) {
  if (!_qm_options.debug)
    return;
  _qm_debug_validate();
  if (_qm_options.leak_report)
    leak_report();
}
