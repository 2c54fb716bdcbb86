/* stats.c - statistics: the counters the layers keep, the walk that turns the heaps into figures
 * when someone asks, and the three ways out: qm_stats_get (a structure), the table printed by
 * malloc_stats and at exit, and qm_stats_json.
 *
 * What is counted, and where (QM_STATS, types.h):
 *   level 1  relaxed atomic counters on slow paths only: large and huge requests, huge bytes in
 *            use, bytes purged, system calls, the mapped peak. Blocks and bytes in use, pages and
 *            committed bytes are not counted at all: qm_stats_get walks the spans of every
 *            segment of every heap (and of the abandoned segments) and reads each page's `used`.
 *            So the fast paths are those of level 0, and a figure costs only when it is asked for.
 *   level 2  adds, on the fast paths, per-class requests and bytes requested, and each heap's
 *            bytes in use (heap->stats, written by the owner only); those feed the peak.
 *
 * The peak at level 2. A process-wide figure updated on every malloc and free would need an
 * atomic read-modify-write on the fast paths, so each heap keeps its own in_use and the highest
 * value it reached since it last *published* (added its in_use to a process total, one atomic
 * add, on its slow paths and around every huge allocation). At a publication the heap's own
 * high point, with every other heap at its published value, is a candidate for the process peak.
 * The peak is therefore exact when one thread allocates, and otherwise misses at most what other
 * threads took from their current pages since their last slow path.
 *
 * Reading other threads' heaps: under the heap-pool lock (no heap comes or goes) and the unmap
 * hold of os.c (no segment is unmapped while it is read); the owners keep allocating, so the
 * figures of busy threads are snapshots, and every loop is bounded whatever it reads.
 */
#include "internal.h"
#include "qmalloc.h"

#include <inttypes.h>

_Static_assert(QM_STATS_SMALL_CLASSES == QM_CLASS_COUNT, "the public row count follows the size classes");

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

#if QM_STATS >= 1

qm_stat_counters_t _qm_stat;

static uint64_t stat_get(_Atomic uint64_t *counter) {
  return atomic_load_explicit(counter, memory_order_relaxed);
}

static void raise_to(_Atomic uint64_t *peak, uint64_t candidate) {
  uint64_t seen = atomic_load_explicit(peak, memory_order_relaxed);
  while (candidate > seen && !atomic_compare_exchange_weak_explicit(
                                 peak, &seen, candidate, memory_order_relaxed, memory_order_relaxed)) {
  }
}

void _qm_stats_note_mapped(void) {
  raise_to(&_qm_stat.mapped_peak,
           qm_counter_get(&_qm_counters.segment_bytes) + qm_counter_get(&_qm_counters.huge_bytes));
}

void _qm_stats_large_request(size_t requested) {
  QM_STAT_ADD(large_requests, 1);
  QM_STAT_ADD(large_bytes_requested, requested);
}

#if QM_STATS >= 2
void _qm_stats_publish(qm_heap_t *heap) {
  int64_t in_use = heap->stats.in_use;
  int64_t delta = in_use - heap->stats.published;
  int64_t total = atomic_fetch_add_explicit(&_qm_stat.in_use_published, delta, memory_order_relaxed) + delta;
  int64_t candidate = total - in_use + heap->stats.peak_local;
  if (candidate > 0)
    raise_to(&_qm_stat.peak_in_use, (uint64_t)candidate);
  QM_OWNER_STORE(heap->stats.published, in_use);
  QM_OWNER_STORE(heap->stats.peak_local, in_use);
}

void _qm_stats_heap_retire(qm_heap_t *heap) {
  /* Its live blocks stay in the published total; whoever frees them later subtracts them. */
  _qm_stats_publish(heap);
  for (size_t c = 0; c < QM_CLASS_COUNT; c++) {
    atomic_fetch_add_explicit(&_qm_stat.retired_requests[c], heap->stats.requests[c], memory_order_relaxed);
    atomic_fetch_add_explicit(&_qm_stat.retired_bytes_requested[c], heap->stats.bytes_requested[c],
                              memory_order_relaxed);
  }
}

/* Huge blocks change the process total directly. The calling thread's heap publishes first, so
 * that its high point since the last publication is weighed with the huge total it saw. */
static void huge_in_use_change(int64_t delta) {
  qm_heap_t *heap = _qm_tls_heap;
  if (heap != &_qm_empty_heap)
    _qm_stats_publish(heap);
  int64_t total = atomic_fetch_add_explicit(&_qm_stat.in_use_published, delta, memory_order_relaxed) + delta;
  if (total > 0)
    raise_to(&_qm_stat.peak_in_use, (uint64_t)total);
}
#else
static void huge_in_use_change(int64_t delta) { (void)delta; }
#endif

void _qm_stats_huge_alloc(size_t requested, size_t usable) {
  QM_STAT_ADD(huge_requests, 1);
  QM_STAT_ADD(huge_bytes_requested, requested);
  QM_STAT_ADD(huge_in_use, usable);
  huge_in_use_change((int64_t)usable);
  _qm_stats_note_mapped();
}

void _qm_stats_huge_free(size_t usable) {
  atomic_fetch_sub_explicit(&_qm_stat.huge_in_use, usable, memory_order_relaxed);
  huge_in_use_change(-(int64_t)usable);
}

void _qm_stats_huge_resize(size_t old_usable, size_t new_usable) {
  QM_STAT_ADD(huge_in_use, new_usable - old_usable); /* wraps around correctly when it shrinks */
  huge_in_use_change((int64_t)new_usable - (int64_t)old_usable);
  _qm_stats_note_mapped();
}

/* ---------------------------------------------------------------------------------------------
 * The walk
 * ------------------------------------------------------------------------------------------- */

typedef struct walk_s {
  qm_stats_t *out;
  size_t segments;           /* normal segments seen (heaps' and abandoned) */
  size_t segments_abandoned; /* of which abandoned */
  size_t segment_limit;      /* bound on one heap's segment list, against lists changing under us */
#if QM_STATS >= 2
  int64_t excursion; /* the largest rise of one heap's in_use above what it published */
#endif
} walk_t;

/* Adds the spans of one normal segment (snapshots: another thread may be changing them). */
static void walk_segment(qm_segment_t *segment, walk_t *walk) {
  qm_stats_t *out = walk->out;
  walk->segments++;
  size_t i = QM_SEGMENT_FIRST_SLICE, count;
  qm_page_t *span;
  while ((span = qm_segment_next_span_snapshot(segment, &i, &count)) != NULL) {
    size_t bytes = count << QM_SLICE_SHIFT;
    switch (LOAD(span->kind)) {
    case QM_SPAN_SMALL: {
      size_t cls = LOAD(span->size_class);
      if (cls < QM_CLASS_COUNT) {
        qm_class_stats_t *row = &out->rows[cls];
        row->pages++;
        row->committed += bytes;
        row->blocks_in_use += LOAD(span->used);
      }
      break;
    }
    case QM_SPAN_LARGE: {
      qm_class_stats_t *row = &out->rows[QM_STATS_ROW_LARGE];
      row->pages++;
      row->committed += bytes;
      if (LOAD(span->used) != 0) {
        row->blocks_in_use++;
        row->bytes_in_use += LOAD(span->block_size);
      }
      break;
    }
    case QM_SPAN_FREE: {
      /* Only the span's first resident_slices may be resident (the rest was never touched, or was
       * purged); memory purged with MADV_FREE counts as clean. */
      size_t dirty = LOAD(span->is_zero) ? 0 : (size_t)LOAD(span->resident_slices) << QM_SLICE_SHIFT;
      if (dirty > bytes)
        dirty = bytes;
      out->free_dirty += dirty;
      out->free_clean += bytes - dirty;
      break;
    }
    default:
      break;
    }
  }
}

static void walk_abandoned(qm_segment_t *segment, void *arg) {
  walk_t *walk = arg;
  walk->segments_abandoned++;
  walk_segment(segment, walk);
}

static void walk_heap(qm_heap_t *heap, void *arg) {
  walk_t *walk = arg;
  _qm_os_hold_mappings();
  size_t limit = walk->segment_limit;
  for (qm_segment_t *segment = LOAD(heap->segments); segment != NULL && limit-- > 0;
       segment = LOAD(segment->next))
    walk_segment(segment, walk);
  _qm_os_release_mappings();
#if QM_STATS >= 2
  for (size_t c = 0; c < QM_CLASS_COUNT; c++) {
    walk->out->rows[c].requests += (size_t)LOAD(heap->stats.requests[c]);
    walk->out->rows[c].bytes_requested += (size_t)LOAD(heap->stats.bytes_requested[c]);
  }
  int64_t excursion = LOAD(heap->stats.peak_local) - LOAD(heap->stats.published);
  if (excursion > walk->excursion)
    walk->excursion = excursion;
#endif
}

static void fill_blocks(qm_stats_t *out) {
  walk_t walk = {.out = out, .segment_limit = qm_counter_get(&_qm_counters.segments_mapped) + 1024};
#if QM_STATS >= 2
  if (_qm_tls_heap != &_qm_empty_heap)
    _qm_stats_publish(_qm_tls_heap);
#endif
  _qm_segment_visit_abandoned(walk_abandoned, &walk);
  _qm_heaps_visit(walk_heap, &walk);

  for (size_t c = 0; c < QM_CLASS_COUNT; c++) {
    qm_class_stats_t *row = &out->rows[c];
    row->bytes_in_use = row->blocks_in_use * row->block_size;
#if QM_STATS >= 2
    row->requests += (size_t)stat_get(&_qm_stat.retired_requests[c]);
    row->bytes_requested += (size_t)stat_get(&_qm_stat.retired_bytes_requested[c]);
#endif
  }
  qm_class_stats_t *large = &out->rows[QM_STATS_ROW_LARGE];
  large->requests = (size_t)stat_get(&_qm_stat.large_requests);
  large->bytes_requested = (size_t)stat_get(&_qm_stat.large_bytes_requested);
  qm_class_stats_t *huge = &out->rows[QM_STATS_ROW_HUGE];
  huge->requests = (size_t)stat_get(&_qm_stat.huge_requests);
  huge->bytes_requested = (size_t)stat_get(&_qm_stat.huge_bytes_requested);
  huge->blocks_in_use = huge->pages = qm_counter_get(&_qm_counters.huge_blocks);
  huge->bytes_in_use = (size_t)stat_get(&_qm_stat.huge_in_use);
  huge->committed = qm_counter_get(&_qm_counters.huge_bytes);

  for (size_t r = 0; r < QM_STATS_ROWS; r++) {
    const qm_class_stats_t *row = &out->rows[r];
    out->requests += row->requests;
    out->bytes_requested += row->bytes_requested;
    out->blocks_in_use += row->blocks_in_use;
    out->bytes_in_use += row->bytes_in_use;
    out->committed += row->committed;
  }
  if (out->committed > 0 && out->bytes_in_use <= out->committed)
    out->fragmentation = 1.0 - (double)out->bytes_in_use / (double)out->committed;
#if QM_STATS >= 2
  int64_t total = atomic_load_explicit(&_qm_stat.in_use_published, memory_order_relaxed);
  if (walk.excursion > 0 && total + walk.excursion > 0)
    raise_to(&_qm_stat.peak_in_use, (uint64_t)(total + walk.excursion));
  raise_to(&_qm_stat.peak_in_use, out->bytes_in_use);
  out->peak_bytes_in_use = (size_t)stat_get(&_qm_stat.peak_in_use);
#endif
  out->segments_abandoned = walk.segments_abandoned;
  size_t mapped_segments = qm_counter_get(&_qm_counters.segments_mapped);
  out->segments_cached = mapped_segments > walk.segments ? mapped_segments - walk.segments : 0;
  out->metadata = walk.segments * qm_align_up(sizeof(qm_segment_t), _qm_os_page_size());
  out->resident_estimate = out->committed + out->free_dirty + out->metadata;
  out->bytes_purged = (size_t)stat_get(&_qm_stat.bytes_purged);
  out->mremap_calls = (size_t)stat_get(&_qm_stat.remap_calls);
  raise_to(&_qm_stat.mapped_peak,
           qm_counter_get(&_qm_counters.segment_bytes) + qm_counter_get(&_qm_counters.huge_bytes));
  out->peak_mapped = (size_t)stat_get(&_qm_stat.mapped_peak);
}

#endif /* QM_STATS >= 1 */

void qm_stats_get(qm_stats_t *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  out->level = QM_STATS;
  out->row_count = QM_STATS_ROWS;
  for (size_t c = 0; c < QM_CLASS_COUNT; c++)
    out->rows[c].block_size = qm_class_size(c);
#if QM_STATS >= 1
  fill_blocks(out);
  out->madvise_calls = (size_t)stat_get(&_qm_stat.advise_calls);
#endif
  out->mapped = qm_counter_get(&_qm_counters.segment_bytes) + qm_counter_get(&_qm_counters.huge_bytes);
  if (out->peak_mapped < out->mapped)
    out->peak_mapped = out->mapped;
  out->process_resident = _qm_os_resident_bytes(NULL);
  out->mmap_calls = qm_counter_get(&_qm_counters.os_map_calls);
  out->munmap_calls = qm_counter_get(&_qm_counters.os_unmap_calls);
  out->madvise_calls += qm_counter_get(&_qm_counters.os_purge_calls);
  out->segments = qm_counter_get(&_qm_counters.segments_mapped);
  out->segments_peak = qm_counter_get(&_qm_counters.segments_peak);
  out->huge_blocks = qm_counter_get(&_qm_counters.huge_blocks);
  out->heaps = qm_counter_get(&_qm_counters.heaps_active);
  _qm_os_arena_info(&out->arena_reserved, &out->arena_used);
}

/* ---------------------------------------------------------------------------------------------
 * The table. Lines are formatted into a buffer on the stack and written out when it fills, with
 * write(2) for malloc_stats, so that printing never allocates.
 * ------------------------------------------------------------------------------------------- */

typedef struct sink_s {
  FILE *file; /* NULL: stderr with write(2) */
  size_t used;
  char buffer[2048];
} sink_t;

static void sink_flush(sink_t *sink) {
  if (sink->file != NULL)
    fwrite(sink->buffer, 1, sink->used, sink->file);
  else
    _qm_os_write_stderr(sink->buffer, sink->used);
  sink->used = 0;
}

static void sink_line(sink_t *sink, const char *fmt, ...) qm_printf_like(2, 3);
static void sink_line(sink_t *sink, const char *fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, args);
  va_end(args);
  size_t length = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
  line[length++] = '\n';
  if (sink->used + length > sizeof sink->buffer)
    sink_flush(sink);
  memcpy(sink->buffer + sink->used, line, length);
  sink->used += length;
}

/* "812 B", "109.3 KiB", "3.4 GiB": one decimal, computed in integers (no floating-point printf,
 * which may allocate). */
typedef struct human_s {
  char text[24];
} human_t;
static human_t human(uint64_t bytes) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  human_t h;
  if (bytes < 1024) {
    snprintf(h.text, sizeof h.text, "%" PRIu64 " B", bytes);
    return h;
  }
  unsigned u = 0;
  uint64_t unit = 1024;
  while (u + 1 < sizeof units / sizeof units[0] && bytes / unit >= 1024) {
    unit <<= 10;
    u++;
  }
  /* Cast to the widths the values have (the whole part is below 2^14, the tenths one digit), so
   * that gcc can see the text fits (-Wformat-truncation). */
  snprintf(h.text, sizeof h.text, "%u.%u %s", (unsigned)(bytes / unit),
           (unsigned)((bytes % unit) * 10 / unit) % 10u, units[u]);
  return h;
}

/* x / total in tenths of a percent, as "12.3%". */
typedef struct percent_s {
  char text[16];
} percent_t;
static percent_t percent(double fraction) {
  percent_t p;
  unsigned tenths = (unsigned)(fraction * 1000.0 + 0.5);
  snprintf(p.text, sizeof p.text, "%u.%u%%", tenths / 10, tenths % 10);
  return p;
}

static void print_row(sink_t *sink, const char *label, const qm_class_stats_t *row, bool requests_counted) {
  char requests[24] = "-", requested[24] = "-";
  if (requests_counted) {
    snprintf(requests, sizeof requests, "%zu", row->requests);
    snprintf(requested, sizeof requested, "%s", human(row->bytes_requested).text);
  }
  sink_line(sink, "%9s %12zu %12s %8zu %12s %12s %12s", label, row->blocks_in_use,
            human(row->bytes_in_use).text, row->pages, human(row->committed).text, requests, requested);
}

static void print_table(sink_t *sink) {
  qm_stats_t stats;
  qm_stats_get(&stats);
  if (stats.level == 0) {
    sink_line(sink, "qmalloc %s statistics: not built in (QMALLOC_STATS=0); process figures only",
              QMALLOC_VERSION_STRING);
  } else {
    sink_line(sink, "qmalloc %s statistics (level %d%s)", QMALLOC_VERSION_STRING, stats.level,
              stats.level < 2 ? "; small-block requests are counted with QMALLOC_STATS=2" : "");
    sink_line(sink, "%9s %12s %12s %8s %12s %12s %12s", "class", "blocks", "in use", "pages", "committed",
              "requests", "requested");
    for (size_t r = 0; r < QM_STATS_ROWS; r++) {
      const qm_class_stats_t *row = &stats.rows[r];
      if (row->pages == 0 && row->blocks_in_use == 0 && row->requests == 0)
        continue;
      char label[16];
      if (r == QM_STATS_ROW_LARGE)
        snprintf(label, sizeof label, "large");
      else if (r == QM_STATS_ROW_HUGE)
        snprintf(label, sizeof label, "huge");
      else
        snprintf(label, sizeof label, "%zu", row->block_size);
      print_row(sink, label, row, stats.level >= 2 || r >= QM_STATS_ROW_LARGE);
    }
    qm_class_stats_t total = {0};
    for (size_t r = 0; r < QM_STATS_ROWS; r++)
      total.pages += stats.rows[r].pages;
    total.blocks_in_use = stats.blocks_in_use;
    total.bytes_in_use = stats.bytes_in_use;
    total.committed = stats.committed;
    total.requests = stats.requests;
    total.bytes_requested = stats.bytes_requested;
    print_row(sink, "total", &total, stats.level >= 2);
    char peak[40] = "";
    if (stats.level >= 2)
      snprintf(peak, sizeof peak, " (peak %s)", human(stats.peak_bytes_in_use).text);
    sink_line(sink, "in use: %s in %zu blocks%s; committed: %s; fragmentation: %s",
              human(stats.bytes_in_use).text, stats.blocks_in_use, peak, human(stats.committed).text,
              percent(stats.fragmentation).text);
    sink_line(sink, "free spans: %s dirty, %s clean; metadata: %s; resident estimate: %s; purged so far: %s",
              human(stats.free_dirty).text, human(stats.free_clean).text, human(stats.metadata).text,
              human(stats.resident_estimate).text, human(stats.bytes_purged).text);
  }
  sink_line(sink,
            "mapped: %s (peak %s); segments: %zu (peak %zu, abandoned %zu, cached %zu); huge blocks: %zu",
            human(stats.mapped).text, human(stats.peak_mapped).text, stats.segments, stats.segments_peak,
            stats.segments_abandoned, stats.segments_cached, stats.huge_blocks);
  if (stats.arena_reserved != 0)
    sink_line(sink, "arena: %s reserved, %s of it in segments", human(stats.arena_reserved).text,
              human(stats.arena_used).text);
  sink_line(
      sink,
      "system calls: mmap %zu, munmap %zu, madvise %zu, mremap %zu; thread heaps: %zu; process resident: %s",
      stats.mmap_calls, stats.munmap_calls, stats.madvise_calls, stats.mremap_calls, stats.heaps,
      human(stats.process_resident).text);
}

void _qm_stats_print_stderr(void) {
  sink_t sink;
  sink.file = NULL;
  sink.used = 0;
  print_table(&sink);
  sink_flush(&sink);
}

void qm_stats_print(FILE *out) {
  sink_t sink;
  sink.file = out != NULL ? out : stderr;
  sink.used = 0;
  print_table(&sink);
  sink_flush(&sink);
}

/* ---------------------------------------------------------------------------------------------
 * JSON. Figures a build does not have are null. Numbers are bytes unless named otherwise.
 * ------------------------------------------------------------------------------------------- */

static void json_number(FILE *out, const char *indent, const char *key, size_t value, bool present,
                        const char *after) {
  if (present)
    fprintf(out, "%s\"%s\": %zu%s", indent, key, value, after);
  else
    fprintf(out, "%s\"%s\": null%s", indent, key, after);
}

int qm_stats_json(FILE *out) {
  if (out == NULL)
    return -1;
  qm_stats_t s;
  qm_stats_get(&s);
  bool level1 = s.level >= 1, level2 = s.level >= 2;
  unsigned ppm = (unsigned)(s.fragmentation * 1e6 + 0.5);
  fprintf(out, "{\n  \"version\": \"%s\",\n  \"level\": %d,\n  \"totals\": {\n", QMALLOC_VERSION_STRING,
          s.level);
  const char *in = "    ";
  json_number(out, in, "requests", s.requests, level2, ",\n");
  json_number(out, in, "bytes_requested", s.bytes_requested, level2, ",\n");
  json_number(out, in, "blocks_in_use", s.blocks_in_use, level1, ",\n");
  json_number(out, in, "bytes_in_use", s.bytes_in_use, level1, ",\n");
  json_number(out, in, "peak_bytes_in_use", s.peak_bytes_in_use, level2, ",\n");
  json_number(out, in, "committed", s.committed, level1, ",\n");
  if (level1)
    fprintf(out, "%s\"fragmentation\": %u.%06u\n", in, ppm / 1000000, ppm % 1000000);
  else
    fprintf(out, "%s\"fragmentation\": null\n", in);
  fprintf(out, "  },\n  \"process\": {\n");
  json_number(out, in, "mapped", s.mapped, true, ",\n");
  json_number(out, in, "peak_mapped", s.peak_mapped, true, ",\n");
  json_number(out, in, "metadata", s.metadata, level1, ",\n");
  json_number(out, in, "free_dirty", s.free_dirty, level1, ",\n");
  json_number(out, in, "free_clean", s.free_clean, level1, ",\n");
  json_number(out, in, "resident_estimate", s.resident_estimate, level1, ",\n");
  json_number(out, in, "process_resident", s.process_resident, true, ",\n");
  json_number(out, in, "bytes_purged", s.bytes_purged, level1, ",\n");
  fprintf(out, "%s\"os_calls\": {\"mmap\": %zu, \"munmap\": %zu, \"madvise\": %zu, \"mremap\": ", in,
          s.mmap_calls, s.munmap_calls, s.madvise_calls);
  if (level1)
    fprintf(out, "%zu},\n", s.mremap_calls);
  else
    fprintf(out, "null},\n");
  json_number(out, in, "segments", s.segments, true, ",\n");
  json_number(out, in, "segments_peak", s.segments_peak, true, ",\n");
  json_number(out, in, "segments_abandoned", s.segments_abandoned, level1, ",\n");
  json_number(out, in, "segments_cached", s.segments_cached, level1, ",\n");
  json_number(out, in, "huge_blocks", s.huge_blocks, true, ",\n");
  json_number(out, in, "heaps", s.heaps, true, ",\n");
  json_number(out, in, "arena_reserved", s.arena_reserved, true, ",\n");
  json_number(out, in, "arena_used", s.arena_used, true, "\n");
  fprintf(out, "  },\n  \"classes\": [\n");
  for (size_t r = 0; r < QM_STATS_ROWS; r++) {
    const qm_class_stats_t *row = &s.rows[r];
    bool small = r < QM_STATS_ROW_LARGE;
    if (r == QM_STATS_ROW_LARGE)
      fprintf(out, "    {\"class\": \"large\", \"block_size\": null, ");
    else if (r == QM_STATS_ROW_HUGE)
      fprintf(out, "    {\"class\": \"huge\", \"block_size\": null, ");
    else
      fprintf(out, "    {\"class\": %zu, \"block_size\": %zu, ", r, row->block_size);
    bool requests = level2 || (level1 && !small);
    json_number(out, "", "requests", row->requests, requests, ", ");
    json_number(out, "", "bytes_requested", row->bytes_requested, requests, ", ");
    json_number(out, "", "blocks_in_use", row->blocks_in_use, level1, ", ");
    json_number(out, "", "bytes_in_use", row->bytes_in_use, level1, ", ");
    json_number(out, "", "pages", row->pages, level1, ", ");
    json_number(out, "", "committed", row->committed, level1, "");
    fprintf(out, "}%s\n", r + 1 < QM_STATS_ROWS ? "," : "");
  }
  fprintf(out, "  ],\n  \"options\": {\n");
  _qm_options_json(out, "    ");
  fprintf(out, "  }\n}\n");
  return fflush(out) != 0 || ferror(out) ? -1 : 0;
}
