/* stats_output: the program that tests/stats_output.sh runs. It keeps 1,000 blocks of 100 bytes
 * (class 112) live, then prints the statistics table on stderr (malloc_stats in the standard
 * flavour, qm_stats_print in the prefixed one) and the JSON document on stdout, and exits with the
 * blocks still live, so that a table printed at exit (QMALLOC_SHOW_STATS=1) shows them too. */
#include "stats_api.h"

enum { COUNT = 1000, SIZE = 100 };
static void *volatile blocks[COUNT];

int main(void) {
  for (size_t i = 0; i < COUNT; i++)
    blocks[i] = T_MALLOC(SIZE);
#ifdef QMT_PREFIXED
  qm_stats_print(stderr);
  int status = qm_stats_json(stdout);
#else
  malloc_stats();
  int (*json)(FILE *) = (int (*)(FILE *))qmt_sym("qm_stats_json");
  if (json == NULL) {
    fprintf(stderr, "stats_output: qm_stats_json is not exported (not running on qmalloc)\n");
    return 1;
  }
  int status = json(stdout);
#endif
  return status == 0 ? 0 : 1;
}
