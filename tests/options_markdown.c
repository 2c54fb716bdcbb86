/* options_markdown: prints the option table of src/options.c as the markdown table the README
 * carries between its options markers (tests/options_readme.sh compares and updates them). Linked
 * with libqmalloc.a, whose internal functions it may call. */
#include <stdio.h>

#include "internal.h"

int main(void) {
  _qm_options_markdown(stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}
