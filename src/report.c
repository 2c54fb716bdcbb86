/* report.c - the HTML memory report of libqmalloc-profile.so (QMALLOC_REPORT=path, or
 * `qmalloc-run --report path`): a sampler thread that records the memory figures over time and a
 * map of the heap at its peak, and the page written at exit with all of it, the heap profile of
 * profile.c, the statistics and the options.
 *
 * The sampler is a background thread, started by a constructor only when a report is asked for, so
 * a program that does not ask pays nothing and no allocation path is touched. Every tick it reads
 * qm_stats_get (a walk over the page descriptors, which allocates nothing) and, when the bytes in
 * use are the highest seen, walks the segments again to draw the map of the heap at that moment.
 * It never allocates: its buffers are mappings of their own, made before it starts. Purges are
 * found from the bytes-purged counter that os.c bumps on every madvise, so the purge code carries
 * no hook.
 *
 * The page is one file: the template (src/report.html, compiled in as report_template) with the
 * data as JSON in a <script type="application/json"> element, drawn by the template's own script
 * into SVG. It is written with stdio at exit, after the sampler has stopped, with no lock held.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "qmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "report_template.h" /* generated from src/report.html by cmake/embed.cmake */
#define report_template ((const char *)report_template_bytes)

#define SERIES_MAX 4096       /* points kept; when full, every other one goes and the interval doubles */
#define FIRST_INTERVAL_MS 50  /* the sampler's first interval */
#define MAP_SEGMENTS_MAX 2048 /* segments drawn in the heap map (8 GiB) */
#define MAP_SPANS_MAX 131072  /* spans drawn in the heap map */

/* One point of the time series (bytes; t in milliseconds since the start). */
typedef struct point_s {
  uint64_t t_ms;
  uint64_t in_use, committed, resident_estimate, rss, mapped, purged;
} point_t;

/* One span of the heap map. kind is qm_span_kind_t; for small pages used/reserved are blocks in use
 * and blocks that fit, for large blocks 1/1 (0/1 once freed), for free spans is_zero/0. */
typedef struct map_span_s {
  uint16_t first, count; /* slice index in the segment, and slices */
  uint8_t kind, size_class;
  uint16_t unused;
  uint32_t used, reserved;
} map_span_t;

typedef struct map_segment_s {
  uintptr_t address;
  uint32_t heap; /* the index of its heap in the walk; UINT32_MAX: abandoned */
  uint32_t first_span, span_count;
} map_segment_t;

/* A map of the heap: segments and their spans. Invariants: every segment's spans are
 * spans[first_span .. first_span + span_count); truncated says the walk ran out of room. */
typedef struct heap_map_s {
  uint64_t t_ms, in_use;
  size_t segment_count, span_count, heaps;
  bool truncated;
  map_segment_t segments[MAP_SEGMENTS_MAX];
  map_span_t spans[MAP_SPANS_MAX];
} heap_map_t;

/* All the sampler's state, in one mapping. Only the sampler thread writes it while it runs; the
 * exit path reads it after joining that thread. */
typedef struct report_s {
  uint64_t start_ns;
  uint64_t interval_ms;
  size_t point_count;
  point_t points[SERIES_MAX];
  heap_map_t maps[2]; /* the map at the peak so far, and the one being drawn */
  size_t peak_map;    /* index of the map at the peak in maps[]; none while its segment_count is 0 */
  qm_stats_t peak_stats;
  qm_stats_t tick_stats;
  int pid;
} report_t;

static report_t *report;
static pthread_t sampler;
static bool sampler_running;
static _Atomic bool sampler_stop;

/* ---------------------------------------------------------------------------------------------
 * The map of the heap
 * ------------------------------------------------------------------------------------------- */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Spans as the statistics walk reads them (qm_segment_next_span_snapshot). */
static void map_segment(heap_map_t *map, qm_segment_t *segment, uint32_t heap) {
  if (map->segment_count >= MAP_SEGMENTS_MAX) {
    map->truncated = true;
    return;
  }
  map_segment_t *out = &map->segments[map->segment_count++];
  out->address = (uintptr_t)segment;
  out->heap = heap;
  out->first_span = (uint32_t)map->span_count;
  size_t i = QM_SEGMENT_FIRST_SLICE, count;
  qm_page_t *span;
  while ((span = qm_segment_next_span_snapshot(segment, &i, &count)) != NULL) {
    if (map->span_count >= MAP_SPANS_MAX) {
      map->truncated = true;
      break;
    }
    map_span_t *s = &map->spans[map->span_count++];
    s->first = (uint16_t)(i - count);
    s->count = (uint16_t)count;
    s->kind = LOAD(span->kind);
    s->size_class = 0;
    s->used = s->reserved = 0;
    switch (s->kind) {
    case QM_SPAN_SMALL:
      s->size_class = LOAD(span->size_class);
      s->used = LOAD(span->used);
      s->reserved = LOAD(span->reserved);
      break;
    case QM_SPAN_LARGE:
      s->used = LOAD(span->used) != 0;
      s->reserved = 1;
      break;
    case QM_SPAN_FREE:
      s->used = LOAD(span->is_zero);
      break;
    default:
      break;
    }
  }
  out->span_count = (uint32_t)(map->span_count - out->first_span);
}

static void map_abandoned(qm_segment_t *segment, void *arg) { map_segment(arg, segment, UINT32_MAX); }

static void map_heap(qm_heap_t *heap, void *arg) {
  heap_map_t *map = arg;
  uint32_t index = (uint32_t)map->heaps++;
  _qm_os_hold_mappings();
  size_t limit = qm_counter_get(&_qm_counters.segments_mapped) + 1024;
  for (qm_segment_t *segment = LOAD(heap->segments); segment != NULL && limit-- > 0;
       segment = LOAD(segment->next))
    map_segment(map, segment, index);
  _qm_os_release_mappings();
}

static void map_draw(heap_map_t *map, uint64_t t_ms, uint64_t in_use) {
  map->t_ms = t_ms;
  map->in_use = in_use;
  map->segment_count = map->span_count = map->heaps = 0;
  map->truncated = false;
  _qm_heaps_visit(map_heap, map);
  _qm_segment_visit_abandoned(map_abandoned, map);
}

/* ---------------------------------------------------------------------------------------------
 * The sampler
 * ------------------------------------------------------------------------------------------- */

static void tick(void) {
  qm_stats_t *s = &report->tick_stats;
  qm_stats_get(s);
  uint64_t t_ms = (_qm_os_now_ns() - report->start_ns) / 1000000;
  if (report->point_count == SERIES_MAX) {
    /* Full: keep every other point (the last one stays) and sample half as often. */
    size_t kept = 0;
    for (size_t i = 1; i < SERIES_MAX; i += 2)
      report->points[kept++] = report->points[i];
    report->point_count = kept;
    report->interval_ms *= 2;
  }
  point_t *p = &report->points[report->point_count++];
  p->t_ms = t_ms;
  p->in_use = s->bytes_in_use;
  p->committed = s->committed;
  p->resident_estimate = s->resident_estimate;
  p->rss = s->process_resident;
  p->mapped = s->mapped;
  p->purged = s->bytes_purged;
  heap_map_t *peak = &report->maps[report->peak_map];
  if (peak->segment_count == 0 || s->bytes_in_use > peak->in_use) {
    size_t next = peak->segment_count == 0 ? report->peak_map : 1 - report->peak_map;
    map_draw(&report->maps[next], t_ms, s->bytes_in_use);
    report->peak_map = next;
    report->peak_stats = *s;
  }
}

static void *sampler_main(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&sampler_stop, memory_order_acquire)) {
    struct timespec pause = {(time_t)(report->interval_ms / 1000),
                             (long)(report->interval_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    if (!atomic_load_explicit(&sampler_stop, memory_order_acquire))
      tick();
  }
  return NULL;
}

__attribute__((constructor)) static void report_start(void) {
  qm_ensure_process_init();
  if (_qm_options.report[0] == '\0')
    return;
  report = _qm_os_map(qm_align_up(sizeof(report_t), _qm_os_page_size()));
  if (report == NULL) {
    _qm_message("warning: QMALLOC_REPORT: out of memory; no report");
    return;
  }
  report->start_ns = _qm_os_now_ns();
  report->interval_ms = FIRST_INTERVAL_MS;
  report->pid = _qm_os_getpid();
  tick();
  /* The sampler takes no signal meant for the program. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  sampler_running = pthread_create(&sampler, NULL, sampler_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!sampler_running)
    _qm_message(
        "warning: QMALLOC_REPORT: cannot start the sampler thread; the report has the start and end only");
}

/* ---------------------------------------------------------------------------------------------
 * The page
 * ------------------------------------------------------------------------------------------- */

/* The report's path: QMALLOC_REPORT with each "%p" replaced by the process id. */
static void report_path(char *buf, size_t size) {
  size_t n = 0;
  for (const char *c = _qm_options.report; *c && n + 1 < size; c++) {
    if (c[0] == '%' && c[1] == 'p') {
      int m = snprintf(buf + n, size - n, "%d", report->pid);
      n = m < 0 || (size_t)m >= size - n ? size - 1 : n + (size_t)m;
      c++;
    } else {
      buf[n++] = *c;
    }
  }
  buf[n] = '\0';
}

/* The command line, from /proc/self/cmdline, arguments separated by blanks. */
static void command_line(char *buf, size_t size) {
  buf[0] = '\0';
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = '\0';
  for (ssize_t i = 0; i < n - 1; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
}

static void write_series(FILE *out) {
  static const char *const names[] = {"t_ms", "in_use", "committed", "resident_estimate",
                                      "rss",  "mapped", "purged"};
  fprintf(out, "\"interval_ms\": %" PRIu64 ", \"series\": {", report->interval_ms);
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    fprintf(out, "%s\"%s\": [", k ? ",\n" : "\n", names[k]);
    for (size_t i = 0; i < report->point_count; i++) {
      const point_t *p = &report->points[i];
      const uint64_t values[] = {p->t_ms, p->in_use, p->committed, p->resident_estimate,
                                 p->rss,  p->mapped, p->purged};
      fprintf(out, "%s%" PRIu64, i ? "," : "", values[k]);
    }
    fputc(']', out);
  }
  fprintf(out, "}");
}

static void write_map(FILE *out) {
  const heap_map_t *map = &report->maps[report->peak_map];
  const qm_stats_t *s = &report->peak_stats;
  fprintf(out,
          "{\"t_ms\": %" PRIu64 ", \"in_use\": %" PRIu64 ", \"committed\": %zu, \"huge_blocks\": %zu, "
          "\"huge_bytes\": %zu, \"slice_bytes\": %zu, \"slices\": %zu, \"truncated\": %s, \"segments\": [",
          map->t_ms, map->in_use, s->committed, s->rows[QM_STATS_ROW_HUGE].blocks_in_use,
          s->rows[QM_STATS_ROW_HUGE].committed, QM_SLICE_SIZE, QM_SLICES_PER_SEGMENT,
          map->truncated ? "true" : "false");
  for (size_t g = 0; g < map->segment_count; g++) {
    const map_segment_t *segment = &map->segments[g];
    fprintf(out, "%s\n{\"address\": \"0x%lx\", \"heap\": %d, \"spans\": [", g ? "," : "",
            (unsigned long)segment->address, segment->heap == UINT32_MAX ? -1 : (int)segment->heap);
    for (uint32_t i = 0; i < segment->span_count; i++) {
      const map_span_t *span = &map->spans[segment->first_span + i];
      size_t block_size = span->kind == QM_SPAN_SMALL ? qm_class_size(span->size_class) : 0;
      fprintf(out, "%s[%u,%u,%u,%zu,%" PRIu32 ",%" PRIu32 "]", i ? "," : "", span->first, span->count,
              span->kind, block_size, span->used, span->reserved);
    }
    fprintf(out, "]}");
  }
  fprintf(out, "],\n\"classes\": [");
  for (size_t r = 0; r < QM_STATS_ROWS; r++) {
    const qm_class_stats_t *row = &s->rows[r];
    fprintf(out, "%s[%zu,%zu,%zu]", r ? "," : "", row->block_size, row->bytes_in_use, row->committed);
  }
  fprintf(out, "]}");
}

static void write_report(FILE *out) {
  const char *marker = strstr(report_template, "/*QM_DATA*/");
  if (marker == NULL) /* the template is built in: it has its marker */
    return;
  fwrite(report_template, 1, (size_t)(marker - report_template), out);
  char command[1024];
  command_line(command, sizeof command);
  fprintf(out, "{\"command\": ");
  _qm_json_string(out, command);
  fprintf(out, ",\n\"pid\": %d, \"duration_ms\": %" PRIu64 ", ", report->pid,
          report->points[report->point_count - 1].t_ms);
  write_series(out);
  fprintf(out, ",\n\"heap_map\": ");
  write_map(out);
  fprintf(out, ",\n\"profile\": ");
  _qm_profile_json(out);
  fprintf(out, ",\n\"stats\": ");
  qm_stats_json(out);
  fprintf(out, "}");
  const char *rest = marker + strlen("/*QM_DATA*/");
  fwrite(rest, 1, strlen(rest), out);
}

__attribute__((destructor)) static void report_finish(void) {
  /* A forked child did not start this report (it has no sampler): leave it to the parent. */
  if (report == NULL || report->pid != _qm_os_getpid())
    return;
  if (sampler_running) {
    atomic_store_explicit(&sampler_stop, true, memory_order_release);
    pthread_join(sampler, NULL);
    sampler_running = false;
  }
  tick();
  qm_profile_thread_t *thread = &_qm_profile_thread;
  thread->busy++; /* the report's own allocations are not samples */
  char path[sizeof _qm_options.report + 32];
  report_path(path, sizeof path);
  FILE *out = fopen(path, "w");
  if (out == NULL) {
    _qm_message("warning: QMALLOC_REPORT: cannot write %s: %s", path, strerror(errno));
  } else {
    write_report(out);
    if (fclose(out) != 0)
      _qm_message("warning: QMALLOC_REPORT: error writing %s", path);
    else if (_qm_options.verbose)
      _qm_message("memory report written to %s", path);
  }
  thread->busy--;
  report = NULL;
}
