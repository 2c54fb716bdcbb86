/* pool.c - object pools: objects of one size, in chunks taken from qmalloc, allocated and freed by
 * popping and pushing a stack of free object pointers.
 *
 *   chunk (chunk_size bytes, aligned to chunk_size)
 *   +--------------+--------+--------+--------+-----     -----+--------+
 *   | pool_chunk_t | object | object | object |      ...      | object |
 *   +--------------+--------+--------+--------+-----     -----+--------+
 *   ^ object & ~(chunk_size - 1)   <- header_size -> then object_size apart
 *
 *   pool:  free[-1] = NULL (sentinel) | free[0] ... free[count - 1] = the object freed last | ...
 *                                                                        capacity = objects carved
 *
 * Every chunk is aligned to its own size, so the chunk of an object is one mask away, and the chunk
 * names its pool: freeing an object into the wrong pool is a certain check of one load and compare.
 *
 * Why a stack of pointers and not a free list threaded through the objects (as malloc's pages use):
 * with a threaded list each allocation must load the link out of the object handed out before, so
 * consecutive operations wait on each other through memory, and every free writes into the object;
 * that chain, not the instruction count, bounds malloc's own fast path. With the stack, allocation
 * and free touch only the pool's count and one slot of the array, and never the objects. It costs
 * one pointer per object carved (8 bytes: an eighth of a 64-byte object).
 *
 * Objects never handed out are carved from the newest chunk with a bump pointer (a chunk is touched
 * only as it is used); a full pool takes a new chunk and grows the stack to hold every object.
 * Chunks go back to qmalloc only when the pool is destroyed.
 *
 * Threads: a plain pool is for one thread at a time, and takes no lock. A QM_POOL_THREAD_SAFE pool
 * takes its spin lock around every operation (simple and right; for heavy contention give each
 * thread a pool of its own).
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>

#define POOL_CHUNK_MAGIC 0x716d504cu               /* "qmPL" */
#define POOL_CHUNK_MIN ((size_t)64 * 1024)         /* smallest chunk */
#define POOL_CHUNK_MIN_OBJECTS 16                  /* objects a chunk holds at least */
#define POOL_OBJECT_MAX ((size_t)64 * 1024 * 1024) /* largest object */

/* The head of every chunk. owner is what each free compares: the pool's address, with bit 0 set
 * for a thread-safe pool, so that a plain pool's fast path, comparing with the bare address, sends
 * every free of a thread-safe pool to the locked path without testing a flag. magic tells, when
 * the compare fails, whether the address was a chunk of some other pool at all. */
typedef struct pool_chunk_s {
  uintptr_t owner;
  uint32_t magic;
  struct pool_chunk_s *next; /* the pool's chunks, newest first */
} pool_chunk_t;

/* Invariants: every object carved is either in free[0 .. count), or live; objects at or above
 * `bump` in the newest chunk were never carved; capacity == objects carved, so every free fits;
 * free[-1] == NULL. A plain pool uses `count` and no lock; a thread-safe one keeps `count` at 0 (so
 * its fast paths always fall through) and uses locked_count, the stack, `bump` and the chunks under
 * `lock`. */
struct qm_pool_s {
  /* what the fast paths read, first */
  size_t count;         /* plain pools: free objects on the stack */
  void **free;          /* the stack of free objects, the newest last */
  size_t capacity;      /* slots in the stack: the objects carved so far */
  size_t chunk_size;    /* a power of two; chunks are aligned to it */
  size_t locked_count;  /* thread-safe pools: free objects on the stack, under lock */
  bool thread_safe;     /* QM_POOL_THREAD_SAFE */
  uint8_t *bump;        /* next object never handed out */
  uint8_t *bump_end;    /* end of the newest chunk's objects */
  size_t object_size;   /* distance between objects: the size rounded up to the alignment */
  size_t header_size;   /* bytes from a chunk to its first object */
  size_t chunk_objects; /* objects in a chunk */
  pool_chunk_t *chunks;
  qm_lock_t lock;
};

static inline uintptr_t pool_owner_tag(const qm_pool_t *p) {
  return (uintptr_t)p | (p->thread_safe ? 1u : 0u);
}
static inline pool_chunk_t *chunk_of(const qm_pool_t *p, const void *obj) {
  return (pool_chunk_t *)((uintptr_t)obj & ~(uintptr_t)(p->chunk_size - 1));
}

qm_pool_t *qm_pool_new_ex(size_t object_size, size_t alignment, unsigned flags) {
  if (alignment == 0)
    alignment = QM_ALIGNMENT;
  if (!qm_is_power_of_two(alignment) || alignment > POOL_OBJECT_MAX || (flags & ~QM_POOL_THREAD_SAFE) != 0) {
    errno = EINVAL;
    return NULL;
  }
  if (object_size > POOL_OBJECT_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment < sizeof(void *))
    alignment = sizeof(void *); /* a free object holds a link */
  qm_pool_t *p = qm_malloc(sizeof *p);
  if (p == NULL)
    return NULL;
  memset(p, 0, sizeof *p);
  p->thread_safe = (flags & QM_POOL_THREAD_SAFE) != 0;
  p->object_size = qm_align_up(object_size < sizeof(void *) ? sizeof(void *) : object_size, alignment);
  p->header_size = qm_align_up(sizeof(pool_chunk_t), alignment);
  size_t want = p->header_size + POOL_CHUNK_MIN_OBJECTS * p->object_size;
  p->chunk_size = want < POOL_CHUNK_MIN ? POOL_CHUNK_MIN : qm_next_power_of_two(want);
  p->chunk_objects = (p->chunk_size - p->header_size) / p->object_size;
  /* The stack starts as the sentinel slot alone. */
  void **stack = qm_malloc(sizeof(void *));
  if (stack == NULL) {
    qm_free(p);
    return NULL;
  }
  stack[0] = NULL;
  p->free = stack + 1;
  return p;
}

qm_pool_t *qm_pool_new(size_t object_size, size_t alignment) {
  return qm_pool_new_ex(object_size, alignment, 0);
}

size_t qm_pool_object_size(const qm_pool_t *p) { return p->object_size; }

/* Carves an object, taking a new chunk (and growing the stack to match) when the newest is used
 * up; NULL (ENOMEM) when qmalloc has no memory for either. */
static void *pool_carve(qm_pool_t *p) {
  if (p->bump_end - p->bump < (ptrdiff_t)p->object_size) {
    size_t slots = p->capacity + p->chunk_objects;
    void **stack = qm_realloc(p->free - 1, (slots + 1) * sizeof(void *));
    if (stack == NULL)
      return NULL;
    p->free = stack + 1;
    pool_chunk_t *chunk = qm_aligned_alloc(p->chunk_size, p->chunk_size);
    if (chunk == NULL)
      return NULL; /* the stack stays larger than needed: harmless */
    p->capacity = slots;
    chunk->owner = pool_owner_tag(p);
    chunk->magic = POOL_CHUNK_MAGIC;
    chunk->next = p->chunks;
    p->chunks = chunk;
    p->bump = (uint8_t *)chunk + p->header_size;
    p->bump_end = p->bump + p->chunk_objects * p->object_size;
  }
  void *fresh = p->bump;
  p->bump += p->object_size;
  return fresh;
}

static qm_cold void *pool_alloc_slow(qm_pool_t *p) {
  if (!p->thread_safe)
    return pool_carve(p);
  _qm_lock(&p->lock);
  void *obj = p->locked_count > 0 ? p->free[--p->locked_count] : pool_carve(p);
  _qm_unlock(&p->lock);
  return obj;
}

/* The fast path: a pop (a thread-safe pool's count is always 0). */
void *qm_pool_alloc(qm_pool_t *p) {
  size_t n = p->count;
  if (qm_likely(n != 0)) {
    p->count = n - 1;
    return p->free[n - 1];
  }
  return pool_alloc_slow(p);
}

static qm_cold qm_noreturn void pool_misuse(qm_pool_t *p, void *obj) {
  pool_chunk_t *chunk = chunk_of(p, obj);
  unsigned state = qm_map_state(chunk);
  if (state != QM_MAP_NORMAL && state != QM_MAP_HUGE)
    _qm_fatal("pool object %p freed into the wrong pool %p (it is not in any pool's memory)", obj, (void *)p);
  if (chunk->owner == pool_owner_tag(p))
    _qm_fatal("pool object %p freed into pool %p lies in the chunk header, not on an object", obj, (void *)p);
  if (chunk->magic == POOL_CHUNK_MAGIC)
    _qm_fatal("pool object %p freed into the wrong pool %p (it belongs to pool %p)", obj, (void *)p,
              (void *)(chunk->owner & ~(uintptr_t)1));
  _qm_fatal("pool object %p freed into the wrong pool %p (it is not an object of that pool)", obj, (void *)p);
}

static qm_cold qm_noreturn void pool_double_free(qm_pool_t *p, void *obj) {
  _qm_fatal("double free: pool object %p is already free in pool %p", obj, (void *)p);
}

/* Everything the fast path does not take: thread-safe pools, and misuse. */
static qm_cold void pool_free_slow(qm_pool_t *p, void *obj) {
  pool_chunk_t *chunk = chunk_of(p, obj);
  unsigned state = qm_map_state(chunk);
  if ((state != QM_MAP_NORMAL && state != QM_MAP_HUGE) || chunk->owner != pool_owner_tag(p) ||
      (uintptr_t)obj - (uintptr_t)chunk < p->header_size)
    pool_misuse(p, obj);
  bool locked = p->thread_safe;
  if (locked)
    _qm_lock(&p->lock);
  size_t *count = locked ? &p->locked_count : &p->count;
  size_t n = *count;
  if (obj == p->free[(ptrdiff_t)n - 1] || n >= p->capacity) {
    if (locked)
      _qm_unlock(&p->lock);
    pool_double_free(p, obj);
  }
  p->free[n] = obj;
  *count = n + 1;
  if (locked)
    _qm_unlock(&p->lock);
}

/* The fast path of a plain pool: the segment map says the chunk address is memory qmalloc manages
 * (so that its header is readable: the map marks the first 4 MiB of a block even when it is huge,
 * and a chunk below obj in such memory is mapped), the chunk is this pool's, obj is not the object
 * freed last (the common double free: free[-1], the sentinel, covers an empty stack), and there is
 * room (more frees than objects means some object was freed twice); then one push. NULL fails the
 * map test (region 0 is never qmalloc's); a thread-safe pool fails the owner test. */
void qm_pool_free(qm_pool_t *p, void *obj) {
  pool_chunk_t *chunk = chunk_of(p, obj);
  unsigned state = atomic_load_explicit(&_qm_segment_map[qm_map_index(chunk)], memory_order_relaxed);
  size_t n = p->count;
  if (qm_likely((state - QM_MAP_NORMAL <= QM_MAP_HUGE - QM_MAP_NORMAL || state >= QM_MAP_OWNED_MIN) &&
                chunk->owner == (uintptr_t)p && obj != p->free[(ptrdiff_t)n - 1] && n < p->capacity)) {
    p->free[n] = obj;
    p->count = n + 1;
    return;
  }
  if (obj != NULL)
    pool_free_slow(p, obj);
}

void qm_pool_destroy(qm_pool_t *p) {
  if (p == NULL)
    return;
  pool_chunk_t *chunk = p->chunks;
  while (chunk != NULL) {
    pool_chunk_t *next = chunk->next;
    chunk->magic = 0;
    chunk->owner = 0;
    qm_free(chunk);
    chunk = next;
  }
  qm_free(p->free - 1);
  qm_free(p);
}
