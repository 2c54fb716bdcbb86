/* init.c - process start and end, the thread-exit hook, fork handling, and the error reporting
 * every other file uses.
 *
 * Start-up must work whatever calls malloc first: the dynamic loader, a constructor, another
 * library's TLS set-up. It allocates nothing itself before it marks the process ready; the calls
 * made after that (pthread_key_create, pthread_atfork) may allocate, and those allocations go
 * through the ordinary path.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "qmalloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

_Atomic int _qm_process_state;
bool _qm_cpu_prefetchw;

static pthread_key_t thread_key;
static _Atomic bool thread_key_ready;

/* ---------------------------------------------------------------------------------------------
 * Messages: formatted into a stack buffer and written with one write(2); never allocate.
 * ------------------------------------------------------------------------------------------- */

static void write_line(const char *prefix, const char *fmt, va_list args) {
  char buffer[512];
  size_t n = strlen(prefix);
  memcpy(buffer, prefix, n);
  int m = vsnprintf(buffer + n, sizeof buffer - n - 1, fmt, args);
  size_t len = n + (m < 0 ? 0 : (size_t)m < sizeof buffer - n - 1 ? (size_t)m : sizeof buffer - n - 2);
  buffer[len++] = '\n';
  _qm_os_write_stderr(buffer, len);
}

void _qm_vmessage(const char *fmt, va_list args) { write_line("qmalloc: ", fmt, args); }

/* Verbose lines name the version: "qmalloc 0.1.0: ...". */
static void verbose_line(const char *fmt, ...) qm_printf_like(1, 2);
static void verbose_line(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  write_line("qmalloc " QMALLOC_VERSION_STRING ": ", fmt, args);
  va_end(args);
}

void _qm_message(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  _qm_vmessage(fmt, args);
  va_end(args);
}

void _qm_fatal(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  _qm_vmessage(fmt, args);
  va_end(args);
  abort();
}

void _qm_assert_fail(const char *expr, const char *file, int line, const char *func) {
  _qm_fatal("internal assertion failed: %s (%s:%d, %s)", expr, file, line, func);
}

/* ---------------------------------------------------------------------------------------------
 * Locks
 * ------------------------------------------------------------------------------------------- */

void _qm_lock(qm_lock_t *lock) {
  for (unsigned spins = 0;; spins++) {
    if (atomic_load_explicit(&lock->locked, memory_order_relaxed) == 0 && _qm_trylock(lock))
      return;
    if (spins >= 64)
      sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else
      __builtin_ia32_pause();
#endif
  }
}

/* ---------------------------------------------------------------------------------------------
 * Threads and fork
 * ------------------------------------------------------------------------------------------- */

static bool thread_key_ready_now(void) {
  return atomic_load_explicit(&thread_key_ready, memory_order_acquire);
}

void _qm_thread_key_set(qm_heap_t *heap) {
  if (thread_key_ready_now())
    pthread_setspecific(thread_key, heap);
}

/* Lock order: heap pool, then the segment layer's, the huge-mapping cache's, then the arena and
 * unmap locks of os.c.
 * The facts about the kernel that os.c finds out on first use (reading a /sys file, probing
 * mremap) are found out here first, so that a child never makes those calls: in the child of a
 * threaded parent they are safe with libc, but an interposed runtime may hang in them (a
 * ThreadSanitizer build did, in its `close`, on an internal lock another thread held at fork). */
static void fork_prepare(void) {
  (void)_qm_os_huge_faults_never_stall();
  (void)_qm_os_moves_across_mappings();
  _qm_heap_fork_prepare();
  _qm_segment_fork_prepare();
  _qm_huge_fork_prepare();
  _qm_os_fork_prepare();
}
static void fork_parent(void) {
  _qm_os_fork_parent();
  _qm_huge_fork_parent();
  _qm_segment_fork_parent();
  _qm_heap_fork_parent();
}
static void fork_child(void) {
  _qm_os_fork_child();
  _qm_huge_fork_child();
  _qm_segment_fork_child();
  _qm_heap_fork_child();
}

/* ---------------------------------------------------------------------------------------------
 * Process start and end
 * ------------------------------------------------------------------------------------------- */

static void detect_cpu(void) {
#if defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx))
    _qm_cpu_prefetchw = (ecx & bit_PRFCHW) != 0;
#endif
}

void _qm_process_init(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&_qm_process_state, &expected, 1, memory_order_acq_rel,
                                               memory_order_acquire)) {
    /* Another thread is starting the process up: wait for it (this thread cannot be that one,
     * since nothing below allocates before the state is 2). */
    while (atomic_load_explicit(&_qm_process_state, memory_order_acquire) != 2)
      sched_yield();
    return;
  }
  (void)_qm_os_page_size();
  detect_cpu();
  _qm_options_init();
#if QM_SECURE
  _qm_secure_init();
#endif
  if (_qm_options.verbose || _qm_options.show_stats)
    _qm_os_stderr_keep();
  atomic_store_explicit(&_qm_process_state, 2, memory_order_release);

  /* From here on allocation works; these may allocate. */
  if (pthread_key_create(&thread_key, _qm_thread_exit) == 0) {
    atomic_store_explicit(&thread_key_ready, true, memory_order_release);
    if (_qm_tls_heap != &_qm_empty_heap)
      pthread_setspecific(thread_key, _qm_tls_heap);
  }
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (_qm_options.verbose)
    verbose_line("active in pid %d", _qm_os_getpid());
}

__attribute__((constructor)) static void qm_constructor(void) { qm_ensure_process_init(); }

__attribute__((destructor)) static void qm_destructor(void) {
  if (_qm_options.verbose || _qm_options.show_stats)
    _qm_os_stderr_restore();
  if (_qm_options.show_stats)
    _qm_stats_print_stderr();
  if (!_qm_options.verbose)
    return;
  verbose_line(
      "pid %d exits; %zu thread heaps served it, %zu segments mapped now (peak %zu), %zu huge blocks, "
      "%zu mmap calls",
      _qm_os_getpid(), qm_counter_get(&_qm_counters.heaps_created),
      qm_counter_get(&_qm_counters.segments_mapped), qm_counter_get(&_qm_counters.segments_peak),
      qm_counter_get(&_qm_counters.huge_blocks), qm_counter_get(&_qm_counters.os_map_calls));
}
