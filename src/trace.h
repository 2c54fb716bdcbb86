/* trace.h - the trace file format, shared by the recorder of libqmalloc-trace.so (src/trace.c) and
 * tools/qmalloc-replay.c, and the hooks override.c puts around every entry point in that variant.
 *
 * The format (docs/TRACE.md has the full description):
 *
 *   +--------------+---------------------------+---------------------------+----
 *   | file header  | chunk header | records... | chunk header | records... | ...
 *   +--------------+---------------------------+---------------------------+----
 *     32 bytes       32 bytes      `bytes`
 *
 * Each chunk is one flush of one thread's buffer. A record is an op byte, then LEB128 varints: the
 * sequence number minus the previous one of the chunk and the time minus the previous one (ns),
 * both zig-zag encoded (signed), then the operands of the op (unsigned). Every traced call takes the next
 * number of one process-wide sequence, so sorting the records of all chunks by sequence number gives the
 * calls in an order that respects every dependency between them (an object is freed after it was allocated).
 * An object's id is the sequence number of the call that allocated it; it keeps it when realloc moves it. A
 * reference to an object in a record (`ref`) is 0 for NULL, 1 for a block allocated while nothing was traced,
 * else (sequence number - id + 1), which is small for short-lived objects. All integers are little-endian.
 *
 * This header needs nothing but the C library; the recorder's part is under QM_VARIANT_TRACE.
 */
#ifndef QM_TRACE_H
#define QM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QM_TRACE_MAGIC "QMTRACE" /* 8 bytes with its NUL */
#define QM_TRACE_VERSION 1u
#define QM_TRACE_CHUNK_MAGIC 0x4b435451u /* "QTCK" */

/* The file header. */
typedef struct qm_trace_header_s {
  char magic[8];        /* QM_TRACE_MAGIC */
  uint32_t version;     /* QM_TRACE_VERSION */
  uint32_t header_size; /* sizeof(qm_trace_header_t): records start this far into the file */
  uint32_t pid;         /* the traced process */
  uint32_t reserved;    /* 0 */
  uint64_t start_ns;    /* CLOCK_MONOTONIC when tracing started; record times are relative to it */
} qm_trace_header_t;

/* The header of one chunk. seq_base and time_base are the sequence number and time of the record
 * before the chunk's first one in the same thread (0 for the thread's first chunk), so that every
 * chunk decodes on its own. */
typedef struct qm_trace_chunk_s {
  uint32_t magic;     /* QM_TRACE_CHUNK_MAGIC */
  uint32_t thread;    /* the recording thread, numbered from 1 in the order threads first called */
  uint32_t bytes;     /* bytes of records after this header */
  uint32_t records;   /* records in them */
  uint64_t seq_base;  /* see above */
  uint64_t time_base; /* ns since start_ns */
} qm_trace_chunk_t;

_Static_assert(sizeof(qm_trace_header_t) == 32, "the file header is 32 bytes");
_Static_assert(sizeof(qm_trace_chunk_t) == 32, "a chunk header is 32 bytes");

/* The op byte: the call in the low 5 bits, and flags. */
typedef enum qm_trace_op_e {
  QM_TRACE_OP_MALLOC = 1,         /* size */
  QM_TRACE_OP_CALLOC = 2,         /* count, size */
  QM_TRACE_OP_REALLOC = 3,        /* ref, size */
  QM_TRACE_OP_REALLOCARRAY = 4,   /* ref, count, size */
  QM_TRACE_OP_FREE = 5,           /* ref */
  QM_TRACE_OP_FREE_SIZED = 6,     /* ref, size */
  QM_TRACE_OP_FREE_ALIGNED = 7,   /* ref, alignment, size (free_aligned_sized) */
  QM_TRACE_OP_ALIGNED_ALLOC = 8,  /* alignment, size */
  QM_TRACE_OP_POSIX_MEMALIGN = 9, /* alignment, size */
  QM_TRACE_OP_MEMALIGN = 10,      /* alignment, size */
  QM_TRACE_OP_VALLOC = 11,        /* size */
  QM_TRACE_OP_PVALLOC = 12,       /* size */
  QM_TRACE_OP_COUNT = 13
} qm_trace_op_t;
#define QM_TRACE_OP_MASK 0x1fu
#define QM_TRACE_MOVED 0x20u  /* realloc: the block moved */
#define QM_TRACE_FAILED 0x80u /* the call returned NULL (an error): no object came or went */

#define QM_TRACE_REF_NULL 0u
#define QM_TRACE_REF_UNTRACED 1u

/* Operands after the sequence and time deltas, by op (0 for an unknown op). */
static inline unsigned qm_trace_operand_count(unsigned op) {
  switch (op) {
  case QM_TRACE_OP_MALLOC:
  case QM_TRACE_OP_FREE:
  case QM_TRACE_OP_VALLOC:
  case QM_TRACE_OP_PVALLOC:
    return 1;
  case QM_TRACE_OP_REALLOCARRAY:
  case QM_TRACE_OP_FREE_ALIGNED:
    return 3;
  case QM_TRACE_OP_CALLOC:
  case QM_TRACE_OP_REALLOC:
  case QM_TRACE_OP_FREE_SIZED:
  case QM_TRACE_OP_ALIGNED_ALLOC:
  case QM_TRACE_OP_POSIX_MEMALIGN:
  case QM_TRACE_OP_MEMALIGN:
    return 2;
  }
  return 0;
}

/* Whether the op's first operand is a ref (the op takes an existing block). */
static inline bool qm_trace_op_takes_block(unsigned op) {
  return op == QM_TRACE_OP_REALLOC || op == QM_TRACE_OP_REALLOCARRAY || op == QM_TRACE_OP_FREE ||
         op == QM_TRACE_OP_FREE_SIZED || op == QM_TRACE_OP_FREE_ALIGNED;
}

#if defined(QM_VARIANT_TRACE) && QM_VARIANT_TRACE
/* ---------------------------------------------------------------------------------------------
 * The recorder (src/trace.c). Each hook costs one load and a not-taken branch while nothing is
 * traced (no QMALLOC_TRACE, or after fork in the child).
 * ------------------------------------------------------------------------------------------- */

extern bool _qm_trace_on;

/* An allocation returned result (NULL: it failed). a: the alignment or count (0 when the op has
 * neither), size: the size. */
void _qm_trace_alloc(unsigned op, size_t a, size_t size, void *result);
/* A block is about to be freed (before it is, so that no other thread can have it back yet). */
void _qm_trace_free(unsigned op, void *p, size_t alignment, size_t size);
/* realloc: takes p's id out of the map before the call, and records the call after it. */
uint64_t _qm_trace_realloc_begin(void *p);
void _qm_trace_realloc_end(unsigned op, void *p, uint64_t id, size_t count, size_t size, void *result);

static inline void *qm_trace_alloc(unsigned op, size_t a, size_t size, void *result) {
  if (__builtin_expect(_qm_trace_on, 0))
    _qm_trace_alloc(op, a, size, result);
  return result;
}
static inline void qm_trace_free(unsigned op, void *p, size_t alignment, size_t size) {
  if (__builtin_expect(_qm_trace_on, 0))
    _qm_trace_free(op, p, alignment, size);
}
static inline uint64_t qm_trace_realloc_begin(void *p) {
  return __builtin_expect(_qm_trace_on, 0) ? _qm_trace_realloc_begin(p) : 0;
}
static inline void *qm_trace_realloc_end(unsigned op, void *p, uint64_t id, size_t count, size_t size,
                                         void *result) {
  if (__builtin_expect(_qm_trace_on, 0))
    _qm_trace_realloc_end(op, p, id, count, size, result);
  return result;
}

/* The hooks as override.c uses them; without the variant they are the bare calls. */
#define QM_TRACE_ALLOC(op, a, size, call) qm_trace_alloc(QM_TRACE_OP_##op, a, size, call)
#define QM_TRACE_NOTE_ALLOC(op, a, size, result) ((void)qm_trace_alloc(QM_TRACE_OP_##op, a, size, result))
#define QM_TRACE_FREE(op, p, alignment, size) qm_trace_free(QM_TRACE_OP_##op, p, alignment, size)
#define QM_TRACE_REALLOC(op, p, count, size, call)                                                           \
  __extension__({                                                                                            \
    uint64_t trace_id_ = qm_trace_realloc_begin(p);                                                          \
    qm_trace_realloc_end(QM_TRACE_OP_##op, p, trace_id_, count, size, call);                                 \
  })
#else
#define QM_TRACE_ALLOC(op, a, size, call) (call)
#define QM_TRACE_NOTE_ALLOC(op, a, size, result) ((void)0)
#define QM_TRACE_FREE(op, p, alignment, size) ((void)0)
#define QM_TRACE_REALLOC(op, p, count, size, call) (call)
#endif

#endif /* QM_TRACE_H */
