/* os.c - every system call qmalloc makes: mapping, unmapping, purging and remapping memory, and
 * the few process facts it needs (page size, environment, pid, resident set, stderr). Also where
 * segments come from: the optional arena of reserved address space, and huge-page advice.
 *
 * Contract (for every function here): sizes are multiples of the OS page and addresses OS-page
 * aligned; nothing here allocates; failures are reported by return value, never by aborting.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "track.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

size_t _qm_os_page_size(void) {
  static size_t page_size;
  if (qm_unlikely(page_size == 0)) {
    long n = sysconf(_SC_PAGESIZE);
    page_size = (n > 0) ? (size_t)n : 4096;
  }
  return page_size;
}

static void *map_raw(void *hint, size_t size) {
  int saved_errno = errno;
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  qm_counter_add(&_qm_counters.os_map_calls, 1);
  errno = saved_errno;
  return p == MAP_FAILED ? NULL : p;
}

void *_qm_os_map(size_t size) { return map_raw(NULL, size); }

/* Held around every munmap, and by readers of other heaps' segments for as long as they read
 * (_qm_os_hold_mappings). munmap serialises on the kernel's side anyway. */
static qm_lock_t unmap_lock;

void _qm_os_hold_mappings(void) { _qm_lock(&unmap_lock); }
void _qm_os_release_mappings(void) { _qm_unlock(&unmap_lock); }

static bool arena_take_back(void *p, size_t size);

void _qm_os_unmap(void *p, size_t size) {
  if (p == NULL || size == 0)
    return;
  qm_track_release(p, size); /* the next mapping here starts unpoisoned */
  if (arena_take_back(p, size))
    return;
  int saved_errno = errno;
  _qm_lock(&unmap_lock);
  int result = munmap(p, size);
  _qm_unlock(&unmap_lock);
  if (result != 0)
    _qm_message("munmap of %zu bytes at %p failed (errno %d)", size, p, errno);
  qm_counter_add(&_qm_counters.os_unmap_calls, 1);
  errno = saved_errno;
}

bool _qm_os_protect_none(void *p, size_t size) {
  int saved_errno = errno;
  bool done = mprotect(p, size, PROT_NONE) == 0;
  errno = saved_errno;
  return done;
}

/* Over-allocates by the alignment, then unmaps the unaligned head and the unused tail. */
void *_qm_os_map_aligned(size_t size, size_t alignment, size_t offset) {
  qm_assert(qm_is_power_of_two(alignment) && offset < alignment);
  size_t page = _qm_os_page_size();
  if (alignment <= page && offset == 0)
    return _qm_os_map(size);
  if (size > SIZE_MAX - alignment)
    return NULL;
  size_t over = size + alignment;
  uint8_t *raw = map_raw(NULL, over);
  if (raw == NULL)
    return NULL;
  uintptr_t start = qm_align_up_ptr((uintptr_t)raw - offset, alignment) + offset;
  if (start < (uintptr_t)raw)
    start += alignment;
  uint8_t *aligned = (uint8_t *)start;
  size_t head = (size_t)(aligned - raw);
  size_t tail = over - head - size;
  if (head > 0)
    _qm_os_unmap(raw, head);
  if (tail > 0)
    _qm_os_unmap(aligned + size, tail);
  return aligned;
}

/* The kernel may refuse: MADV_DONTNEED fails with EINVAL on locked pages (a program that called
 * mlockall, or mlock on a block it later freed), having purged the range only up to them. The
 * memory then holds what it held, and is reported DIRTY: calloc must not take it for zero. */
qm_memory_t _qm_os_purge(void *p, size_t size) {
  if (size == 0)
    return QM_MEMORY_ZERO;
  int saved_errno = errno;
  qm_memory_t result = QM_MEMORY_ZERO;
  bool lazy = false;
#ifdef MADV_FREE
  /* MADV_FREE is cheaper (pages are taken only under memory pressure) but leaves RSS as it was
   * until then, and the memory need not read as zero. Kernels before 4.5 refuse it. */
  lazy = _qm_options.purge_method == QM_PURGE_FREE && madvise(p, size, MADV_FREE) == 0;
  if (lazy)
    result = QM_MEMORY_LAZY;
#endif
  if (!lazy && madvise(p, size, MADV_DONTNEED) != 0)
    result = QM_MEMORY_DIRTY;
  qm_counter_add(&_qm_counters.os_purge_calls, 1);
  if (result != QM_MEMORY_DIRTY)
    QM_STAT_ADD(bytes_purged, size);
  errno = saved_errno;
  return result;
}

/* Reads up to size - 1 bytes of a small kernel file into buf, NUL-terminated; returns the length (0
 * when it cannot be read). Direct system calls: this runs inside the allocator, where a wrapper of
 * open or read interposed by another library must not be entered (it may allocate). */
static size_t read_small_file(const char *path, char *buf, size_t size) {
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  size_t length = 0;
  long n;
  while (length < size - 1 && (n = syscall(SYS_read, (int)fd, buf + length, size - 1 - length)) > 0)
    length += (size_t)n;
  syscall(SYS_close, (int)fd);
  buf[length] = '\0';
  return length;
}

/* Purging many ranges at once. A decay pass that thins sparse pages gives back thousands of single
 * OS pages, and each madvise call pays for its own TLB flush and page-table walk (about 6 us a call
 * on a virtual machine, against 0.8 us a range when 512 go in one call). process_madvise takes a
 * vector of ranges; it accepts MADV_DONTNEED and MADV_FREE on the calling process since Linux 6.13,
 * and the PIDFD_SELF sentinels (newer still) name the calling process without a file descriptor;
 * a kernel without them refuses the call (EBADF), and qmalloc then stops trying.
 *
 * Seccomp: a sandbox (a filter that kills on any system call it does not list) may allow madvise
 * and not process_madvise, and may be installed at any time, by the program or a library. So the
 * call is made only while /proc/thread-self/status says the thread runs under no filter (read on
 * each call: 9 us, worth it only for several ranges); a thread under a filter, or without /proc,
 * uses madvise, and a filter, once seen, is assumed for good (filters cannot be removed). */
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define QM_PIDFD_SELF_PROCESS (-10001) /* PIDFD_SELF_THREAD_GROUP in <linux/pidfd.h> */
#define QM_PURGE_VECTOR_MIN 4          /* fewer ranges go to madvise one by one */

_Static_assert(sizeof(((qm_purge_list_t *)0)->ranges[0]) == sizeof(struct iovec) &&
                   offsetof(struct iovec, iov_base) == 0 && offsetof(struct iovec, iov_len) == sizeof(void *),
               "a purge list's ranges are passed to the kernel as struct iovec");

static _Atomic bool vector_purge_refused; /* the kernel or a seccomp filter said no: never again */

/* Whether /proc says that this thread runs under no seccomp filter; false when unknown. */
static bool thread_unfiltered(void) {
  char status[4096];
  if (read_small_file("/proc/thread-self/status", status, sizeof status) == 0)
    return false;
  const char *line = strstr(status, "\nSeccomp:");
  if (line != NULL) {
    line += strlen("\nSeccomp:");
    while (*line == ' ' || *line == '\t')
      line++;
    if (line[0] == '0' && line[1] == '\n')
      return true;
  }
  /* Under a filter, or a kernel that does not say: the same answer every time from now on. */
  atomic_store_explicit(&vector_purge_refused, true, memory_order_relaxed);
  return false;
}

/* One process_madvise call for the whole list; false when it was not made or did not do it all
 * (the caller then purges each range itself: purging twice is harmless). */
static bool purge_vector(const qm_purge_list_t *list) {
  if (!_qm_options.purge_batch || list->count < QM_PURGE_VECTOR_MIN ||
      atomic_load_explicit(&vector_purge_refused, memory_order_relaxed) || !thread_unfiltered())
    return false;
  size_t total = 0;
  for (size_t i = 0; i < list->count; i++)
    total += list->ranges[i].bytes;
  int advice = MADV_DONTNEED;
#ifdef MADV_FREE
  if (_qm_options.purge_method == QM_PURGE_FREE)
    advice = MADV_FREE;
#endif
  long done = syscall(SYS_process_madvise, QM_PIDFD_SELF_PROCESS,
                      (const struct iovec *)(const void *)list->ranges, list->count, advice, 0u);
  if (done < 0 && errno != EAGAIN && errno != EINTR && errno != ENOMEM)
    atomic_store_explicit(&vector_purge_refused, true, memory_order_relaxed);
  if (done != (long)total)
    return false;
  qm_counter_add(&_qm_counters.os_purge_calls, 1);
  QM_STAT_ADD(bytes_purged, total);
  return true;
}

void _qm_os_purge_flush(qm_purge_list_t *list) {
  int saved_errno = errno;
  if (!purge_vector(list))
    for (size_t i = 0; i < list->count; i++)
      (void)_qm_os_purge(list->ranges[i].start, list->ranges[i].bytes);
  list->count = 0;
  errno = saved_errno;
}

void _qm_os_purge_add(qm_purge_list_t *list, void *p, size_t size) {
  if (size == 0)
    return;
  if (list->count > 0) {
    uint8_t *last_end = (uint8_t *)list->ranges[list->count - 1].start + list->ranges[list->count - 1].bytes;
    if (last_end == (uint8_t *)p) {
      list->ranges[list->count - 1].bytes += size;
      return;
    }
    if (list->count == QM_PURGE_LIST_MAX)
      _qm_os_purge_flush(list);
  }
  list->ranges[list->count].start = p;
  list->ranges[list->count].bytes = size;
  list->count++;
}

void *_qm_os_remap(void *p, size_t old_size, size_t new_size, void *target) {
  int saved_errno = errno;
  void *q;
  if (target == NULL)
    q = mremap(p, old_size, new_size, 0);
  else
    q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  QM_STAT_ADD(remap_calls, 1);
  errno = saved_errno;
  return q == MAP_FAILED ? NULL : q;
}

/* Maps [target, target + size) again where it is a hole; returns what was mapped (to be
 * unmapped: it is ours), or MAP_FAILED where something is mapped there. */
static void *map_hole(void *target, size_t size) {
#ifdef MAP_FIXED_NOREPLACE
  int saved_errno = errno;
  void *p =
      mmap(target, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  errno = saved_errno;
  return p; /* a kernel without the flag takes it as a hint and may map elsewhere: ours too */
#else
  (void)target, (void)size;
  return MAP_FAILED;
#endif
}

void _qm_os_release_failed_target(void *target, size_t size) {
  void *p = map_hole(target, size);
  if (p != MAP_FAILED) {
    qm_counter_add(&_qm_counters.os_map_calls, 1);
    _qm_os_unmap(p, size);
  }
}

/* Tried once: three pages in three VMAs (the middle one inaccessible, so the kernel cannot merge
 * them) moved as one range. Kernels before 6.17 refuse with EFAULT. Plain system calls: these
 * pages are no memory of the program's, so no counter sees them. */
static bool probe_moves_across_mappings(void) {
  size_t page = _qm_os_page_size();
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  void *range = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, flags, -1, 0);
  void *target = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, flags, -1, 0);
  bool moved = false;
  if (range != MAP_FAILED && target != MAP_FAILED &&
      mprotect((uint8_t *)range + page, page, PROT_NONE) == 0) {
    void *q = mremap(range, 3 * page, 3 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    moved = q == target;
    if (moved)
      range = MAP_FAILED; /* its pages are at target now */
  }
  if (range != MAP_FAILED)
    (void)munmap(range, 3 * page);
  if (target != MAP_FAILED) {
    void *ours = moved ? target : map_hole(target, 3 * page);
    if (ours != MAP_FAILED)
      (void)munmap(ours, 3 * page);
  }
  return moved;
}

/* A fact about the kernel, found out once: `known` is 0 until `find_out` has run (threads that
 * race there both run it, and agree), then 1 for no and 2 for yes. errno is kept. */
static bool kernel_fact(_Atomic int *known, bool (*find_out)(void)) {
  int state = atomic_load_explicit(known, memory_order_relaxed);
  if (state == 0) {
    int saved_errno = errno;
    state = find_out() ? 2 : 1;
    errno = saved_errno;
    atomic_store_explicit(known, state, memory_order_relaxed);
  }
  return state == 2;
}

bool _qm_os_moves_across_mappings(void) {
  static _Atomic int known;
  return kernel_fact(&known, probe_moves_across_mappings);
}

void _qm_os_write_stderr(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/* Many programs close stderr before they exit (coreutils do, from an atexit handler), which would
 * silence the summary and table printed at exit. So when those are asked for, a copy of stderr is
 * kept at start (close-on-exec, so commands started later do not inherit it), and put back as
 * fd 2 at exit if fd 2 is closed by then. */
static int kept_stderr = -1;

void _qm_os_stderr_keep(void) {
  if (kept_stderr < 0)
    kept_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
}

void _qm_os_stderr_restore(void) {
  if (kept_stderr >= 0 && fcntl(STDERR_FILENO, F_GETFD) == -1)
    (void)dup2(kept_stderr, STDERR_FILENO);
}

/* secure_getenv: options are ignored in setuid/setgid programs. getenv never allocates. */
const char *_qm_os_getenv(const char *name) { return secure_getenv(name); }

extern char **environ;
char *const *_qm_os_environ(void) { return getauxval(AT_SECURE) ? NULL : environ; }

/* Whether the kernel setting in file `path` has one of `choices` chosen: the file lists them all,
 * the chosen one in brackets ("always [madvise] never"). False where the file cannot be read. */
static bool setting_is(const char *path, const char *const *choices, size_t count) {
  char text[96];
  if (read_small_file(path, text, sizeof text) == 0)
    return false;
  const char *open = strchr(text, '['), *close = open != NULL ? strchr(open, ']') : NULL;
  if (close == NULL)
    return false;
  for (size_t i = 0; i < count; i++)
    if (strlen(choices[i]) == (size_t)(close - open - 1) &&
        memcmp(open + 1, choices[i], strlen(choices[i])) == 0)
      return true;
  return false;
}

/* The kernel's defrag setting reads "always defer defer+madvise [madvise] never". Under `always`,
 * `madvise` (the kernel's default) and `defer+madvise`, a page fault in an advised range that finds
 * no free 2 MiB page reclaims and compacts memory before it returns: on a machine whose memory is
 * fragmented, `qmb-large` took 0.41 s instead of 0.06 (0.09 unadvised). Under `defer` and `never`
 * it takes a small page at once. */
static bool read_huge_faults_never_stall(void) {
  static const char *const no_stall[] = {"defer", "never"};
  return setting_is("/sys/kernel/mm/transparent_hugepage/defrag", no_stall, 2);
}

bool _qm_os_huge_faults_never_stall(void) {
  static _Atomic int known;
  return kernel_fact(&known, read_huge_faults_never_stall);
}

/* The number on the line of a /proc status text that starts with `field` ("\nVmRSS:"), whose unit
 * is KiB, in bytes (0 if absent). */
static size_t status_bytes(const char *text, const char *field) {
  const char *c = strstr(text, field);
  size_t kib = 0;
  if (c != NULL)
    for (c += strlen(field); *c != '\n' && *c != '\0'; c++)
      if (*c >= '0' && *c <= '9')
        kib = kib * 10 + (size_t)(*c - '0');
  return kib * 1024;
}

/* VmHWM, not getrusage's ru_maxrss: that one keeps the peak of the image the process replaced at
 * exec, which after a fork from a big parent is the parent's resident set. */
qm_cold size_t _qm_os_resident_bytes(size_t *peak) {
  char text[2048]; /* the Vm lines come within the first 500 bytes (after Groups, which may be long) */
  if (read_small_file("/proc/self/status", text, sizeof text) == 0)
    return 0;
  if (peak != NULL)
    *peak = status_bytes(text, "\nVmHWM:");
  return status_bytes(text, "\nVmRSS:");
}

int _qm_os_getpid(void) { return (int)getpid(); }

uint64_t _qm_os_now_coarse_ns(void) {
  struct timespec t;
#ifdef CLOCK_MONOTONIC_COARSE
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
#else
  clock_gettime(CLOCK_MONOTONIC, &t);
#endif
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

uint64_t _qm_os_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Segments: the arena and huge-page advice.
 *
 * With QMALLOC_ARENA_RESERVE=N the first segment request reserves N bytes of address space in one
 * mapping (read-write, MAP_NORESERVE: nothing is committed until touched), aligned to the segment
 * size. Segments are carved from it in address order; a segment given back (_qm_os_unmap) is
 * purged with MADV_DONTNEED, whatever the purge method, so that it reads as zero like a fresh
 * mapping, and waits on a free list for the next request. The arena is never unmapped. When it is
 * used up (or could not be reserved), segments are mapped one by one as without it.
 * The free list is a stack of segment numbers outside the arena: a link written into a purged
 * segment would fault a page back in (a whole 2 MiB page with QMALLOC_THP).
 * Invariants: arena_start <= arena_next <= arena_end, all segment aligned; the segments numbered
 * in arena_free[0 .. arena_free_count) lie in [arena_start, arena_next), are not in use, and read
 * as zero.
 * ------------------------------------------------------------------------------------------- */

#define QM_ARENA_MAX_SEGMENTS (((size_t)1 << 40) / QM_SEGMENT_SIZE) /* QMALLOC_ARENA_RESERVE <= 1 TiB */

static qm_lock_t arena_lock;
static bool arena_tried;
static _Atomic(uint8_t *) arena_start; /* set once, under arena_lock; read without it */
static _Atomic(uint8_t *) arena_end;
static uint8_t *arena_next; /* first never-used byte (under arena_lock) */
/* Segments given back (under arena_lock): mapped beside the reservation, one slot per segment it
 * holds, resident only as far as it is used. Not a static array: 1 MiB of .bss would split the
 * library's small globals over one more OS page in every process, arena or not. */
static uint32_t *arena_free;
static size_t arena_free_count;
static _Atomic size_t arena_used;

void _qm_os_advise_huge_pages(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
  int saved_errno = errno;
  (void)madvise(p, size, MADV_HUGEPAGE);
  QM_STAT_ADD(advise_calls, 1);
  errno = saved_errno;
#else
  (void)p, (void)size;
#endif
}

/* Called once, under arena_lock. */
static void arena_reserve(void) {
  arena_tried = true;
  size_t size = qm_align_up(_qm_options.arena_reserve, QM_SEGMENT_SIZE);
  if (size == 0 || size / QM_SEGMENT_SIZE > QM_ARENA_MAX_SEGMENTS)
    return;
  size_t free_list_size = qm_align_up(size / QM_SEGMENT_SIZE * sizeof *arena_free, _qm_os_page_size());
  uint8_t *base = _qm_os_map_aligned(size, QM_SEGMENT_SIZE, 0);
  arena_free = base != NULL ? _qm_os_map(free_list_size) : NULL;
  if (arena_free == NULL) {
    if (base != NULL)
      _qm_os_unmap(base, size);
    _qm_message("warning: could not reserve %zu bytes for QMALLOC_ARENA_RESERVE; mapping segments one by one",
                size);
    return;
  }
  if (_qm_options.use_thp)
    _qm_os_advise_huge_pages(base, size);
  arena_next = base;
  atomic_store_explicit(&arena_end, base + size, memory_order_relaxed);
  atomic_store_explicit(&arena_start, base, memory_order_release);
}

static void *arena_take(void) {
  void *segment = NULL;
  _qm_lock(&arena_lock);
  if (!arena_tried)
    arena_reserve();
  if (arena_free_count > 0) {
    segment = atomic_load_explicit(&arena_start, memory_order_relaxed) +
              (size_t)arena_free[--arena_free_count] * QM_SEGMENT_SIZE;
  } else if (arena_next != NULL && arena_next < atomic_load_explicit(&arena_end, memory_order_relaxed)) {
    segment = arena_next;
    arena_next += QM_SEGMENT_SIZE;
  }
  _qm_unlock(&arena_lock);
  if (segment != NULL)
    atomic_fetch_add_explicit(&arena_used, QM_SEGMENT_SIZE, memory_order_relaxed);
  return segment;
}

/* If [p, p + size) lies in the arena, gives its pages back and keeps the range; a whole segment
 * goes on the free list. Returns false for memory outside the arena. */
static bool arena_take_back(void *p, size_t size) {
  uint8_t *start = atomic_load_explicit(&arena_start, memory_order_acquire);
  if (start == NULL || (uint8_t *)p < start ||
      (uint8_t *)p >= atomic_load_explicit(&arena_end, memory_order_relaxed))
    return false;
  int saved_errno = errno;
  /* What the arena takes back is handed out again as fresh memory, zero (segment headers
   * included). Where the kernel refuses to purge it (locked pages), it is cleared by hand. */
  if (madvise(p, size, MADV_DONTNEED) != 0)
    memset(p, 0, size);
  else
    QM_STAT_ADD(bytes_purged, size);
  qm_counter_add(&_qm_counters.os_purge_calls, 1);
  errno = saved_errno;
  if (size == QM_SEGMENT_SIZE && ((uintptr_t)p & QM_SEGMENT_MASK) == 0) {
    _qm_lock(&arena_lock);
    arena_free[arena_free_count++] = (uint32_t)(((uint8_t *)p - start) / QM_SEGMENT_SIZE);
    _qm_unlock(&arena_lock);
    atomic_fetch_sub_explicit(&arena_used, QM_SEGMENT_SIZE, memory_order_relaxed);
  }
  return true;
}

void *_qm_os_map_segment(void) {
  void *segment = NULL;
  if (_qm_options.arena_reserve != 0)
    segment = arena_take();
  if (segment == NULL) {
    segment = _qm_os_map_aligned(QM_SEGMENT_SIZE, QM_SEGMENT_SIZE, 0);
    if (segment != NULL && _qm_options.use_thp)
      _qm_os_advise_huge_pages(segment, QM_SEGMENT_SIZE);
  }
  return segment;
}

void _qm_os_arena_info(size_t *reserved, size_t *used) {
  uint8_t *start = atomic_load_explicit(&arena_start, memory_order_acquire);
  *reserved = start ? (size_t)(atomic_load_explicit(&arena_end, memory_order_relaxed) - start) : 0;
  *used = atomic_load_explicit(&arena_used, memory_order_relaxed);
}

/* fork: the arena and unmap locks are taken after the segment layer's (init.c orders them). */
void _qm_os_fork_prepare(void) {
  _qm_lock(&arena_lock);
  _qm_lock(&unmap_lock);
}
void _qm_os_fork_parent(void) {
  _qm_unlock(&unmap_lock);
  _qm_unlock(&arena_lock);
}
void _qm_os_fork_child(void) {
  _qm_unlock(&unmap_lock);
  _qm_unlock(&arena_lock);
}
