/* options_show NAME...: prints the value of each option, one per line (for tests/options_env.sh). */
#include "stats_api.h"

int main(int argc, char **argv) {
  void *p = T_MALLOC(64); /* makes sure the library has started */
  for (int i = 1; i < argc; i++) {
    char value[64];
    int result = -1;
    if (!qmt_option_get(argv[i], value, sizeof value, &result) || result != 0) {
      printf("%s: error\n", argv[i]);
      continue;
    }
    printf("%s\n", value);
  }
  T_FREE(p);
  return 0;
}
