/* profile.c - the sampling heap profiler of libqmalloc-profile.so: a call stack captured roughly
 * every QMALLOC_PROFILE_SAMPLE bytes allocated, a table of the stacks seen with the bytes and
 * allocations they stand for, an estimate of the requests per size class, and the two ways out:
 * qm_profile_dump (folded stacks, the text that flame-graph tools read) and the "profile" member of
 * the memory report (report.c).
 *
 * Only the profiling variant (QM_VARIANT_PROFILE) has any of this; other builds export a
 * qm_profile_dump that says ENOTSUP.
 *
 * Sampling. Each thread counts down the bytes it allocates (qm_profile_due, inlined at the entry
 * points: one subtraction in TLS). The countdown marks sample points in the thread's stream of
 * allocated bytes, drawn uniformly from [1, 2M) apart, so that periodic allocation patterns do not
 * alias with them. M, the size interval, is SIZE_INTERVAL_MAX (or N if smaller) when a report is
 * asked for, and N otherwise: the report is the only reader of the size estimates. When the count
 * runs out, _qm_profile_sample counts the points the allocation spans (more than one when it is
 * larger than an interval) and records each as M bytes and M/s allocations of its size s. An
 * allocation spans s/M points on average, so the sums per size class are unbiased estimates of the
 * requests and bytes requested, at any size (the report's histogram and rounding waste, which the
 * fast paths therefore do not count: the variant keeps the statistics level of the default build).
 * Each point is also a stack point with probability M/N: backtrace() takes the stack, and each of
 * its points stands for N bytes and N/s allocations of that stack.
 *
 * Re-entry: backtrace() allocates the first time it is called (it loads the unwinder), so it is
 * called once when profiling starts, and a thread inside the profiler (busy) is never sampled.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "qmalloc.h"

#include <errno.h>
#include <inttypes.h>

#if QM_VARIANT_PROFILE

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdlib.h>

__thread qm_profile_thread_t _qm_profile_thread __attribute__((tls_model("initial-exec")));

#define PROFILE_DEPTH 48     /* frames kept per stack, from the allocation upwards */
#define STACK_CAPACITY 8192  /* slots in the stack table (a power of two) */
#define STACK_FILL_MAX 6144  /* stacks kept; samples of further stacks go to the overflow entry */
#define UNDECIDED_STEP 65536 /* countdown of a thread that allocates before profiling starts */
#define JSON_TOP 1000        /* stacks in the report: the top ones by bytes and by count */
/* The size interval M: small enough that every size class of a program that allocates some
 * megabytes gets samples, large enough that the sampling call stays rare (one per 32 KiB allocated:
 * every 2,048th malloc of 16 bytes). */
#define SIZE_INTERVAL_MAX 32768
/* Allocations a size sample stands for are kept in 1/2^COUNT_SHIFT units (M/s is rarely whole). */
#define COUNT_SHIFT 10

enum { PROFILE_UNDECIDED = 0, PROFILE_ON = 1, PROFILE_OFF = 2 };
static _Atomic int profile_state;
static uint64_t sample_bytes;  /* N, the mean bytes between stacks; set before the state is ON */
static uint64_t size_interval; /* M = min(N, SIZE_INTERVAL_MAX), the mean bytes between size samples */

/* The estimated requests per row of the statistics (small classes, then large, then huge): the
 * allocations (in 1/2^COUNT_SHIFT units) and the bytes requested that the size samples stand for.
 * Relaxed atomics: a sample is rare, and threads seldom meet on one row. */
static _Atomic uint64_t size_requests[QM_STATS_ROWS];
static _Atomic uint64_t size_bytes[QM_STATS_ROWS];

/* One call stack and what its samples stand for. Invariants: depth <= PROFILE_DEPTH; hash is the
 * hash of frames[0..depth); an entry with samples == 0 is free. frames[0] is the innermost. */
typedef struct stack_entry_s {
  uint64_t hash;
  uint64_t samples;
  uint64_t bytes; /* estimated bytes allocated by this stack */
  uint64_t count; /* estimated allocations, in 1/2^COUNT_SHIFT units */
  uint32_t depth;
  uint32_t mark; /* scratch, for the copy being written out */
  void *frames[PROFILE_DEPTH];
} stack_entry_t;

/* The table: up to TABLE_ENTRIES entries, filled in order, so that only the pages of the stacks seen
 * become resident (entry 0 is the overflow entry, depth 0, for the samples of stacks that found no
 * room); and its index, STACK_CAPACITY slots of open addressing by hash, each the number of an
 * entry or 0 for none. Invariants: entries 1 .. table_used - 1 are in use, each named by exactly
 * one slot. One mapping, made when profiling starts; guarded by table_lock (sampling is rare, so
 * threads seldom meet there). */
#define TABLE_ENTRIES (STACK_FILL_MAX + 1)
#define TABLE_BYTES (TABLE_ENTRIES * sizeof(stack_entry_t) + STACK_CAPACITY * sizeof(uint32_t))
static stack_entry_t *table;
static uint32_t *table_index;
static size_t table_used = 1;
static qm_lock_t table_lock;

bool _qm_profile_enabled(void) {
  return atomic_load_explicit(&profile_state, memory_order_acquire) == PROFILE_ON;
}

/* xorshift64: cheap, and good enough to scatter sampling points. */
static uint64_t next_random(qm_profile_thread_t *thread) {
  uint64_t x = thread->random;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  thread->random = x;
  return x;
}

static int64_t next_interval(qm_profile_thread_t *thread) {
  return (int64_t)(1 + next_random(thread) % (2 * size_interval - 1));
}

static size_t size_row(size_t size) {
  if (size <= QM_SMALL_MAX)
    return qm_size_class(size);
  return size <= QM_LARGE_MAX ? QM_STATS_ROW_LARGE : QM_STATS_ROW_HUGE;
}

/* The sample points the allocation that ran the countdown out spans: one, plus one for every
 * further interval that fits in what it overshot (an allocation larger than an interval spans
 * several). Leaves the countdown at the next point. A very large allocation skips the draws of all
 * but its last intervals, counting each as the mean, M. */
static uint64_t count_points(qm_profile_thread_t *thread) {
  uint64_t points = 0;
  int64_t m = (int64_t)size_interval;
  if (thread->countdown < -64 * m) {
    int64_t skipped = -thread->countdown / m - 32;
    points += (uint64_t)skipped;
    thread->countdown += skipped * m;
  }
  while (thread->countdown < 0) {
    points++;
    thread->countdown += next_interval(thread);
  }
  return points;
}

/* A size sample of `points` points: adds what they stand for to the row of the size, M bytes and
 * M/s allocations each, and returns how many of them are stack samples too: each is, with
 * probability M/N (every one when M = N). */
static uint64_t record_size(qm_profile_thread_t *thread, size_t size, uint64_t points) {
  uint64_t s = size == 0 ? 1 : size;
  uint64_t m = size_interval;
  size_t row = size_row(size);
  atomic_fetch_add_explicit(&size_requests[row], points * ((m << COUNT_SHIFT) / s), memory_order_relaxed);
  atomic_fetch_add_explicit(&size_bytes[row], points * m, memory_order_relaxed);
  if (m == sample_bytes)
    return points;
  uint64_t stacks = 0;
  for (uint64_t i = 0; i < points && i < 1024; i++)
    stacks += next_random(thread) % sample_bytes < m;
  return points > 1024 ? stacks * points / 1024 : stacks;
}

static uint64_t hash_frames(void *const *frames, size_t depth) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < depth; i++) {
    h ^= (uint64_t)(uintptr_t)frames[i];
    h *= 0x100000001b3ull;
  }
  return h | 1; /* never 0 */
}

/* Adds `points` stack samples of an allocation of `size` bytes: N bytes and N/s allocations each. */
static void record(void *const *frames, size_t depth, size_t size, uint64_t points) {
  uint64_t bytes = points * sample_bytes;
  uint64_t count = points * ((sample_bytes << COUNT_SHIFT) / (size == 0 ? 1 : size));
  uint64_t hash = hash_frames(frames, depth);
  _qm_lock(&table_lock);
  stack_entry_t *entry = NULL;
  for (size_t i = hash & (STACK_CAPACITY - 1);; i = (i + 1) & (STACK_CAPACITY - 1)) {
    uint32_t number = table_index[i];
    if (number == 0) {
      if (table_used < TABLE_ENTRIES) {
        entry = &table[table_used];
        table_index[i] = (uint32_t)table_used++;
        entry->hash = hash;
        entry->depth = (uint32_t)depth;
        memcpy(entry->frames, frames, depth * sizeof(void *));
      }
      break;
    }
    stack_entry_t *seen = &table[number];
    if (seen->hash == hash && seen->depth == depth &&
        memcmp(seen->frames, frames, depth * sizeof(void *)) == 0) {
      entry = seen;
      break;
    }
  }
  if (entry == NULL)
    entry = &table[0]; /* the overflow entry */
  entry->samples += points;
  entry->bytes += bytes;
  entry->count += count;
  _qm_unlock(&table_lock);
}

void _qm_profile_sample(size_t size) {
  qm_profile_thread_t *thread = &_qm_profile_thread;
  int state = atomic_load_explicit(&profile_state, memory_order_acquire);
  if (state != PROFILE_ON) {
    thread->countdown = state == PROFILE_OFF ? INT64_MAX : UNDECIDED_STEP;
    return;
  }
  if (thread->random == 0) {
    /* The thread's first countdown: seed it, and count from here (sampling the first allocation of
     * every thread would favour start-up code). */
    thread->random = ((uint64_t)(uintptr_t)thread * 0x9e3779b97f4a7c15ull) ^ _qm_os_now_ns();
    if (thread->random == 0)
      thread->random = 1;
    thread->countdown = next_interval(thread);
    return;
  }
  uint64_t points = count_points(thread);
  if (thread->busy)
    return;
  uint64_t stacks = record_size(thread, size, points);
  if (stacks == 0)
    return;
  thread->busy = 1;
  void *frames[PROFILE_DEPTH];
  int depth = backtrace(frames, PROFILE_DEPTH);
  if (depth > 0)
    record(frames, (size_t)depth, size, stacks);
  thread->busy = 0;
}

void *_qm_malloc_sampled(size_t size, bool zero) {
  _qm_profile_sample(size);
  return _qm_malloc_generic(size, _qm_tls_heap, zero);
}

/* A forked child must not find the table locked by a thread that does not exist in it. */
static void fork_prepare(void) { _qm_lock(&table_lock); }
static void fork_release(void) { _qm_unlock(&table_lock); }

__attribute__((constructor)) static void profile_start(void) {
  qm_ensure_process_init();
  size_t interval = _qm_options.profile_sample;
  if (interval != 0)
    table = _qm_os_map(qm_align_up(TABLE_BYTES, _qm_os_page_size()));
  if (table != NULL)
    table_index = (uint32_t *)(table + TABLE_ENTRIES);
  if (interval == 0 || table == NULL) {
    atomic_store_explicit(&profile_state, PROFILE_OFF, memory_order_release);
    return;
  }
  sample_bytes = interval;
  /* Only the report draws the size estimates: without one, M = N, and every size sample is also a
   * stack sample. */
  size_interval = interval;
  if (_qm_options.report[0] != '\0' && interval > SIZE_INTERVAL_MAX)
    size_interval = SIZE_INTERVAL_MAX;
  pthread_atfork(fork_prepare, fork_release, fork_release);
  /* backtrace() loads the unwinder, with malloc, on its first call: get that done now. */
  qm_profile_thread_t *thread = &_qm_profile_thread;
  thread->busy = 1;
  void *frames[4];
  (void)backtrace(frames, 4);
  thread->busy = 0;
  atomic_store_explicit(&profile_state, PROFILE_ON, memory_order_release);
}

/* ---------------------------------------------------------------------------------------------
 * Output: a copy of the table, sorted, with frames named by dladdr through a cache (dladdr scans
 * an object's symbols, and the same addresses come back in stack after stack).
 * ------------------------------------------------------------------------------------------- */

#define NAME_SLOTS 65536            /* cached addresses (a power of two) */
#define NAME_TEXT ((size_t)4 << 20) /* bytes of names */

typedef struct name_slot_s {
  uintptr_t address; /* 0: empty */
  uint32_t text;     /* offset of the name in names_t.text */
  uint32_t ours;     /* the frame lies in this library */
} name_slot_t;

/* The copy being written out and the name cache, in one scratch mapping. */
typedef struct output_s {
  stack_entry_t *entries; /* the used entries, copied */
  size_t count;
  name_slot_t *slots;
  size_t slots_used;
  char *text;
  size_t text_used;
  void *self_base; /* where this library is loaded */
  size_t mapping_size;
  char fallback[128]; /* a name that did not fit the cache */
} output_t;

static bool output_open(output_t *out) {
  memset(out, 0, sizeof *out);
  size_t entries = TABLE_ENTRIES * sizeof(stack_entry_t);
  size_t slots = NAME_SLOTS * sizeof(name_slot_t);
  out->mapping_size = qm_align_up(entries + slots + NAME_TEXT, _qm_os_page_size());
  uint8_t *base = _qm_os_map(out->mapping_size);
  if (base == NULL)
    return false;
  out->entries = (stack_entry_t *)base;
  out->slots = (name_slot_t *)(base + entries);
  out->text = (char *)(base + entries + slots);
  Dl_info info;
  if (dladdr((void *)(uintptr_t)&_qm_profile_sample, &info) != 0)
    out->self_base = info.dli_fbase;
  _qm_lock(&table_lock);
  for (size_t i = 0; i < table_used; i++)
    if (table[i].samples != 0)
      out->entries[out->count++] = table[i];
  _qm_unlock(&table_lock);
  return true;
}

static void output_close(output_t *out) { _qm_os_unmap(out->entries, out->mapping_size); }

static int by_bytes(const void *a, const void *b) {
  const stack_entry_t *x = a, *y = b;
  return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}
static int by_count(const void *a, const void *b) {
  const stack_entry_t *x = a, *y = b;
  return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

/* A frame's name for folded stacks: the symbol, else object+0xoffset, else the address; with no
 * ';' or blank in it (those separate frames and the count). */
static void format_name(uintptr_t address, char *buf, size_t size, bool *ours, void *self_base) {
  Dl_info info;
  *ours = false;
  if (dladdr((void *)address, &info) == 0 || info.dli_fname == NULL) {
    snprintf(buf, size, "0x%lx", (unsigned long)address);
    return;
  }
  *ours = info.dli_fbase == self_base;
  if (info.dli_sname != NULL) {
    snprintf(buf, size, "%s", info.dli_sname);
  } else {
    const char *file = strrchr(info.dli_fname, '/');
    file = file != NULL ? file + 1 : info.dli_fname;
    snprintf(buf, size, "%s+0x%lx", file[0] ? file : "?",
             (unsigned long)(address - (uintptr_t)info.dli_fbase));
  }
  for (char *c = buf; *c; c++)
    if (*c == ';' || *c == ' ' || *c == '\t' || *c == '\n')
      *c = '_';
}

/* The name of the code at a return address (looked up at address - 1: the call itself). */
static const char *frame_name(output_t *out, void *frame, bool *ours) {
  uintptr_t address = (uintptr_t)frame - 1;
  size_t i = (address >> 4) * 0x9e3779b97f4a7c15ull >> 48 & (NAME_SLOTS - 1);
  for (;; i = (i + 1) & (NAME_SLOTS - 1)) {
    name_slot_t *slot = &out->slots[i];
    if (slot->address == address) {
      *ours = slot->ours;
      return out->text + slot->text;
    }
    if (slot->address == 0)
      break;
  }
  char name[512];
  format_name(address, name, sizeof name, ours, out->self_base);
  size_t length = strlen(name) + 1;
  if (out->slots_used >= NAME_SLOTS / 2 || out->text_used + length > NAME_TEXT) {
    memcpy(out->fallback, name, length < sizeof out->fallback ? length : sizeof out->fallback);
    out->fallback[sizeof out->fallback - 1] = '\0';
    return out->fallback;
  }
  name_slot_t *slot = &out->slots[i];
  slot->address = address;
  slot->ours = *ours;
  slot->text = (uint32_t)out->text_used;
  memcpy(out->text + out->text_used, name, length);
  out->text_used += length;
  out->slots_used++;
  return out->text + slot->text;
}

/* Writes an entry's stack as folded frames, outermost first, leaving out the profiler's and the
 * allocator's own frames at the inner end. */
static void write_folded(output_t *out, FILE *file, const stack_entry_t *entry) {
  if (entry->depth == 0) {
    fputs("[other stacks]", file);
    return;
  }
  size_t inner = 0;
  bool ours = true;
  while (inner < entry->depth) {
    (void)frame_name(out, entry->frames[inner], &ours);
    if (!ours)
      break;
    inner++;
  }
  if (inner == entry->depth) {
    fputs("[qmalloc]", file);
    return;
  }
  for (size_t i = entry->depth; i-- > inner;) {
    fputs(frame_name(out, entry->frames[i], &ours), file);
    if (i > inner)
      fputc(';', file);
  }
}

/* Stacks that print the same become one entry: the folded format has one line per stack, and a site's
 * bytes must be ranked together. Stacks that differ only in the allocator's own frames at the inner
 * end (the fast or the slow path took the sample) or in return addresses within one function (a
 * call the compiler duplicated) print the same. If the lines cannot be made, the entries stay as
 * they are: still right, only split. */
typedef struct folded_line_s {
  char *text;
  size_t entry;
} folded_line_t;

static int by_text(const void *a, const void *b) {
  return strcmp(((const folded_line_t *)a)->text, ((const folded_line_t *)b)->text);
}

static void merge_same_stacks(output_t *out) {
  folded_line_t *lines = malloc(out->count * sizeof *lines + 1);
  if (lines == NULL)
    return;
  size_t made = 0;
  for (; made < out->count; made++) {
    char *text = NULL;
    size_t length = 0;
    FILE *memory = open_memstream(&text, &length);
    if (memory == NULL)
      break;
    write_folded(out, memory, &out->entries[made]);
    if (fclose(memory) != 0 || text == NULL) {
      free(text);
      break;
    }
    lines[made] = (folded_line_t){text, made};
  }
  if (made == out->count) {
    qsort(lines, made, sizeof *lines, by_text);
    for (size_t first = 0, i = 1; i < made; i++) {
      if (strcmp(lines[i].text, lines[first].text) != 0) {
        first = i;
        continue;
      }
      stack_entry_t *into = &out->entries[lines[first].entry], *from = &out->entries[lines[i].entry];
      into->bytes += from->bytes;
      into->count += from->count;
      into->samples += from->samples;
      from->samples = 0;
    }
    size_t kept = 0;
    for (size_t i = 0; i < out->count; i++)
      if (out->entries[i].samples != 0)
        out->entries[kept++] = out->entries[i];
    out->count = kept;
  }
  for (size_t i = 0; i < made; i++)
    free(lines[i].text);
  free(lines);
}

int qm_profile_dump(FILE *file) {
  if (file == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (!_qm_profile_enabled())
    return fflush(file) != 0 || ferror(file) ? -1 : 0;
  qm_profile_thread_t *thread = &_qm_profile_thread;
  thread->busy++; /* stdio and qsort may allocate: not samples */
  output_t out;
  int result = -1;
  if (output_open(&out)) {
    merge_same_stacks(&out);
    qsort(out.entries, out.count, sizeof(stack_entry_t), by_bytes);
    for (size_t i = 0; i < out.count; i++) {
      write_folded(&out, file, &out.entries[i]);
      fprintf(file, " %" PRIu64 "\n", out.entries[i].bytes);
    }
    output_close(&out);
    result = fflush(file) != 0 || ferror(file) ? -1 : 0;
  } else {
    errno = ENOMEM;
  }
  thread->busy--;
  return result;
}

/* The estimated requests per statistics row, as "sizes": [[requests, bytes requested], ...]. */
static void write_sizes(FILE *file) {
  fprintf(file, "\"sizes\": [");
  for (size_t r = 0; r < QM_STATS_ROWS; r++) {
    uint64_t requests = atomic_load_explicit(&size_requests[r], memory_order_relaxed);
    uint64_t bytes = atomic_load_explicit(&size_bytes[r], memory_order_relaxed);
    fprintf(file, "%s[%" PRIu64 ",%" PRIu64 "]", r ? "," : "",
            (requests + ((uint64_t)1 << (COUNT_SHIFT - 1))) >> COUNT_SHIFT, bytes);
  }
  fprintf(file, "], ");
}

void _qm_profile_json(FILE *file) {
  qm_profile_thread_t *thread = &_qm_profile_thread;
  thread->busy++;
  bool enabled = _qm_profile_enabled();
  fprintf(file, "{\"enabled\": %s, \"sample_bytes\": %" PRIu64 ", \"size_sample_bytes\": %" PRIu64 ", ",
          enabled ? "true" : "false", enabled ? sample_bytes : 0, enabled ? size_interval : 0);
  write_sizes(file);
  output_t out;
  if (!enabled || !output_open(&out)) {
    fprintf(file, "\"samples\": 0, \"stacks\": []}");
    thread->busy--;
    return;
  }
  /* The top JSON_TOP stacks by count and by bytes; the page ranks them itself. */
  merge_same_stacks(&out);
  uint64_t samples = 0;
  qsort(out.entries, out.count, sizeof(stack_entry_t), by_count);
  for (size_t i = 0; i < out.count; i++) {
    out.entries[i].mark = i < JSON_TOP;
    samples += out.entries[i].samples;
  }
  qsort(out.entries, out.count, sizeof(stack_entry_t), by_bytes);
  fprintf(file, "\"samples\": %" PRIu64 ", \"stacks\": [", samples);
  const char *separator = "\n";
  for (size_t i = 0; i < out.count; i++) {
    const stack_entry_t *entry = &out.entries[i];
    if (i >= JSON_TOP && !entry->mark)
      continue;
    fprintf(file, "%s[", separator);
    char *line = NULL;
    size_t length = 0;
    FILE *memory = open_memstream(&line, &length);
    if (memory != NULL) {
      write_folded(&out, memory, entry);
      fclose(memory);
    }
    _qm_json_string(file, line != NULL ? line : "?");
    free(line);
    fprintf(file, ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", entry->bytes,
            (entry->count + ((uint64_t)1 << (COUNT_SHIFT - 1))) >> COUNT_SHIFT, entry->samples);
    separator = ",\n";
  }
  fprintf(file, "]}");
  output_close(&out);
  thread->busy--;
}

#else /* !QM_VARIANT_PROFILE */

int qm_profile_dump(FILE *file) {
  (void)file;
  errno = ENOTSUP;
  return -1;
}

#endif
