/* realloc - buffers that grow by realloc, many at once.
 *
 * Models: string builders and dynamic arrays as found in interpreters, parsers and serialisers.
 * 64 objects grow side by side, one random step at a time:
 *   - string builders append pieces of 1 to 64 bytes; half of them double their capacity when
 *     full, the other half grow it by 256 bytes (a naive builder); each stops at a random length
 *     of 1 KiB to 256 KiB;
 *   - growing arrays append one 8-byte element at a time and realloc for every element, up to a
 *     random length of up to 100 KiB.
 * A finished object has its whole contents checked, is freed and starts again from nothing. This
 * is the realloc-growth pattern of vector/string benchmarks; whether realloc can grow in place
 * decides most of the cost.
 *
 * ops counts realloc calls. With --threads=N, N threads each run their own 64 objects.
 */
#include "harness.h"

#define OBJECTS 64
#define BUILDER_STEP 256 /* growth of a naive builder */

struct object {
  unsigned char *data;
  size_t len, cap; /* bytes in use, bytes allocated (len <= cap) */
  size_t target;   /* len at which it is finished */
  uint32_t salt;   /* content: byte i of a builder is content_byte(salt, i) */
  int kind;        /* 0 doubling builder, 1 naive builder, 2 array of uint64_t */
};

struct grow {
  uint64_t steps; /* per thread */
  uint64_t seed;
  uint64_t checksum[QMB_MAX_THREADS], reallocs[QMB_MAX_THREADS];
};

static unsigned char content_byte(uint32_t salt, size_t i) {
  return (unsigned char)(salt ^ (i * 131) ^ (i >> 8));
}
static uint64_t content_word(uint32_t salt, size_t i) { return qmb_mix64(salt + i); }

static void start(struct object *o, struct qmb_rng *r) {
  *o = (struct object){.kind = (int)qmb_rng_below(r, 3), .salt = (uint32_t)qmb_rng_next(r)};
  o->target = o->kind == 2 ? 8 * qmb_rng_range(r, 16, 12800) : qmb_rng_range(r, 1024, 256 * 1024);
}

static void *grow_to(void *p, size_t n, uint64_t *reallocs) {
  void *q = realloc(p, n);
  if (!q)
    qmb_die("realloc failed");
  ++*reallocs;
  return q;
}

/* Checks every byte of a finished object; returns a digest of it. */
static uint64_t finish(struct object *o) {
  uint64_t digest = o->len;
  if (o->kind == 2) {
    uint64_t *a = (uint64_t *)o->data;
    for (size_t i = 0; i < o->len / 8; i++)
      if (a[i] != content_word(o->salt, i))
        qmb_corrupt(a, "element %zu of a grown array is wrong", i);
    digest += a[o->len / 8 - 1];
  } else {
    for (size_t i = 0; i < o->len; i++)
      if (o->data[i] != content_byte(o->salt, i))
        qmb_corrupt(o->data, "byte %zu of a grown string is wrong", i);
    digest += o->data[o->len - 1];
  }
  free(o->data);
  return digest;
}

/* One step: one append to o, with a realloc when it does not fit. */
static void append(struct object *o, struct qmb_rng *r, uint64_t *reallocs) {
  if (o->kind == 2) {
    o->data = grow_to(o->data, o->len + 8, reallocs);
    ((uint64_t *)o->data)[o->len / 8] = content_word(o->salt, o->len / 8);
    o->len += 8;
    return;
  }
  size_t piece = qmb_rng_range(r, 1, 64);
  if (o->len + piece > o->cap) {
    size_t cap = o->kind == 0 ? (o->cap ? 2 * o->cap : 32) : o->cap + BUILDER_STEP;
    o->cap = cap < o->len + piece ? o->len + piece : cap;
    o->data = grow_to(o->data, o->cap, reallocs);
  }
  for (size_t i = 0; i < piece; i++)
    o->data[o->len + i] = content_byte(o->salt, o->len + i);
  o->len += piece;
}

static void run_worker(void *ctx, unsigned index) {
  struct grow *g = ctx;
  struct qmb_rng r;
  qmb_rng_init(&r, g->seed, index);
  struct object objects[OBJECTS];
  uint64_t sum = 0, reallocs = 0;
  for (int i = 0; i < OBJECTS; i++)
    start(&objects[i], &r);
  for (uint64_t step = 0; step < g->steps; step++) {
    struct object *o = &objects[qmb_rng_below(&r, OBJECTS)];
    append(o, &r, &reallocs);
    if (o->len >= o->target) {
      sum += finish(o);
      start(o, &r);
    }
  }
  for (int i = 0; i < OBJECTS; i++)
    if (objects[i].len)
      sum += finish(&objects[i]);
  g->checksum[index] = sum;
  g->reallocs[index] = reallocs;
}

int main(int argc, char **argv) {
  struct qmb_args args;
  qmb_parse_args(&args, argc, argv, "realloc", "64 interleaved string builders and arrays growing by realloc",
                 1, QMB_MAX_THREADS);
  static struct grow g;
  g.steps = QMB_BY_SIZE(&args, 200000, 6000000, 40000000);
  g.seed = args.seed;

  double seconds = qmb_run_threads(args.threads, run_worker, &g);

  uint64_t checksum = 0, reallocs = 0;
  for (unsigned i = 0; i < args.threads; i++) {
    checksum += g.checksum[i];
    reallocs += g.reallocs[i];
  }
  qmb_result_begin(&args, reallocs, seconds, checksum, "realloc calls");
  qmb_result_u64("appends", g.steps * args.threads);
  qmb_result_end();
  return 0;
}
