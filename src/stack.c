/* stack.c - LIFO allocation in a fixed buffer taken from qmalloc: blocks are freed in the reverse
 * order of their allocation, and freeing any other block than the newest is reported.
 *
 *   one qmalloc block:
 *   +-----------+-----+---------+-----+---------------+--------------------------+
 *   | qm_stack_t| hdr | block 1 | hdr | block 2       |    free ...              |
 *   +-----------+-----+---------+-----+---------------+--------------------------+
 *               ^ base  |        ^  ^    |             ^ top                      ^ end
 *                       +-- end -+  +----+--- end -----+
 *
 * Each block is preceded by a 16-byte header holding the block's end (where top was left after
 * it). The live blocks tile the buffer from base to top, so the newest block is the one whose end
 * is top: freeing p checks that p's header says so, and moves top back to that header. Neither
 * path loads a value that the next operation waits for (free's new top comes from p itself), so
 * consecutive operations overlap. The stack never grows: a block that does not fit in what is left
 * fails with ENOMEM. Single-threaded.
 */
#include "alloc-inl.h"
#include "qmalloc.h"

#include <errno.h>

typedef struct stack_header_s {
  uint8_t *end; /* the end of this block, rounded up to 16: top, while the block is the newest */
  size_t size;  /* the size asked for (for debugging; the header is 16 bytes anyway) */
} stack_header_t;

_Static_assert(sizeof(stack_header_t) == QM_ALIGNMENT, "a block header keeps blocks 16-byte aligned");

/* Invariants: base <= top <= end, all 16-aligned; the headers of the live blocks chain from base
 * (each block's end is the next header) to top. */
struct qm_stack_s {
  uint8_t *top;  /* where the next header goes */
  uint8_t *end;  /* the end of the buffer */
  uint8_t *base; /* the start of the buffer */
};

#define STACK_STRUCT_SIZE qm_align_up(sizeof(qm_stack_t), QM_ALIGNMENT)

qm_stack_t *qm_stack_new(size_t capacity) {
  if (capacity > QM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  capacity = qm_align_up(capacity, QM_ALIGNMENT);
  qm_stack_t *s = qm_malloc(STACK_STRUCT_SIZE + capacity);
  if (s == NULL)
    return NULL;
  s->base = (uint8_t *)s + STACK_STRUCT_SIZE;
  s->top = s->base;
  s->end = s->base + capacity;
  return s;
}

/* A header and the block rounded up to 16 must fit between top and end. */
void *qm_stack_alloc(qm_stack_t *s, size_t size) {
  uint8_t *header = s->top;
  size_t room = (size_t)(s->end - header);
  if (qm_unlikely(room < sizeof(stack_header_t) || size > room - sizeof(stack_header_t))) {
    errno = ENOMEM;
    return NULL;
  }
  uint8_t *block = header + sizeof(stack_header_t);
  uint8_t *block_end = block + ((size + 15) & ~(size_t)15);
  ((stack_header_t *)header)->end = block_end;
  ((stack_header_t *)header)->size = size;
  s->top = block_end;
  return block;
}

/* The newest live block, found by walking the headers from base (error reports only). */
static void *stack_newest(qm_stack_t *s) {
  uint8_t *header = s->base;
  if (header == s->top)
    return NULL;
  while (((stack_header_t *)header)->end != s->top)
    header = ((stack_header_t *)header)->end;
  return header + sizeof(stack_header_t);
}

static qm_cold qm_noreturn void stack_misuse(qm_stack_t *s, void *p) {
  _qm_fatal("stack block freed out of order: %p, newest is %p (stack %p)", p, stack_newest(s), (void *)s);
}

/* p's header lies in [base, top) before it is read (so that a pointer from elsewhere is reported, not
 * followed), and names top as its end. */
void qm_stack_free(qm_stack_t *s, void *p) {
  if (p == NULL)
    return;
  uint8_t *header = (uint8_t *)p - sizeof(stack_header_t);
  uint8_t *top = s->top;
  uintptr_t base = (uintptr_t)s->base;
  if (qm_unlikely((uintptr_t)header - base >= (uintptr_t)top - base ||
                  ((stack_header_t *)header)->end != top))
    stack_misuse(s, p);
  s->top = header;
}

void qm_stack_destroy(qm_stack_t *s) { qm_free(s); }
