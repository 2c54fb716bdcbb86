/* options.c - run-time options: the one table that describes them, reading them from the
 * environment at start-up, qm_option_set/qm_option_get, and the table's markdown form (from which
 * the README's option table is generated).
 *
 * Each option is read once, as QMALLOC_<NAME>, while the process starts: before anything may
 * allocate, so parsing is done by hand here (no strtol, sscanf or locale). Values come from
 * secure_getenv, so setuid and setgid programs ignore them. A value that does not parse or is out
 * of range gets one warning line naming the option and the value used instead, and the program
 * runs on; so does a QMALLOC_* variable that names no option.
 */
#include "internal.h"
#include "qmalloc.h"

#include <errno.h>
#include <inttypes.h>

/* Builds of the debug and secure variants of the library define these (types.h: QM_VARIANT_SECURE). */
#ifndef QM_VARIANT_DEBUG
#define QM_VARIANT_DEBUG 0
#endif
#ifndef QM_VARIANT_TRACE
#define QM_VARIANT_TRACE 0
#endif
/* QM_VARIANT_SECURE and QM_VARIANT_PROFILE come from types.h (the latter also sets the statistics
 * level). */

qm_options_t _qm_options;

typedef enum option_type_e {
  OPTION_BOOL,     /* bool field: 1/0, yes/no, true/false, on/off */
  OPTION_DURATION, /* uint64_t field, milliseconds: 250, 250ms, 2s */
  OPTION_SIZE,     /* size_t field, bytes: 4096, 64k, 16m, 1g, 1t (optionally followed by b or ib) */
  OPTION_ENUM,     /* int field: the index of one of `names` */
  OPTION_STRING,   /* char[QM_OPTION_TEXT_MAX] field: any text shorter than that; default "" */
} option_type_t;

#define QM_OPTION_TEXT_MAX sizeof(((qm_options_t *)0)->report)
_Static_assert(sizeof(((qm_options_t *)0)->trace_file) == QM_OPTION_TEXT_MAX, "string options have one size");

typedef enum option_when_e {
  ANY_TIME, /* qm_option_set may change it at any time; it takes effect on the next slow path */
  AT_START, /* only before the first allocation (it shapes memory that is then mapped) */
} option_when_t;

/* One option. Invariants: min <= default_value <= max for numbers; for enums, default_value
 * indexes `names`, which ends with NULL; strings default to "" (default_value, min, max unused);
 * `name` starts with "QMALLOC_" and is upper case. */
typedef struct option_desc_s {
  const char *name;
  option_type_t type;
  size_t offset; /* of the field in qm_options_t; its type follows from `type` */
  uint64_t default_value;
  uint64_t min, max;
  const char *const *names;
  option_when_t when;
  const char *variant; /* non-NULL: exists only in this variant ("debug", "secure", "trace", "profile") */
  const char *description;
} option_desc_t;

#define FIELD(f) offsetof(qm_options_t, f)
#define MS_PER_S ((uint64_t)1000)
#define TiB ((uint64_t)1 << 40)

static const char *const purge_methods[] = {"dontneed", "free", NULL};

static const option_desc_t option_table[] = {
    {"QMALLOC_VERBOSE", OPTION_BOOL, FIELD(verbose), 0, 0, 1, NULL, ANY_TIME, NULL,
     "print a line when qmalloc starts and a summary when the process exits, on stderr"},
    {"QMALLOC_SHOW_STATS", OPTION_BOOL, FIELD(show_stats), 0, 0, 1, NULL, ANY_TIME, NULL,
     "print the statistics table (as `malloc_stats()` does) on stderr when the process exits"},
    {"QMALLOC_PURGE_DELAY", OPTION_DURATION, FIELD(purge_delay_ms), QM_PURGE_DELAY_DEFAULT_MS, 0,
     60 * MS_PER_S, NULL, ANY_TIME, NULL,
     "how long free memory stays resident before its pages are given back to the OS (free spans: half "
     "of it; 0: at once; a heap that grows gives back sooner)"},
    {"QMALLOC_PURGE_METHOD", OPTION_ENUM, FIELD(purge_method), QM_PURGE_DONTNEED, 0, 1, purge_methods,
     ANY_TIME, NULL,
     "how pages are given back: `dontneed` (`MADV_DONTNEED`: the resident set drops at once) or `free` "
     "(`MADV_FREE`: cheaper, the kernel takes the pages when it needs memory)"},
    {"QMALLOC_PURGE_BATCH", OPTION_BOOL, FIELD(purge_batch), 1, 0, 1, NULL, ANY_TIME, NULL,
     "give many small ranges back in one `process_madvise` call, where the kernel allows it on the calling "
     "process (recent kernels, with the `PIDFD_SELF` sentinel) and the thread runs under no seccomp filter; "
     "0: one `madvise` each"},
    {"QMALLOC_SEGMENT_DECAY", OPTION_DURATION, FIELD(segment_decay_ms), 1000, 0, 600 * MS_PER_S, NULL,
     ANY_TIME, NULL, "how long a wholly free 4 MiB segment stays mapped for reuse before it is unmapped"},
    {"QMALLOC_THP", OPTION_BOOL, FIELD(use_thp), 0, 0, 1, NULL, AT_START, NULL,
     "advise transparent huge pages for segments (`MADV_HUGEPAGE`): fewer TLB misses on big heaps, "
     "but a resident set that may grow in 2 MiB steps"},
    {"QMALLOC_HUGE_THP", OPTION_BOOL, FIELD(huge_thp), 1, 0, 1, NULL, ANY_TIME, NULL,
     "advise transparent huge pages for huge blocks (above 2 MiB; `MADV_HUGEPAGE`) where the kernel's THP "
     "`defrag` setting is `defer` or `never` (elsewhere an advised page fault may stop to compact memory): "
     "one page fault per 2 MiB instead of 512, but a block used only here and there is resident in 2 MiB "
     "steps"},
    {"QMALLOC_ARENA_RESERVE", OPTION_SIZE, FIELD(arena_reserve), 0, 0, TiB, NULL, AT_START, NULL,
     "address space to reserve at the first allocation; segments are carved from it (no mmap call each) "
     "until it is used up, then mapped one by one; 0: no reservation"},
    {"QMALLOC_DEBUG", OPTION_BOOL, FIELD(debug), QM_VARIANT_DEBUG, 0, 1, NULL, AT_START, "debug",
     "the debug mode of `libqmalloc-debug.so` (`qmalloc-run --debug`), on by default there: redzones, "
     "quarantine, checked frees, leak report (docs/DEBUGGING.md); other builds of the library warn that it "
     "has no effect"},
    {"QMALLOC_LEAK_REPORT", OPTION_BOOL, FIELD(leak_report), 1, 0, 1, NULL, ANY_TIME, "debug",
     "in debug mode, report the blocks still allocated at exit, grouped by allocation stack, on stderr "
     "(the exit status is not changed)"},
    {"QMALLOC_SECURE", OPTION_BOOL, FIELD(secure), QM_VARIANT_SECURE, 0, 1, NULL, AT_START, "secure",
     "the hardened mode of `libqmalloc-secure.so` (`qmalloc-run --secure`), on by default there; 0 turns "
     "off the random carving order and guard pages (link encoding and checks stay); other builds of the "
     "library warn that it has no effect"},
    {"QMALLOC_TRACE", OPTION_STRING, FIELD(trace_file), 0, 0, 0, NULL, AT_START, "trace",
     "record every call of the malloc family into this file, for `qmalloc-replay` (`libqmalloc-trace.so`, "
     "`qmalloc-run --trace FILE`); other builds of the library warn that it has no effect"},
    {"QMALLOC_REPORT", OPTION_STRING, FIELD(report), 0, 0, 0, NULL, AT_START, "profile",
     "`libqmalloc-profile.so` (`qmalloc-run --report FILE`): write an HTML memory report to this path when "
     "the process exits (`%p` in it becomes the process id); other builds warn that it has no effect"},
    {"QMALLOC_PROFILE_SAMPLE", OPTION_SIZE, FIELD(profile_sample), 2 * 1024 * 1024, 0, TiB, NULL, AT_START,
     "profile",
     "`libqmalloc-profile.so`: mean bytes allocated between two sampled call stacks (0: no sampling); other "
     "builds warn that it has no effect"},
};
#define OPTION_COUNT (sizeof option_table / sizeof option_table[0])

/* QMALLOC_* variables that are not options but are read by qmalloc's tools. */
static const char *const other_variables[] = {"QMALLOC_LIB"};

static bool variant_built(const option_desc_t *option) {
  if (option->variant == NULL)
    return true;
  switch (option->variant[0]) {
  case 'd':
    return QM_VARIANT_DEBUG;
  case 's':
    return QM_VARIANT_SECURE;
  case 't':
    return QM_VARIANT_TRACE;
  default:
    return QM_VARIANT_PROFILE;
  }
}

/* The qmalloc-run switch that loads an option's variant, for the warning in other builds. */
static const char *variant_switch(const option_desc_t *option) {
  switch (option->variant[0]) {
  case 'd':
    return "--debug";
  case 's':
    return "--secure";
  case 't':
    return "--trace FILE";
  default:
    return "--report FILE";
  }
}

/* ---------------------------------------------------------------------------------------------
 * Text: by hand, ASCII only, no allocation.
 * ------------------------------------------------------------------------------------------- */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool equal_nocase(const char *a, const char *b) {
  for (; *a && lower(*a) == lower(*b); a++, b++) {
  }
  return lower(*a) == lower(*b);
}

/* If text starts with prefix (any case), returns what follows, else NULL. */
static const char *skip_prefix_nocase(const char *text, const char *prefix) {
  for (; *prefix; prefix++, text++)
    if (lower(*text) != lower(*prefix))
      return NULL;
  return text;
}

/* Leading decimal digits into *out; returns the first character after them, or NULL when there
 * are none or the number overflows. */
static const char *parse_digits(const char *text, uint64_t *out) {
  uint64_t n = 0;
  const char *c = text;
  for (; *c >= '0' && *c <= '9'; c++) {
    if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t)(*c - '0'), &n))
      return NULL;
  }
  *out = n;
  return c == text ? NULL : c;
}

typedef enum parse_result_e { PARSE_OK, PARSE_BAD, PARSE_RANGE } parse_result_t;

static parse_result_t parse_value(const option_desc_t *option, const char *text, uint64_t *out) {
  uint64_t n = 0;
  const char *rest;
  switch (option->type) {
  case OPTION_BOOL: {
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
      if (equal_nocase(text, yes[i]))
        return *out = 1, PARSE_OK;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
      if (equal_nocase(text, no[i]))
        return *out = 0, PARSE_OK;
    return PARSE_BAD;
  }
  case OPTION_ENUM:
    for (uint64_t i = 0; option->names[i] != NULL; i++)
      if (equal_nocase(text, option->names[i]))
        return *out = i, PARSE_OK;
    return PARSE_BAD;
  case OPTION_STRING: /* texts are not numbers: string_store takes them */
    return PARSE_BAD;
  case OPTION_DURATION: {
    if ((rest = parse_digits(text, &n)) == NULL)
      return text[0] >= '0' && text[0] <= '9' ? PARSE_RANGE : PARSE_BAD;
    uint64_t scale = 1;
    if (equal_nocase(rest, "s"))
      scale = MS_PER_S;
    else if (*rest != '\0' && !equal_nocase(rest, "ms"))
      return PARSE_BAD;
    if (__builtin_mul_overflow(n, scale, &n))
      return PARSE_RANGE;
    break;
  }
  case OPTION_SIZE: {
    if ((rest = parse_digits(text, &n)) == NULL)
      return text[0] >= '0' && text[0] <= '9' ? PARSE_RANGE : PARSE_BAD;
    static const char units[] = "kmgt";
    unsigned shift = 0;
    for (unsigned i = 0; units[i] != '\0'; i++)
      if (lower(*rest) == units[i]) {
        shift = 10 * (i + 1);
        rest++;
        break;
      }
    if (!(*rest == '\0' || equal_nocase(rest, "b") || (shift != 0 && equal_nocase(rest, "ib"))))
      return PARSE_BAD;
    if (shift != 0 && n > (UINT64_MAX >> shift))
      return PARSE_RANGE;
    n <<= shift;
    break;
  }
  }
  if (n < option->min || n > option->max)
    return PARSE_RANGE;
  *out = n;
  return PARSE_OK;
}

/* The canonical text of a value: "1", "250ms", "2s", "64m", "dontneed". */
static void format_value(const option_desc_t *option, uint64_t value, char *buf, size_t size) {
  switch (option->type) {
  case OPTION_BOOL:
    snprintf(buf, size, "%d", value ? 1 : 0);
    return;
  case OPTION_ENUM:
    snprintf(buf, size, "%s", option->names[value]);
    return;
  case OPTION_STRING: /* the only number a string has is its default, "" */
    snprintf(buf, size, "%s", "");
    return;
  case OPTION_DURATION:
    if (value != 0 && value % MS_PER_S == 0)
      snprintf(buf, size, "%" PRIu64 "s", value / MS_PER_S);
    else
      snprintf(buf, size, "%" PRIu64 "ms", value);
    return;
  case OPTION_SIZE: {
    static const char units[] = "kmgt";
    int unit = -1;
    for (int i = 3; i >= 0 && unit < 0; i--)
      if (value != 0 && value % ((uint64_t)1 << (10 * (i + 1))) == 0)
        unit = i;
    if (unit < 0)
      snprintf(buf, size, "%" PRIu64, value);
    else
      snprintf(buf, size, "%" PRIu64 "%c", value >> (10 * (unit + 1)), units[unit]);
    return;
  }
  }
}

/* What a value of the option must look like, for the warning about one that does not. */
static const char *expected_form(const option_desc_t *option) {
  switch (option->type) {
  case OPTION_BOOL:
    return "a boolean (1/0, yes/no, true/false, on/off)";
  case OPTION_DURATION:
    return "a duration (e.g. 100, 100ms, 2s)";
  case OPTION_SIZE:
    return "a size (e.g. 4096, 64k, 16m, 1g)";
  case OPTION_ENUM:
  case OPTION_STRING:
    break;
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The fields
 * ------------------------------------------------------------------------------------------- */

static uint64_t field_load(const option_desc_t *option) {
  char *field = (char *)&_qm_options + option->offset;
  switch (option->type) {
  case OPTION_BOOL:
    return __atomic_load_n((bool *)field, __ATOMIC_RELAXED);
  case OPTION_ENUM:
    return (uint64_t)__atomic_load_n((int *)field, __ATOMIC_RELAXED);
  case OPTION_DURATION:
    return __atomic_load_n((uint64_t *)field, __ATOMIC_RELAXED);
  case OPTION_SIZE:
    return __atomic_load_n((size_t *)field, __ATOMIC_RELAXED);
  case OPTION_STRING: /* whether it is set; string_field has the text */
    return field[0] != '\0';
  }
  return 0;
}

/* The text of a string option. Strings are set only before the first allocation (AT_START), while
 * one thread runs, so they need no atomics. */
static char *string_field(const option_desc_t *option) { return (char *)&_qm_options + option->offset; }

/* Sets a string option to text; returns 0, or an errno value (nothing changes then). */
static int string_store(const option_desc_t *option, const char *text) {
  size_t length = strlen(text);
  if (length >= QM_OPTION_TEXT_MAX)
    return ERANGE;
  if (length != 0 && !variant_built(option))
    return ENOTSUP;
  memcpy(string_field(option), text, length + 1);
  return 0;
}

/* Relaxed atomic stores: other threads read the fields while a program changes them. */
static void field_store(const option_desc_t *option, uint64_t value) {
  char *field = (char *)&_qm_options + option->offset;
  switch (option->type) {
  case OPTION_BOOL:
    __atomic_store_n((bool *)field, value != 0, __ATOMIC_RELAXED);
    return;
  case OPTION_ENUM:
    __atomic_store_n((int *)field, (int)value, __ATOMIC_RELAXED);
    return;
  case OPTION_DURATION:
    __atomic_store_n((uint64_t *)field, value, __ATOMIC_RELAXED);
    return;
  case OPTION_SIZE:
    __atomic_store_n((size_t *)field, (size_t)value, __ATOMIC_RELAXED);
    return;
  case OPTION_STRING: /* only the default (empty) goes this way */
    field[0] = '\0';
    return;
  }
}

/* The option called `name`, given with or without the QMALLOC_ prefix, in any case. */
static const option_desc_t *option_find(const char *name) {
  if (name == NULL)
    return NULL;
  const char *bare = skip_prefix_nocase(name, "QMALLOC_");
  if (bare == NULL)
    bare = name;
  for (size_t i = 0; i < OPTION_COUNT; i++)
    if (equal_nocase(bare, option_table[i].name + 8))
      return &option_table[i];
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Start-up: the environment
 * ------------------------------------------------------------------------------------------- */

static void read_from_environment(const option_desc_t *option) {
  field_store(option, option->default_value);
  const char *text = _qm_os_getenv(option->name);
  if (text == NULL)
    return;
  if (option->type == OPTION_STRING) {
    switch (string_store(option, text)) {
    case ERANGE:
      _qm_message("warning: %s is longer than %zu bytes; ignored", option->name, QM_OPTION_TEXT_MAX - 1);
      break;
    case ENOTSUP:
      _qm_message("warning: %s=%s has no effect in this library: run the program with `qmalloc-run %s` "
                  "(libqmalloc-%s.so)",
                  option->name, text, variant_switch(option), option->variant);
      break;
    }
    return;
  }
  char used[32];
  format_value(option, option->default_value, used, sizeof used);
  uint64_t value = 0;
  switch (parse_value(option, text, &value)) {
  case PARSE_OK:
    break;
  case PARSE_BAD:
    if (option->type == OPTION_ENUM) {
      _qm_message("warning: %s=\"%s\" is not one of %s, %s; using %s", option->name, text, option->names[0],
                  option->names[1], used);
    } else {
      _qm_message("warning: %s=\"%s\" is not %s; using %s", option->name, text, expected_form(option), used);
    }
    return;
  case PARSE_RANGE: {
    char low[32], high[32];
    format_value(option, option->min, low, sizeof low);
    format_value(option, option->max, high, sizeof high);
    _qm_message("warning: %s=\"%s\" is out of range (%s..%s); using %s", option->name, text, low, high, used);
    return;
  }
  }
  if (value != option->default_value && !variant_built(option)) {
    _qm_message("warning: %s=%s has no effect in this library: run the program with `qmalloc-run %s` "
                "(libqmalloc-%s.so)",
                option->name, text, variant_switch(option), option->variant);
    return;
  }
  field_store(option, value);
}

/* Warns about QMALLOC_* variables that name no option (a misspelt option would go unnoticed). */
static void warn_unknown_variables(void) {
  char *const *environment = _qm_os_environ();
  if (environment == NULL)
    return;
  for (char *const *entry = environment; *entry != NULL; entry++) {
    const char *variable = *entry;
    if (strncmp(variable, "QMALLOC_", 8) != 0) /* variable names are case-sensitive */
      continue;
    size_t length = 0;
    while (variable[length] != '\0' && variable[length] != '=')
      length++;
    bool known = false;
    for (size_t i = 0; i < OPTION_COUNT && !known; i++)
      known = strlen(option_table[i].name) == length && memcmp(option_table[i].name, variable, length) == 0;
    for (size_t i = 0; i < sizeof other_variables / sizeof other_variables[0] && !known; i++)
      known = strlen(other_variables[i]) == length && memcmp(other_variables[i], variable, length) == 0;
    if (!known)
      _qm_message("warning: %.*s is not a qmalloc option; ignored (the README lists them)", (int)length,
                  variable);
  }
}

void _qm_options_init(void) {
  for (size_t i = 0; i < OPTION_COUNT; i++)
    read_from_environment(&option_table[i]);
  warn_unknown_variables();
}

/* ---------------------------------------------------------------------------------------------
 * From code
 * ------------------------------------------------------------------------------------------- */

/* True once memory has been mapped: from then on AT_START options are fixed. */
static bool memory_mapped(void) { return qm_counter_get(&_qm_counters.os_map_calls) != 0; }

int qm_option_set(const char *name, const char *value) {
  qm_ensure_process_init(); /* the environment is read first, so that a program's value wins */
  const option_desc_t *option = option_find(name);
  uint64_t parsed = 0;
  if (option != NULL && value != NULL && option->type == OPTION_STRING) {
    if (strcmp(value, string_field(option)) != 0 && memory_mapped()) {
      errno = EBUSY;
      return -1;
    }
    int error = string_store(option, value);
    if (error != 0) {
      errno = error == ERANGE ? EINVAL : error;
      return -1;
    }
    return 0;
  }
  if (option == NULL || value == NULL || parse_value(option, value, &parsed) != PARSE_OK) {
    errno = EINVAL;
    return -1;
  }
  if (parsed != option->default_value && !variant_built(option)) {
    errno = ENOTSUP;
    return -1;
  }
  if (option->when == AT_START && parsed != field_load(option) && memory_mapped()) {
    errno = EBUSY;
    return -1;
  }
  field_store(option, parsed);
  return 0;
}

int qm_option_get(const char *name, char *buf, size_t size) {
  qm_ensure_process_init();
  const option_desc_t *option = option_find(name);
  if (option == NULL) {
    errno = EINVAL;
    return -1;
  }
  char text[QM_OPTION_TEXT_MAX];
  if (option->type == OPTION_STRING)
    memcpy(text, string_field(option), sizeof text);
  else
    format_value(option, field_load(option), text, sizeof text);
  size_t length = strlen(text);
  if (buf == NULL || length >= size) {
    errno = ERANGE;
    return -1;
  }
  memcpy(buf, text, length + 1);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Documentation and JSON
 * ------------------------------------------------------------------------------------------- */

static void format_range(const option_desc_t *option, char *buf, size_t size) {
  char low[24], high[24];
  switch (option->type) {
  case OPTION_BOOL:
    snprintf(buf, size, "0 or 1");
    return;
  case OPTION_ENUM:
    snprintf(buf, size, "`%s`, `%s`", option->names[0], option->names[1]);
    return;
  case OPTION_STRING:
    snprintf(buf, size, "a path");
    return;
  case OPTION_DURATION:
  case OPTION_SIZE:
    format_value(option, option->min, low, sizeof low);
    format_value(option, option->max, high, sizeof high);
    snprintf(buf, size, "%s..%s", low, high);
    return;
  }
}

void _qm_options_markdown(FILE *out) {
  fprintf(out, "| Variable | Default | Values | Set from code | Meaning |\n");
  fprintf(out, "| --- | --- | --- | --- | --- |\n");
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_desc_t *option = &option_table[i];
    char value[32], range[80];
    format_value(option, option->default_value, value, sizeof value);
    format_range(option, range, sizeof range);
    if (option->type == OPTION_STRING)
      snprintf(value, sizeof value, "%s", "none");
    fprintf(out,
            option->type == OPTION_STRING ? "| `%s` | %s | %s | %s | %s |\n"
                                          : "| `%s` | `%s` | %s | %s | %s |\n",
            option->name, value, range, option->when == ANY_TIME ? "any time" : "before the first allocation",
            option->description);
  }
}

void _qm_json_string(FILE *out, const char *text) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(out, "\\%c", *c);
    else if (*c < 0x20 || *c == '<')
      fprintf(out, "\\u%04x", *c);
    else
      fputc(*c, out);
  }
  fputc('"', out);
}

void _qm_options_json(FILE *out, const char *indent) {
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_desc_t *option = &option_table[i];
    uint64_t value = field_load(option);
    fprintf(out, "%s\"", indent);
    for (const char *c = option->name + 8; *c; c++)
      fputc(lower(*c), out);
    fprintf(out, "%s\": ", option->type == OPTION_DURATION ? "_ms" : "");
    switch (option->type) {
    case OPTION_BOOL:
      fprintf(out, "%s", value ? "true" : "false");
      break;
    case OPTION_ENUM:
      fprintf(out, "\"%s\"", option->names[value]);
      break;
    case OPTION_STRING:
      _qm_json_string(out, string_field(option));
      break;
    case OPTION_DURATION:
    case OPTION_SIZE:
      fprintf(out, "%" PRIu64, value);
      break;
    }
    fprintf(out, "%s\n", i + 1 < OPTION_COUNT ? "," : "");
  }
}
