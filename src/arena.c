/* arena.c - regions: bump allocation in chunks taken from qmalloc, freed all at once (reset,
 * destroy) or back to a mark.
 *
 * Positions. Every byte handed out has a position: a number that grows with each allocation and that
 * qm_arena_mark returns. Each chunk maps a window of positions onto its memory, starting at the
 * position the arena had reached when the chunk was taken (the unused tail of the chunk before is
 * skipped, not counted):
 *
 *   chunk 0 [base 0]      | a | b | c |...(unused)|
 *   chunk 1 [base 3*16]   | d | e | f | g | ............ |  <- top: cur, end
 *   large blocks          [X: position 5*16] -> [Y: position 2*16] -> NULL   (newest first)
 *
 * A request above a quarter of the chunk size gets a block of its own (a "large" block, from
 * qmalloc), recorded with the position at which it was made; it also takes a 16-byte ticket in the
 * top chunk, so that a mark taken after it is above its position and one taken before is not.
 * reset_to(m) frees the large blocks whose position is >= m and the chunks whose base is > m, and
 * puts the bump pointer of the chunk holding m back to m.
 *
 * Growth: chunks start at the initial capacity and double up to ARENA_CHUNK_MAX. reset() keeps the
 * newest (largest) chunk and frees the others, so a loop that fills and resets an arena soon stops
 * taking chunks. Single-threaded.
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>

#define ARENA_DEFAULT_CAPACITY ((size_t)64 * 1024)
#define ARENA_CHUNK_MAX ((size_t)64 * 1024 * 1024)

/* A chunk: this header, then `capacity` bytes of data, which hold positions [base, base + capacity). */
typedef struct arena_chunk_s {
  struct arena_chunk_s *prev; /* the chunk taken before this one */
  size_t base;                /* position of the first data byte */
  size_t capacity;            /* data bytes */
  size_t padding_;            /* keeps the data 16-byte aligned */
} arena_chunk_t;

/* The header at the start of a large block; the data follows, at the block's alignment. */
typedef struct arena_large_s {
  struct arena_large_s *prev; /* the large block made before this one */
  size_t position;            /* the arena's top when it was made */
} arena_large_t;

/* Invariants: top is the newest chunk and cur, end lie in its data, cur <= end, both 16-aligned;
 * the chunks' bases grow from the oldest (base 0) to top; large blocks are listed newest first,
 * positions not growing along the list, each below the current top. */
struct qm_arena_s {
  uint8_t *cur;         /* the next free byte of top */
  uint8_t *end;         /* the end of top's data */
  arena_chunk_t *top;   /* the newest chunk */
  arena_large_t *large; /* large blocks, newest first */
  size_t chunk_bytes;   /* size of the next chunk to take, header included */
};

static inline uint8_t *chunk_data(arena_chunk_t *chunk) { return (uint8_t *)(chunk + 1); }

static inline size_t arena_position(const qm_arena_t *a) {
  return a->top->base + (size_t)(a->cur - chunk_data(a->top));
}

/* Makes a new chunk of at least `need` data bytes the top, at the current position. */
static bool arena_grow(qm_arena_t *a, size_t need) {
  size_t bytes = a->chunk_bytes;
  if (need > bytes - sizeof(arena_chunk_t))
    bytes = qm_align_up(need + sizeof(arena_chunk_t), QM_ALIGNMENT);
  arena_chunk_t *chunk = qm_malloc(bytes);
  if (chunk == NULL)
    return false;
  chunk->prev = a->top;
  chunk->base = a->top ? arena_position(a) : 0;
  chunk->capacity = bytes - sizeof(arena_chunk_t);
  a->top = chunk;
  a->cur = chunk_data(chunk);
  a->end = a->cur + chunk->capacity;
  if (a->chunk_bytes < ARENA_CHUNK_MAX)
    a->chunk_bytes *= 2;
  return true;
}

qm_arena_t *qm_arena_new(size_t initial_capacity) {
  if (initial_capacity == 0)
    initial_capacity = ARENA_DEFAULT_CAPACITY;
  if (initial_capacity > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  qm_arena_t *a = qm_malloc(sizeof *a);
  if (a == NULL)
    return NULL;
  memset(a, 0, sizeof *a);
  a->chunk_bytes = qm_align_up(initial_capacity, QM_ALIGNMENT) + sizeof(arena_chunk_t);
  if (!arena_grow(a, 0)) {
    qm_free(a);
    return NULL;
  }
  return a;
}

/* A block of its own for a big request; the arena's top moves by one 16-byte ticket. */
static void *arena_alloc_large(qm_arena_t *a, size_t alignment, size_t size) {
  if (a->cur == a->end && !arena_grow(a, QM_ALIGNMENT))
    return NULL;
  size_t header = qm_align_up(sizeof(arena_large_t), alignment);
  if (size > QM_MAX_REQUEST - header) {
    errno = ENOMEM;
    return NULL;
  }
  uint8_t *block = qm_aligned_alloc(alignment, header + size);
  if (block == NULL)
    return NULL;
  arena_large_t *large = (arena_large_t *)block;
  large->prev = a->large;
  large->position = arena_position(a);
  a->large = large;
  a->cur += QM_ALIGNMENT;
  return block + header;
}

static qm_cold void *arena_alloc_slow(qm_arena_t *a, size_t alignment, size_t size) {
  if (size > QM_MAX_REQUEST || alignment > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (size > (a->chunk_bytes - sizeof(arena_chunk_t)) / 4)
    return arena_alloc_large(a, alignment, size);
  /* Fits a chunk: in the top one, once aligned, or in a new one. */
  for (int attempt = 0; attempt < 2; attempt++) {
    uint8_t *p = (uint8_t *)qm_align_up_ptr((uintptr_t)a->cur, alignment);
    if (p <= a->end && size <= (size_t)(a->end - p)) {
      a->cur = p + qm_align_up(size, QM_ALIGNMENT);
      return p;
    }
    if (attempt == 0 && !arena_grow(a, size + alignment))
      return NULL;
  }
  return NULL; /* not reached: a new chunk has room for size + alignment */
}

/* The fast path: a compare and a bump. cur and end are 16-aligned, so size rounded up still fits. */
void *qm_arena_alloc(qm_arena_t *a, size_t size) {
  uint8_t *p = a->cur;
  if (qm_likely(size <= (size_t)(a->end - p))) {
    a->cur = p + ((size + 15) & ~(size_t)15);
    return p;
  }
  return arena_alloc_slow(a, QM_ALIGNMENT, size);
}

void *qm_arena_aligned_alloc(qm_arena_t *a, size_t alignment, size_t size) {
  if (!qm_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  if (alignment < QM_ALIGNMENT)
    alignment = QM_ALIGNMENT;
  return arena_alloc_slow(a, alignment, size);
}

size_t qm_arena_mark(qm_arena_t *a) { return arena_position(a); }

/* Frees the large blocks made at or after position `from`. */
static void free_large_from(qm_arena_t *a, size_t from) {
  while (a->large != NULL && a->large->position >= from) {
    arena_large_t *large = a->large;
    a->large = large->prev;
    qm_free(large);
  }
}

void qm_arena_reset_to(qm_arena_t *a, size_t mark) {
  size_t top = arena_position(a);
  if (qm_unlikely(mark > top))
    _qm_fatal("arena %p: reset to mark %zu, past the top %zu (not a mark of this arena, or taken before "
              "a reset)",
              (void *)a, mark, top);
  free_large_from(a, mark);
  while (a->top->base > mark) {
    arena_chunk_t *chunk = a->top;
    a->top = chunk->prev;
    qm_free(chunk);
  }
  a->cur = chunk_data(a->top) + (mark - a->top->base);
  a->end = chunk_data(a->top) + a->top->capacity;
}

void qm_arena_reset(qm_arena_t *a) {
  free_large_from(a, 0);
  arena_chunk_t *keep = a->top;
  arena_chunk_t *chunk = keep->prev;
  while (chunk != NULL) {
    arena_chunk_t *prev = chunk->prev;
    qm_free(chunk);
    chunk = prev;
  }
  keep->prev = NULL;
  keep->base = 0;
  a->cur = chunk_data(keep);
  a->end = a->cur + keep->capacity;
}

void qm_arena_destroy(qm_arena_t *a) {
  if (a == NULL)
    return;
  free_large_from(a, 0);
  arena_chunk_t *chunk = a->top;
  while (chunk != NULL) {
    arena_chunk_t *prev = chunk->prev;
    qm_free(chunk);
    chunk = prev;
  }
  qm_free(a);
}
