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

void _qm_options_init(void) {
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
