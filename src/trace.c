/* trace.c - the recorder of the trace variant (libqmalloc-trace.so, QM_VARIANT_TRACE): with
 * QMALLOC_TRACE=FILE, every call of the malloc family made through override.c is appended to a
 * buffer of the calling thread and written to FILE in chunks (the format is in trace.h and
 * docs/TRACE.md; tools/qmalloc-replay.c reads it).
 *
 * What it owns:
 *   - the sequence: one process-wide counter, one atomic increment per call; the order of the
 *     numbers respects every dependency between calls on one object (see "Ids" below);
 *   - the id map: block address -> id of the object living there, so that a free names the object
 *     that its allocation created. Two levels: a table with one entry per 4 MiB region of the address
 *     space, then per region an array of one 64-bit slot per 16 bytes (every block is 16-aligned).
 *     Both are mapped with MAP_NORESERVE and resident only where touched. A slot is written by the
 *     thread that allocates at that address and cleared by the one that frees there; the program's
 *     own synchronisation orders those, so the slots need no lock (relaxed atomics);
 *   - the buffers: one per thread, mapped (never malloc'ed), flushed with write(2) when full, at
 *     thread exit and at process exit;
 *   - the file: opened at start-up and locked with flock. A process that finds FILE locked (a program
 *     started by the traced one inherits QMALLOC_TRACE) writes FILE.<pid> instead. A child of fork
 *     stops tracing: the parent's file stays as the parent writes it.
 *
 * Ids: an object's id is the sequence number of the call that allocated it. An allocation takes its
 * number after the allocator returned, a free before the block goes back, and a realloc takes the
 * id out of the map before the call and puts it back (at the new address) after: so for one
 * object, allocation < reallocs < free in sequence order whatever threads make the calls.
 *
 * Nothing here allocates: a nested call (from pthread_setspecific, say) while the thread is inside
 * the recorder is not recorded, and its block is later freed as "untraced".
 */
#define _GNU_SOURCE
#include "trace.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

bool _qm_trace_on;

/* ---------------------------------------------------------------------------------------------
 * The id map
 * ------------------------------------------------------------------------------------------- */

#define REGION_SHIFT 22                                 /* 4 MiB regions */
#define REGION_COUNT ((size_t)1 << (47 - REGION_SHIFT)) /* user space of x86-64 and arm64 */
#define SLOT_SHIFT 4                                    /* one slot per 16 bytes */
#define SLOTS_PER_REGION ((size_t)1 << (REGION_SHIFT - SLOT_SHIFT))

/* regions[r]: NULL, or the slots of region r; set once (compare-and-swap), never unmapped. */
static _Atomic(_Atomic uint64_t *) *regions;

static _Atomic uint64_t *slot_of(const void *p, bool create) {
  uintptr_t address = (uintptr_t)p;
  size_t region = address >> REGION_SHIFT;
  if (qm_unlikely(region >= REGION_COUNT))
    return NULL;
  _Atomic uint64_t *slots = atomic_load_explicit(&regions[region], memory_order_acquire);
  if (slots == NULL) {
    if (!create)
      return NULL;
    _Atomic uint64_t *fresh = _qm_os_map(SLOTS_PER_REGION * sizeof(uint64_t));
    if (fresh == NULL)
      return NULL;
    if (atomic_compare_exchange_strong_explicit(&regions[region], &slots, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
      slots = fresh;
    else
      _qm_os_unmap(fresh, SLOTS_PER_REGION * sizeof(uint64_t));
  }
  return &slots[(address & (((uintptr_t)1 << REGION_SHIFT) - 1)) >> SLOT_SHIFT];
}

static void id_set(const void *p, uint64_t id) {
  _Atomic uint64_t *slot = slot_of(p, true);
  if (slot != NULL)
    atomic_store_explicit(slot, id, memory_order_relaxed);
}

/* The id of the object at p, taken out of the map; 0 if none was recorded there. */
static uint64_t id_take(const void *p) {
  _Atomic uint64_t *slot = slot_of(p, false);
  return slot == NULL ? 0 : atomic_exchange_explicit(slot, 0, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------------------------- */

#define BUFFER_SIZE ((size_t)256 * 1024)
#define RECORD_MAX 64 /* op byte + 5 varints of at most 10 bytes */

/* trace_buffer_t: the buffer of one thread, at the start of its own mapping; the chunk header and
 * the records follow it, so a flush is one write of header and records together.
 * Invariants: used <= capacity; records in data[0, used) decode from seq_base/time_base; only the
 * thread that owns it (owned) appends, under lock, which the process-exit flush also takes.
 * Buffers are never unmapped: a thread that exits gives its buffer back (owned = false) for the
 * next new thread. */
typedef struct trace_buffer_s {
  qm_lock_t lock;
  _Atomic bool owned;
  uint32_t thread;   /* the owner's thread number */
  uint32_t records;  /* records in data */
  size_t used;       /* bytes in data */
  size_t capacity;   /* bytes data can hold */
  uint64_t last_seq; /* of the last record appended (also the next chunk's seq_base) */
  uint64_t last_ns;  /* likewise for time */
  uint64_t base_seq; /* the seq_base and time_base of the chunk in data */
  uint64_t base_ns;
  struct trace_buffer_s *next; /* in all_buffers */
  qm_trace_chunk_t *chunk;     /* header in front of data */
  uint8_t *data;
} trace_buffer_t;

static _Atomic(trace_buffer_t *) all_buffers; /* every buffer ever mapped (push only) */
static _Atomic uint64_t next_seq = 1;
static _Atomic uint32_t next_thread = 1;
static uint64_t start_ns;
static int trace_fd = -1;
static qm_lock_t file_lock;
static pthread_key_t thread_key;

static __thread trace_buffer_t *tls_buffer __attribute__((tls_model("initial-exec")));
static __thread uint32_t tls_thread __attribute__((tls_model("initial-exec")));
static __thread bool tls_inside __attribute__((tls_model("initial-exec")));

/* Writes a chunk; the caller holds the buffer's lock. Writes of all threads go through file_lock so
 * that a short write (a full disk) cannot interleave with another chunk. */
static void buffer_flush(trace_buffer_t *buffer) {
  if (buffer->records == 0 || trace_fd < 0)
    return;
  *buffer->chunk = (qm_trace_chunk_t){QM_TRACE_CHUNK_MAGIC, buffer->thread,   (uint32_t)buffer->used,
                                      buffer->records,      buffer->base_seq, buffer->base_ns};
  const uint8_t *p = (const uint8_t *)buffer->chunk;
  size_t left = sizeof(qm_trace_chunk_t) + buffer->used;
  _qm_lock(&file_lock);
  while (left > 0) {
    ssize_t n = write(trace_fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* the rest of the trace is lost; the reader reports the truncated chunk */
    p += n;
    left -= (size_t)n;
  }
  _qm_unlock(&file_lock);
  buffer->used = 0;
  buffer->records = 0;
  buffer->base_seq = buffer->last_seq;
  buffer->base_ns = buffer->last_ns;
}

/* A buffer for the calling thread: one given back by an exited thread, or a new mapping. */
static trace_buffer_t *buffer_acquire(void) {
  if (tls_thread == 0)
    tls_thread = atomic_fetch_add_explicit(&next_thread, 1, memory_order_relaxed);
  trace_buffer_t *buffer = NULL;
  for (trace_buffer_t *b = atomic_load_explicit(&all_buffers, memory_order_acquire); b != NULL; b = b->next) {
    bool expected = false;
    if (!atomic_load_explicit(&b->owned, memory_order_relaxed) &&
        atomic_compare_exchange_strong_explicit(&b->owned, &expected, true, memory_order_acquire,
                                                memory_order_relaxed)) {
      buffer = b;
      break;
    }
  }
  if (buffer == NULL) {
    buffer = _qm_os_map(BUFFER_SIZE);
    if (buffer == NULL)
      return NULL;
    buffer->chunk = (qm_trace_chunk_t *)(buffer + 1);
    buffer->data = (uint8_t *)(buffer->chunk + 1);
    buffer->capacity = BUFFER_SIZE - (size_t)(buffer->data - (uint8_t *)buffer);
    atomic_store_explicit(&buffer->owned, true, memory_order_relaxed);
    trace_buffer_t *head = atomic_load_explicit(&all_buffers, memory_order_relaxed);
    do
      buffer->next = head;
    while (!atomic_compare_exchange_weak_explicit(&all_buffers, &head, buffer, memory_order_release,
                                                  memory_order_relaxed));
  }
  /* A given-back buffer is empty (flushed at its thread's exit); it starts a new thread's chunks. */
  _qm_lock(&buffer->lock);
  buffer->thread = tls_thread;
  buffer->last_seq = buffer->last_ns = buffer->base_seq = buffer->base_ns = 0;
  _qm_unlock(&buffer->lock);
  tls_buffer = buffer;
  /* May allocate (glibc's second-level key arrays): tls_inside keeps that call out of the trace. */
  pthread_setspecific(thread_key, buffer);
  return buffer;
}

/* At thread exit: the thread's records go to the file and its buffer to the next thread. A call the
 * thread makes after this (another key's destructor) takes a buffer again. */
static void thread_exit(void *value) {
  trace_buffer_t *buffer = value;
  if (buffer == NULL || buffer != tls_buffer)
    return;
  _qm_lock(&buffer->lock);
  if (_qm_trace_on)
    buffer_flush(buffer);
  buffer->used = 0;
  buffer->records = 0;
  _qm_unlock(&buffer->lock);
  tls_buffer = NULL;
  atomic_store_explicit(&buffer->owned, false, memory_order_release);
}

static inline uint8_t *put_varint(uint8_t *out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *out++ = (uint8_t)v;
  return out;
}

/* Appends one record with `count` operands, numbered seq (0: takes the next number). */
static void record(unsigned op, uint64_t seq, unsigned count, uint64_t x0, uint64_t x1, uint64_t x2) {
  trace_buffer_t *buffer = tls_buffer;
  if (qm_unlikely(buffer == NULL)) {
    tls_inside = true;
    buffer = buffer_acquire();
    tls_inside = false;
    if (buffer == NULL)
      return;
  }
  if (seq == 0)
    seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
  uint64_t now = _qm_os_now_ns() - start_ns;
  _qm_lock(&buffer->lock);
  if (qm_unlikely(buffer->used + RECORD_MAX > buffer->capacity))
    buffer_flush(buffer);
  uint8_t *out = buffer->data + buffer->used;
  *out++ = (uint8_t)op;
  /* Numbers are taken before the lock, so a thread's own records may be a little out of order
   * when a signal handler allocates in between: the deltas are zig-zag encoded to allow that. */
  int64_t seq_delta = (int64_t)(seq - buffer->last_seq);
  int64_t time_delta = (int64_t)(now - buffer->last_ns);
  out = put_varint(out, ((uint64_t)seq_delta << 1) ^ (uint64_t)(seq_delta >> 63));
  out = put_varint(out, ((uint64_t)time_delta << 1) ^ (uint64_t)(time_delta >> 63));
  const uint64_t operands[3] = {x0, x1, x2};
  for (unsigned i = 0; i < count; i++)
    out = put_varint(out, operands[i]);
  buffer->used = (size_t)(out - buffer->data);
  buffer->records++;
  buffer->last_seq = seq;
  buffer->last_ns = now;
  _qm_unlock(&buffer->lock);
}

/* ---------------------------------------------------------------------------------------------
 * The hooks (trace.h)
 * ------------------------------------------------------------------------------------------- */

/* The ref of object `id` in a record numbered seq (trace.h). */
static uint64_t ref_of(const void *p, uint64_t id, uint64_t seq) {
  if (p == NULL)
    return QM_TRACE_REF_NULL;
  return id == 0 ? QM_TRACE_REF_UNTRACED : seq - id + 1;
}

void _qm_trace_alloc(unsigned op, size_t a, size_t size, void *result) {
  if (tls_inside)
    return;
  tls_inside = true;
  uint64_t seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
  if (result != NULL)
    id_set(result, seq);
  else
    op |= QM_TRACE_FAILED;
  unsigned base = op & QM_TRACE_OP_MASK;
  if (qm_trace_operand_count(base) == 2)
    record(op, seq, 2, a, size, 0);
  else
    record(op, seq, 1, size, 0, 0);
  tls_inside = false;
}

void _qm_trace_free(unsigned op, void *p, size_t alignment, size_t size) {
  if (tls_inside)
    return;
  tls_inside = true;
  uint64_t id = p == NULL ? 0 : id_take(p);
  uint64_t seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
  uint64_t ref = ref_of(p, id, seq);
  if (op == QM_TRACE_OP_FREE)
    record(op, seq, 1, ref, 0, 0);
  else if (op == QM_TRACE_OP_FREE_SIZED)
    record(op, seq, 2, ref, size, 0);
  else
    record(op, seq, 3, ref, alignment, size);
  tls_inside = false;
}

uint64_t _qm_trace_realloc_begin(void *p) {
  if (tls_inside || p == NULL)
    return 0;
  return id_take(p);
}

void _qm_trace_realloc_end(unsigned op, void *p, uint64_t id, size_t count, size_t size, void *result) {
  if (tls_inside)
    return;
  tls_inside = true;
  uint64_t seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
  uint64_t ref = ref_of(p, id, seq);
  if (result != NULL) {
    /* The object keeps its id where it now lives; realloc(NULL, n) creates one numbered seq (so
     * does the realloc of a block allocated while nothing was traced). */
    id_set(result, id != 0 ? id : seq);
    if (p != NULL && result != p)
      op |= QM_TRACE_MOVED;
  } else if (p != NULL && size != 0 && count != 0) {
    op |= QM_TRACE_FAILED; /* an error: the block stays where it was */
    if (id != 0)
      id_set(p, id);
  } else if (p == NULL) {
    op |= QM_TRACE_FAILED; /* realloc(NULL, 0) returned NULL */
  }                        /* else realloc(p, 0) freed p */
  if ((op & QM_TRACE_OP_MASK) == QM_TRACE_OP_REALLOC)
    record(op, seq, 2, ref, size, 0);
  else
    record(op, seq, 3, ref, count, size);
  tls_inside = false;
}

/* ---------------------------------------------------------------------------------------------
 * Start, fork, exit
 * ------------------------------------------------------------------------------------------- */

/* Opens path and locks it; -1 (errno set) when that fails, -2 when another process holds it. */
static int open_locked(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return error == EWOULDBLOCK ? -2 : -1;
  }
  if (ftruncate(fd, 0) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

/* In a child of fork: tracing stops. The parent's records still in the child's copies of the
 * buffers are the parent's to write; closing the descriptor leaves the parent's lock in place. */
static void fork_child(void) {
  _qm_trace_on = false;
  if (trace_fd >= 0)
    close(trace_fd);
  trace_fd = -1;
}

__attribute__((constructor)) static void trace_start(void) {
  qm_ensure_process_init();
  const char *path = _qm_options.trace_file;
  if (path[0] == '\0')
    return;
  char other[4096];
  const char *used = path;
  int fd = open_locked(path);
  if (fd == -2) {
    snprintf(other, sizeof other, "%s.%d", path, _qm_os_getpid());
    used = other;
    fd = open_locked(other);
  }
  if (fd < 0) {
    _qm_message("warning: QMALLOC_TRACE=%s: cannot open %s (%s); not tracing", path, used, strerror(errno));
    return;
  }
  regions = _qm_os_map(REGION_COUNT * sizeof(*regions));
  if (regions == NULL || pthread_key_create(&thread_key, thread_exit) != 0) {
    _qm_message("warning: QMALLOC_TRACE=%s: out of memory; not tracing", path);
    close(fd);
    return;
  }
  start_ns = _qm_os_now_ns();
  qm_trace_header_t header = {QM_TRACE_MAGIC, QM_TRACE_VERSION, sizeof header, (uint32_t)_qm_os_getpid(), 0,
                              start_ns};
  if (write(fd, &header, sizeof header) != (ssize_t)sizeof header) {
    _qm_message("warning: QMALLOC_TRACE=%s: cannot write %s; not tracing", path, used);
    close(fd);
    return;
  }
  trace_fd = fd;
  pthread_atfork(NULL, NULL, fork_child);
  if (_qm_options.verbose)
    _qm_message("tracing pid %d to %s", _qm_os_getpid(), used);
  _qm_trace_on = true;
}

/* At exit: every buffer goes to the file. Calls made after this (later destructors) are lost. */
__attribute__((destructor)) static void trace_stop(void) {
  if (!_qm_trace_on)
    return;
  for (trace_buffer_t *b = atomic_load_explicit(&all_buffers, memory_order_acquire); b != NULL; b = b->next) {
    _qm_lock(&b->lock);
    buffer_flush(b);
    _qm_unlock(&b->lock);
  }
}
