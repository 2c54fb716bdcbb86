/* qmalloc-replay - replays a trace recorded by libqmalloc-trace.so (QMALLOC_TRACE=FILE, or
 * `qmalloc-run --trace FILE`) against whatever malloc the process has, and reports time and peak
 * RSS; with --info, summarises the trace instead. The format is in src/trace.h and docs/TRACE.md.
 *
 *   qmalloc-replay [--serial] [--no-touch] [--json] FILE
 *   qmalloc-replay --info FILE
 *
 * The program is linked normally: its malloc is the C library's unless one is preloaded, so
 * `LD_PRELOAD=libjemalloc.so.2 qmalloc-replay FILE` replays against jemalloc. Its own tables (the
 * decoded records, the object table) are mapped with mmap, so they leave the allocator under test
 * alone.
 *
 * Replay order: records are sorted by sequence number (their place in the array is their number).
 * By default each recorded thread is replayed by a thread of its own (recorded threads beyond
 * WORKERS_MAX share workers, each worker in sequence order), and a call on an object waits until
 * the previous call on that object, in whatever thread, is done: so a block freed by another
 * thread is freed by another thread here too, after its allocation. --serial replays everything in
 * one thread in sequence order.
 */
#define _GNU_SOURCE
#include "trace.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORKERS_MAX 64
#define TOUCH_STRIDE 4096
#define ID_UNTRACED UINT64_MAX

/* One decoded record, at index seq - 1 of the record table: 32 bytes, the replayer's memory. */
typedef struct record_s {
  uint64_t id;     /* the object the call takes (0: none or NULL; ID_UNTRACED: untraced block) */
  uint64_t size;   /* size */
  uint32_t a;      /* alignment or count (0 when the op has neither; a count above 2^32 is folded
                      into size, with a = 1) */
  uint32_t thread; /* recording thread (0: no record has this number) */
  uint8_t op;      /* op byte: qm_trace_op_t and flags */
} record_t;

typedef struct trace_s {
  const char *path;
  const uint8_t *bytes;
  size_t length;
  qm_trace_header_t header;
  size_t chunks;
  uint64_t records;           /* decoded */
  uint64_t max_seq;           /* highest sequence number */
  uint32_t threads;           /* highest thread number */
  uint64_t first_ns, last_ns; /* times of the earliest and latest record */
  record_t *table;            /* max_seq entries */
  size_t table_size;          /* bytes mapped for table */
} trace_t;

static const char *const op_names[QM_TRACE_OP_COUNT] = {"?",
                                                        "malloc",
                                                        "calloc",
                                                        "realloc",
                                                        "reallocarray",
                                                        "free",
                                                        "free_sized",
                                                        "free_aligned_sized",
                                                        "aligned_alloc",
                                                        "posix_memalign",
                                                        "memalign",
                                                        "valloc",
                                                        "pvalloc"};

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  fputs("qmalloc-replay: ", stderr);
  vfprintf(stderr, fmt, args);
  fputc('\n', stderr);
  va_end(args);
  exit(1);
}

/* Zero-filled memory from the OS (MAP_POPULATE: faulted in now, not during the replay). */
static void *table_map(size_t bytes, bool populate) {
  if (bytes == 0)
    bytes = 1;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  if (p == MAP_FAILED)
    die("cannot map %zu bytes for the replay's tables", bytes);
  return p;
}

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------------------
 * Reading the file
 * ------------------------------------------------------------------------------------------- */

/* A varint at *p (before end); false when it runs past end or over 64 bits. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return false;
    uint8_t byte = *(*p)++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Decodes the records of the chunk at offset; with table NULL it only checks them and finds the
 * highest sequence number. */
static void decode_chunk(trace_t *trace, size_t offset, const qm_trace_chunk_t *chunk, record_t *table) {
  const uint8_t *p = trace->bytes + offset + sizeof *chunk, *end = p + chunk->bytes;
  uint64_t seq = chunk->seq_base, time_ns = chunk->time_base;
  for (uint32_t i = 0; i < chunk->records; i++) {
    size_t at = (size_t)(p - trace->bytes);
    if (p >= end)
      die("%s: corrupt chunk at byte %zu: %u records announced, %u found", trace->path, offset,
          chunk->records, i);
    uint8_t op = *p++;
    unsigned base = op & QM_TRACE_OP_MASK, count = qm_trace_operand_count(base);
    uint64_t seq_delta, time_delta, operands[3] = {0, 0, 0};
    bool ok = count != 0 && get_varint(&p, end, &seq_delta) && get_varint(&p, end, &time_delta);
    for (unsigned k = 0; ok && k < count; k++)
      ok = get_varint(&p, end, &operands[k]);
    if (!ok)
      die("%s: corrupt record at byte %zu (op byte 0x%02x)", trace->path, at, op);
    seq += (uint64_t)unzigzag(seq_delta);
    time_ns += (uint64_t)unzigzag(time_delta);
    if (seq == 0 || seq > ((uint64_t)1 << 40))
      die("%s: corrupt record at byte %zu: sequence number %" PRIu64, trace->path, at, seq);
    if (table == NULL) {
      if (seq > trace->max_seq)
        trace->max_seq = seq;
      trace->first_ns = time_ns < trace->first_ns ? time_ns : trace->first_ns;
      trace->last_ns = time_ns > trace->last_ns ? time_ns : trace->last_ns;
      continue;
    }
    record_t *r = &table[seq - 1];
    if (r->thread != 0)
      die("%s: corrupt record at byte %zu: sequence number %" PRIu64 " appears twice", trace->path, at, seq);
    *r = (record_t){.op = op, .thread = chunk->thread};
    unsigned next = 0;
    if (qm_trace_op_takes_block(base)) {
      uint64_t ref = operands[next++];
      if (ref == QM_TRACE_REF_NULL)
        r->id = 0;
      else if (ref == QM_TRACE_REF_UNTRACED)
        r->id = ID_UNTRACED;
      else if (ref - 1 >= seq)
        die("%s: corrupt record at byte %zu: it refers to object %" PRIu64 " after it", trace->path, at, ref);
      else
        r->id = seq - (ref - 1);
    }
    uint64_t a = count - next == 2 ? operands[next++] : 0;
    r->size = operands[next];
    if (a > UINT32_MAX) {
      if (base == QM_TRACE_OP_CALLOC || base == QM_TRACE_OP_REALLOCARRAY)
        r->size = __builtin_mul_overflow(a, r->size, &r->size) ? UINT64_MAX : r->size;
      a = 1; /* (an alignment this large cannot be met anyway) */
    }
    r->a = (uint32_t)a;
  }
  if (p != end)
    die("%s: corrupt chunk at byte %zu: %zu bytes after its last record", trace->path, offset,
        (size_t)(end - p));
}

/* Walks the chunks (twice: checking and sizing, then filling the table). */
static void walk_chunks(trace_t *trace, record_t *table) {
  size_t offset = trace->header.header_size;
  trace->chunks = 0;
  trace->records = 0;
  while (offset < trace->length) {
    qm_trace_chunk_t chunk;
    if (trace->length - offset < sizeof chunk)
      die("%s: truncated at byte %zu: %zu bytes left, a chunk header needs %zu", trace->path, offset,
          trace->length - offset, sizeof chunk);
    memcpy(&chunk, trace->bytes + offset, sizeof chunk);
    if (chunk.magic != QM_TRACE_CHUNK_MAGIC || chunk.thread == 0)
      die("%s: corrupt chunk header at byte %zu", trace->path, offset);
    if (chunk.bytes > trace->length - offset - sizeof chunk)
      die("%s: truncated at byte %zu: the chunk there has %u bytes of records, the file %zu", trace->path,
          offset, chunk.bytes, trace->length - offset - sizeof chunk);
    decode_chunk(trace, offset, &chunk, table);
    if (chunk.thread > trace->threads)
      trace->threads = chunk.thread;
    trace->chunks++;
    trace->records += chunk.records;
    offset += sizeof chunk + chunk.bytes;
  }
}

static void trace_load(trace_t *trace, const char *path) {
  memset(trace, 0, sizeof *trace);
  trace->path = path;
  trace->first_ns = UINT64_MAX;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die("%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0)
    die("%s: %s", path, strerror(errno));
  trace->length = (size_t)st.st_size;
  if (trace->length < sizeof(qm_trace_header_t))
    die("%s: truncated: %zu bytes, shorter than the %zu-byte header of a qmalloc trace", path, trace->length,
        sizeof(qm_trace_header_t));
  trace->bytes = mmap(NULL, trace->length, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (trace->bytes == MAP_FAILED)
    die("%s: cannot map it: %s", path, strerror(errno));
  memcpy(&trace->header, trace->bytes, sizeof trace->header);
  if (memcmp(trace->header.magic, QM_TRACE_MAGIC, sizeof trace->header.magic) != 0)
    die("%s: not a qmalloc trace (bad magic)", path);
  if (trace->header.version != QM_TRACE_VERSION)
    die("%s: trace format version %u; this qmalloc-replay reads version %u", path, trace->header.version,
        QM_TRACE_VERSION);
  if (trace->header.header_size < sizeof(qm_trace_header_t) || trace->header.header_size > trace->length)
    die("%s: corrupt header (header size %u)", path, trace->header.header_size);
  walk_chunks(trace, NULL);
  trace->table_size = trace->max_seq * sizeof(record_t);
  trace->table = table_map(trace->table_size, false);
  walk_chunks(trace, trace->table);
  munmap((void *)trace->bytes, trace->length); /* decoded: out of the replay's resident set */
  trace->bytes = NULL;
}

static bool is_alloc(unsigned base) { return !qm_trace_op_takes_block(base); }

/* The id of the object a record leaves behind (0: none). */
static uint64_t result_id(const record_t *r, uint64_t seq) {
  unsigned base = r->op & QM_TRACE_OP_MASK;
  if (r->op & QM_TRACE_FAILED)
    return 0;
  if (is_alloc(base))
    return seq;
  if (base == QM_TRACE_OP_REALLOC || base == QM_TRACE_OP_REALLOCARRAY) {
    if (r->id != 0 && r->id != ID_UNTRACED &&
        (r->size == 0 || (base == QM_TRACE_OP_REALLOCARRAY && r->a == 0)))
      return 0; /* realloc(p, 0): freed */
    return r->id == 0 || r->id == ID_UNTRACED ? seq : r->id;
  }
  return 0;
}

static uint64_t requested_bytes(const record_t *r) {
  unsigned base = r->op & QM_TRACE_OP_MASK;
  if (base == QM_TRACE_OP_CALLOC || base == QM_TRACE_OP_REALLOCARRAY)
    return (uint64_t)r->a * r->size;
  return r->size;
}

/* The previous record on the same object, by seq (threaded replay; 0: none). */
static uint64_t *after_table;

/* ---------------------------------------------------------------------------------------------
 * --info
 * ------------------------------------------------------------------------------------------- */

static int info(trace_t *trace) {
  uint64_t calls[QM_TRACE_OP_COUNT] = {0}, failed = 0, moved = 0, cross = 0, untraced = 0, missing = 0;
  uint64_t live = 0, peak = 0;
  uint64_t *sizes = table_map((trace->max_seq + 1) * sizeof(uint64_t), false);
  bool *seen_thread = table_map(trace->threads + 1, false);
  uint32_t threads = 0;
  for (uint64_t seq = 1; seq <= trace->max_seq; seq++) {
    const record_t *r = &trace->table[seq - 1];
    if (r->thread == 0)
      continue;
    unsigned base = r->op & QM_TRACE_OP_MASK;
    calls[base]++;
    failed += (r->op & QM_TRACE_FAILED) != 0;
    moved += (r->op & QM_TRACE_MOVED) != 0;
    if (!seen_thread[r->thread]) {
      seen_thread[r->thread] = true;
      threads++;
    }
    uint64_t old = 0;
    if (r->id == ID_UNTRACED) {
      untraced++;
    } else if (r->id != 0) {
      const record_t *origin = &trace->table[r->id - 1];
      if (origin->thread == 0) {
        missing++;
      } else if (base == QM_TRACE_OP_FREE || base == QM_TRACE_OP_FREE_SIZED ||
                 base == QM_TRACE_OP_FREE_ALIGNED) {
        cross += origin->thread != r->thread;
      }
      if (!(r->op & QM_TRACE_FAILED)) {
        old = sizes[r->id];
        sizes[r->id] = 0;
      }
    }
    uint64_t id = result_id(r, seq);
    uint64_t now = id != 0 ? requested_bytes(r) : 0;
    if (id != 0)
      sizes[id] = now;
    live = live - old + now;
    peak = live > peak ? live : peak;
  }
  printf("trace %s: format version %u, pid %u, %zu bytes in %zu chunks\n", trace->path, trace->header.version,
         trace->header.pid, trace->length, trace->chunks);
  printf("calls: %" PRIu64 " over %.3f s, %.2f bytes per call\n", trace->records,
         trace->records ? (double)(trace->last_ns - trace->first_ns) * 1e-9 : 0.0,
         trace->records ? (double)trace->length / (double)trace->records : 0.0);
  for (unsigned op = 1; op < QM_TRACE_OP_COUNT; op++) {
    printf("  %-20s %12" PRIu64 "\n", op_names[op], calls[op]);
  }
  printf("reallocs that moved the block: %" PRIu64 "\n", moved);
  printf("failed calls: %" PRIu64 "\n", failed);
  printf("threads: %u\n", threads);
  printf("cross-thread frees: %" PRIu64 "\n", cross);
  printf("peak live bytes: %" PRIu64 " (requested sizes)\n", peak);
  printf("untraced blocks taken: %" PRIu64 " (allocated before tracing started, or inside the recorder)\n",
         untraced);
  printf("lost calls: %" PRIu64 " (not flushed before the process ended; %" PRIu64 " calls refer to them)\n",
         trace->max_seq - trace->records, missing);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Replay
 * ------------------------------------------------------------------------------------------- */

typedef struct replay_s {
  trace_t *trace;
  void **objects;           /* by id: the block the object lives in now */
  _Atomic uint8_t *done;    /* by seq: the record was replayed (threaded replay) */
  bool touch;               /* write a byte per page of every new block */
  _Atomic uint64_t skipped; /* records not replayed: failed calls, untraced or lost objects */
  void (*free_sized_fn)(void *, size_t);
  void (*free_aligned_sized_fn)(void *, size_t, size_t);
} replay_t;

typedef struct worker_s {
  replay_t *replay;
  uint64_t *seqs; /* the records of this worker, in sequence order */
  uint64_t count;
  _Atomic int *go;
  pthread_t thread;
} worker_t;

static void touch(void *p, uint64_t size) {
  volatile uint8_t *bytes = p;
  for (uint64_t offset = 0; offset < size; offset += TOUCH_STRIDE)
    bytes[offset] = (uint8_t)offset | 1;
}

/* The block of object id, taken out of the table (NULL when the object is unknown). */
static void *object_take(replay_t *replay, uint64_t id) {
  if (id == 0 || id == ID_UNTRACED)
    return NULL;
  void *p = replay->objects[id];
  replay->objects[id] = NULL;
  return p;
}

static void replay_one(replay_t *replay, uint64_t seq) {
  const record_t *r = &replay->trace->table[seq - 1];
  unsigned base = r->op & QM_TRACE_OP_MASK;
  if (r->op & QM_TRACE_FAILED) {
    atomic_fetch_add_explicit(&replay->skipped, 1, memory_order_relaxed);
    return;
  }
  void *p = NULL;
  switch (base) {
  case QM_TRACE_OP_MALLOC:
    p = malloc(r->size);
    break;
  case QM_TRACE_OP_CALLOC:
    p = calloc(r->a, r->size);
    break;
  case QM_TRACE_OP_ALIGNED_ALLOC:
    p = aligned_alloc(r->a, r->size);
    break;
  case QM_TRACE_OP_POSIX_MEMALIGN:
    if (posix_memalign(&p, r->a, r->size) != 0)
      p = NULL;
    break;
  case QM_TRACE_OP_MEMALIGN:
    p = memalign(r->a, r->size);
    break;
  case QM_TRACE_OP_VALLOC:
    p = valloc(r->size);
    break;
  case QM_TRACE_OP_PVALLOC:
    p = pvalloc(r->size);
    break;
  case QM_TRACE_OP_FREE:
  case QM_TRACE_OP_FREE_SIZED:
  case QM_TRACE_OP_FREE_ALIGNED: {
    void *block = object_take(replay, r->id);
    if (block == NULL && r->id != 0) {
      atomic_fetch_add_explicit(&replay->skipped, 1, memory_order_relaxed);
      return;
    }
    if (base == QM_TRACE_OP_FREE_SIZED && replay->free_sized_fn != NULL && block != NULL)
      replay->free_sized_fn(block, r->size);
    else if (base == QM_TRACE_OP_FREE_ALIGNED && replay->free_aligned_sized_fn != NULL && block != NULL)
      replay->free_aligned_sized_fn(block, r->a, r->size);
    else
      free(block);
    return;
  }
  case QM_TRACE_OP_REALLOC:
  case QM_TRACE_OP_REALLOCARRAY: {
    uint64_t id = result_id(r, seq);
    void *block = object_take(replay, r->id);
    if (id == 0) { /* realloc(p, 0): a free */
      if (block == NULL)
        atomic_fetch_add_explicit(&replay->skipped, 1, memory_order_relaxed);
      free(block);
      return;
    }
    uint64_t size = requested_bytes(r);
    p = realloc(block, size);
    if (p == NULL && block != NULL)
      free(block); /* the replay could not grow it: drop the object */
    replay->objects[id] = p;
    if (p != NULL && replay->touch)
      touch(p, size);
    return;
  }
  default:
    return;
  }
  replay->objects[seq] = p;
  if (p != NULL && replay->touch)
    touch(p, requested_bytes(r));
}

static void *worker_main(void *arg) {
  worker_t *worker = arg;
  replay_t *replay = worker->replay;
  while (!atomic_load_explicit(worker->go, memory_order_acquire))
    sched_yield();
  for (uint64_t i = 0; i < worker->count; i++) {
    uint64_t seq = worker->seqs[i];
    uint64_t after = after_table[seq];
    /* The previous call on this object (another thread's) must be done first. */
    for (unsigned spins = 0; after != 0 && !atomic_load_explicit(&replay->done[after], memory_order_acquire);
         spins++)
      if (spins > 100)
        sched_yield();
    replay_one(replay, seq);
    atomic_store_explicit(&replay->done[seq], 1, memory_order_release);
  }
  return NULL;
}

/* Resident set now, from /proc/self/statm (0 if unreadable). */
static uint64_t resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, resident = 0;
  if (f == NULL)
    return 0;
  if (fscanf(f, "%llu %llu", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int replay_main(trace_t *trace, bool serial, bool do_touch, bool json) {
  replay_t replay = {.trace = trace, .touch = do_touch};
  replay.objects = table_map((trace->max_seq + 1) * sizeof(void *), true);
  *(void **)&replay.free_sized_fn = dlsym(RTLD_DEFAULT, "free_sized");
  *(void **)&replay.free_aligned_sized_fn = dlsym(RTLD_DEFAULT, "free_aligned_sized");
  uint64_t calls = trace->records;
  unsigned workers_used = 1;
  worker_t *workers = NULL;
  _Atomic int go = 0;
  if (!serial) {
    /* The previous record on each object, and the records of each worker. */
    uint64_t *last = table_map((trace->max_seq + 1) * sizeof(uint64_t), false);
    after_table = table_map((trace->max_seq + 1) * sizeof(uint64_t), false);
    uint64_t counts[WORKERS_MAX] = {0};
    for (uint64_t seq = 1; seq <= trace->max_seq; seq++) {
      record_t *r = &trace->table[seq - 1];
      if (r->thread == 0)
        continue;
      if (r->id != 0 && r->id != ID_UNTRACED) {
        after_table[seq] = last[r->id];
        last[r->id] = seq;
      }
      uint64_t id = result_id(r, seq);
      if (id != 0)
        last[id] = seq;
      counts[(r->thread - 1) % WORKERS_MAX]++;
    }
    munmap(last, (trace->max_seq + 1) * sizeof(uint64_t));
    workers_used = trace->threads < WORKERS_MAX ? (trace->threads ? trace->threads : 1) : WORKERS_MAX;
    workers = table_map(workers_used * sizeof(worker_t), true);
    for (unsigned w = 0; w < workers_used; w++) {
      workers[w] = (worker_t){.replay = &replay, .go = &go};
      workers[w].seqs = table_map(counts[w] * sizeof(uint64_t), true);
    }
    for (uint64_t seq = 1; seq <= trace->max_seq; seq++) {
      const record_t *r = &trace->table[seq - 1];
      if (r->thread != 0) {
        worker_t *worker = &workers[(r->thread - 1) % WORKERS_MAX];
        worker->seqs[worker->count++] = seq;
      }
    }
    replay.done = table_map(trace->max_seq + 1, true);
    for (unsigned w = 0; w < workers_used; w++)
      if (pthread_create(&workers[w].thread, NULL, worker_main, &workers[w]) != 0)
        die("cannot start replay thread %u", w + 1);
  }
  /* Touch the record table now, so that the replay's page faults are the allocator's. */
  volatile uint8_t sink = 0;
  for (size_t offset = 0; offset < trace->table_size; offset += 4096)
    sink ^= ((volatile uint8_t *)trace->table)[offset];
  (void)sink;
  uint64_t baseline = resident_bytes();

  double start = now_seconds();
  if (serial) {
    for (uint64_t seq = 1; seq <= trace->max_seq; seq++)
      if (trace->table[seq - 1].thread != 0)
        replay_one(&replay, seq);
  } else {
    atomic_store_explicit(&go, 1, memory_order_release);
    for (unsigned w = 0; w < workers_used; w++)
      pthread_join(workers[w].thread, NULL);
  }
  double seconds = now_seconds() - start;

  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  uint64_t peak_rss = (uint64_t)usage.ru_maxrss * 1024;
  uint64_t skipped = atomic_load(&replay.skipped);
  double rate = seconds > 0 ? (double)calls / seconds : 0.0;
  if (json) {
    printf("{\"workload\": \"replay\", \"trace\": \"%s\", \"ops\": %" PRIu64 ", \"seconds\": %.6f, "
           "\"ops_per_sec\": %.1f, \"peak_rss_bytes\": %" PRIu64 ", \"tables_rss_bytes\": %" PRIu64
           ", \"threads\": %u, \"skipped\": %" PRIu64 "}\n",
           trace->path, calls, seconds, rate, peak_rss, baseline, workers_used, skipped);
  } else {
    printf("replayed %" PRIu64 " calls of %s in %.3f s: %.0f calls/s, %u thread%s%s\n", calls, trace->path,
           seconds, rate, workers_used, workers_used == 1 ? "" : "s", serial ? " (--serial)" : "");
    printf("peak RSS: %.1f MiB, %.1f MiB above the replayer's own tables and code\n",
           (double)peak_rss / 1048576.0, (double)(peak_rss > baseline ? peak_rss - baseline : 0) / 1048576.0);
    if (skipped != 0)
      printf("skipped: %" PRIu64 " calls (failed when recorded, or on blocks the trace does not know)\n",
             skipped);
  }
  return 0;
}

static void usage(FILE *out) {
  fprintf(out, "usage: qmalloc-replay [--serial] [--no-touch] [--json] FILE\n"
               "       qmalloc-replay --info FILE\n"
               "Replays a trace recorded with `qmalloc-run --trace FILE` (QMALLOC_TRACE=FILE and\n"
               "libqmalloc-trace.so) against the malloc of this process (preload another one to\n"
               "measure it), and prints the time, calls per second and peak RSS.\n"
               "  --info      summarise the trace: calls by kind, threads, peak live bytes\n"
               "  --serial    replay every thread's calls in one thread, in recorded order\n"
               "              (default: one thread per recorded thread)\n"
               "  --no-touch  do not write into the blocks (default: a byte per 4 KiB page)\n"
               "  --json      print the results as one JSON line\n");
}

int main(int argc, char **argv) {
  bool want_info = false, serial = false, do_touch = true, json = false;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--info") == 0)
      want_info = true;
    else if (strcmp(argv[i], "--serial") == 0)
      serial = true;
    else if (strcmp(argv[i], "--no-touch") == 0)
      do_touch = false;
    else if (strcmp(argv[i], "--json") == 0)
      json = true;
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "qmalloc-replay: unknown option %s\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (path == NULL) {
      path = argv[i];
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (path == NULL) {
    usage(stderr);
    return 2;
  }
  trace_t trace;
  trace_load(&trace, path);
  return want_info ? info(&trace) : replay_main(&trace, serial, do_touch, json);
}
