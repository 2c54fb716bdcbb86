/* os.c - every system call qmalloc makes: mapping, unmapping, purging and remapping memory, and
 * the few process facts it needs (page size, environment, pid, stderr).
 *
 * Contract (for every function here): sizes are multiples of the OS page and addresses OS-page
 * aligned; nothing here allocates; failures are reported by return value, never by aborting.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
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

void _qm_os_unmap(void *p, size_t size) {
  if (p == NULL || size == 0)
    return;
  int saved_errno = errno;
  if (munmap(p, size) != 0)
    _qm_message("munmap of %zu bytes at %p failed (errno %d)", size, p, errno);
  qm_counter_add(&_qm_counters.os_unmap_calls, 1);
  errno = saved_errno;
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

qm_memory_t _qm_os_purge(void *p, size_t size) {
  if (size == 0)
    return QM_MEMORY_ZERO;
  int saved_errno = errno;
  qm_memory_t result = QM_MEMORY_ZERO;
#ifdef MADV_FREE
  /* MADV_FREE is cheaper (pages are taken only under memory pressure) but leaves RSS as it was
   * until then, and the memory need not read as zero. Kernels before 4.5 refuse it. */
  if (_qm_options.purge_method == QM_PURGE_FREE && madvise(p, size, MADV_FREE) == 0)
    result = QM_MEMORY_LAZY;
  else
#endif
    (void)madvise(p, size, MADV_DONTNEED);
  qm_counter_add(&_qm_counters.os_purge_calls, 1);
  errno = saved_errno;
  return result;
}

void *_qm_os_remap(void *p, size_t old_size, size_t new_size, void *target) {
  int saved_errno = errno;
  void *q;
  if (target == NULL)
    q = mremap(p, old_size, new_size, 0);
  else
    q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  errno = saved_errno;
  return q == MAP_FAILED ? NULL : q;
}

void _qm_os_shrink(void *p, size_t old_size, size_t new_size) {
  if (new_size < old_size)
    _qm_os_unmap((uint8_t *)p + new_size, old_size - new_size);
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

/* secure_getenv: options are ignored in setuid/setgid programs. getenv never allocates. */
const char *_qm_os_getenv(const char *name) { return secure_getenv(name); }

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
