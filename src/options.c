/* options.c - run-time options, read once from the environment at process start.
 *
 * One table describes every option: its name (read as QMALLOC_<NAME>), default, and meaning.
 * Values are read with secure_getenv, so setuid and setgid programs ignore them. A value that
 * cannot be parsed gets a one-line warning naming the option and the value used instead.
 */
#include "internal.h"

#include <stdlib.h>
#include <strings.h>

qm_options_t _qm_options;

typedef struct qm_option_desc_s {
  const char *name; /* environment variable */
  bool *value;      /* where the parsed value goes */
  bool default_value;
  const char *description; /* one line, for documentation */
} qm_option_desc_t;

static const qm_option_desc_t option_table[] = {
    {"QMALLOC_VERBOSE", &_qm_options.verbose, false,
     "print a line when qmalloc starts and a summary when the process exits"},
};

static bool parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"1", "yes", "true", "on"};
  static const char *const no[] = {"0", "no", "false", "off", ""};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (strcasecmp(text, yes[i]) == 0)
      return *out = true, true;
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (strcasecmp(text, no[i]) == 0)
      return *out = false, true;
  return false;
}

/* A whole number of milliseconds, at most `max`. */
static bool parse_ms(const char *text, uint64_t max, uint64_t *out) {
  uint64_t n = 0;
  const char *c = text;
  if (*c == 0)
    return false;
  for (; *c >= '0' && *c <= '9'; c++) {
    n = n * 10 + (uint64_t)(*c - '0');
    if (n > max)
      return false;
  }
  if (*c == 'm' && c[1] == 's')
    c += 2;
  if (*c != 0)
    return false;
  *out = n;
  return true;
}

static void numeric_option(const char *name, uint64_t *value, uint64_t default_value, uint64_t max) {
  *value = default_value;
  const char *text = _qm_os_getenv(name);
  if (text != NULL && !parse_ms(text, max, value)) {
    *value = default_value;
    _qm_message("warning: %s=\"%s\" is not a duration in ms (0..%llu); using %llu", name, text,
                (unsigned long long)max, (unsigned long long)default_value);
  }
}

void _qm_options_init(void) {
  numeric_option("QMALLOC_PURGE_DELAY", &_qm_options.purge_delay_ms, 100, 60000);
  numeric_option("QMALLOC_SEGMENT_DECAY", &_qm_options.segment_decay_ms, 1000, 600000);
  {
    const char *method = _qm_os_getenv("QMALLOC_PURGE_METHOD");
    _qm_options.purge_method =
        method != NULL && strcasecmp(method, "free") == 0 ? QM_PURGE_FREE : QM_PURGE_DONTNEED;
  }
  for (size_t i = 0; i < sizeof option_table / sizeof option_table[0]; i++) {
    const qm_option_desc_t *option = &option_table[i];
    *option->value = option->default_value;
    const char *text = _qm_os_getenv(option->name);
    if (text == NULL)
      continue;
    if (!parse_bool(text, option->value)) {
      *option->value = option->default_value;
      _qm_message("warning: %s=\"%s\" is not a boolean (1/0, yes/no, true/false, on/off); using %s",
                  option->name, text, option->default_value ? "1" : "0");
    }
  }
}
