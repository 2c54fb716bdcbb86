/* secure.c - what the hardened variant (libqmalloc-secure.so, QM_SECURE) adds out of line: the
 * process secret that keys free-list links, the report of a corrupted link, the random order in
 * which a page's fresh blocks are handed out, and the guard page of each segment.
 *
 * The encoding and checking of links themselves are inline (block-inl.h): they sit on the fast
 * paths. docs/HARDENING.md says what all of it protects against, and what it does not.
 */
#include "block-inl.h"

#include <sys/random.h>
#include <time.h>

_Static_assert(QM_SECURE, "secure.c belongs to the secure variant only");

uintptr_t _qm_secure_secret;

void _qm_secure_init(void) {
  uint64_t secret = 0;
  if (getrandom(&secret, sizeof secret, GRND_NONBLOCK) != (ssize_t)sizeof secret) {
    /* No entropy yet (early boot) or no getrandom: clocks and addresses, which ASLR varies. */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t x = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32);
    x = qm_mix64(x ^ (uintptr_t)&secret);
    x = qm_mix64(x ^ (uintptr_t)&_qm_secure_secret);
    secret = qm_mix64(x ^ (uint64_t)_qm_os_getpid());
  }
  _qm_secure_secret = (uintptr_t)secret;
}

void _qm_secure_bad_link(const qm_page_t *page, const void *block, uintptr_t next) {
  if (page == NULL)
    _qm_fatal("corrupted free list: block %p, freed by another thread, links to %p, which is not a block "
              "(written after free?)",
              block, (void *)next);
  _qm_fatal("corrupted free list: free block %p (size %u) links to %p, outside its page's blocks [%p, +%u) "
            "(written after free?)",
            block, page->block_size, (void *)next, (void *)qm_page_start(page),
            page->capacity * page->block_size);
}

/* The heap's generator: xorshift64*, seeded from the secret and the heap's address the first time. */
static uint64_t heap_random(qm_heap_t *heap) {
  uint64_t x = heap->random;
  if (qm_unlikely(x == 0))
    x = qm_mix64(_qm_secure_secret ^ (uintptr_t)heap ^ _qm_os_now_ns()) | 1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  heap->random = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* page_extend carves at most this many blocks at once (4 KiB of 16-byte blocks). */
#define CARVE_MAX 256

void _qm_secure_carve(qm_heap_t *heap, qm_page_t *page, uint8_t *first, size_t n) {
  qm_assert_internal(n > 0 && n <= CARVE_MAX);
  /* A Fisher-Yates shuffle of the block indices. The bound of the draw is tiny, so the modulo's
   * bias (at most 256 / 2^64) does not matter. */
  uint16_t order[CARVE_MAX];
  for (size_t i = 0; i < n; i++)
    order[i] = (uint16_t)i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(heap_random(heap) % (i + 1));
    uint16_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  size_t block_size = page->block_size;
  qm_block_t *next = page->free;
  for (size_t i = n; i-- > 0;) {
    qm_block_t *block = (qm_block_t *)(first + (size_t)order[i] * block_size);
    qm_block_set_next(page, block, next);
    next = block;
  }
  page->free = next;
}

void _qm_secure_guard_segment(qm_segment_t *segment) {
  /* The metadata slices end with the OS pages past the slice descriptors, which nothing uses:
   * making them inaccessible costs no memory, and an overflow running backwards out of the first
   * span (or a stray write forwards past the descriptors) faults there instead. */
  size_t page = _qm_os_page_size();
  uintptr_t start = qm_align_up_ptr((uintptr_t)segment + sizeof(qm_segment_t), page);
  uintptr_t end = (uintptr_t)segment + QM_SEGMENT_FIRST_SLICE * QM_SLICE_SIZE;
  if (start < end)
    (void)_qm_os_protect_none((void *)start, end - start);
}
