/* report_sites.c - a program with known allocation sites, for the memory report and heap profile
 * tests (run_report.sh): big_site allocates ten times the bytes of small_site, in blocks of the
 * same size, called alternately: 132,000 blocks of 500 bytes in all; and mid_site, 1,200 blocks of
 * 30 KiB. Its frames are found by name, so it is linked with -rdynamic. With an argument, it
 * writes the folded profile there with qm_profile_dump, looked up at run time (the profiling
 * library is preloaded; the program links no qmalloc).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 500 bytes: served from the 512-byte class, so the page's waste chart has 12 bytes a request. */
#define BLOCK 500
#define ROUNDS 4000

/* Exported (not static) so that dladdr can name them in the profile. */
void small_site(void);
void big_site(void);
void mid_site(void);

static void *kept[ROUNDS * 11];
static size_t kept_count;

__attribute__((noinline)) void small_site(void) {
  char *p = malloc(BLOCK);
  memset(p, 1, BLOCK);
  kept[kept_count++] = p;
}

__attribute__((noinline)) void big_site(void) {
  for (int i = 0; i < 10; i++) {
    char *p = malloc(BLOCK);
    memset(p, 2, BLOCK);
    kept[kept_count++] = p;
  }
}

/* 1,200 blocks of 30 KiB in all, each freed at once: a size near the profiler's size interval
 * (32 KiB while a report is asked for), where an allocation may span several sample points. */
#define MID_BLOCK (30 * 1024)
__attribute__((noinline)) void mid_site(void) {
  char *p = malloc(MID_BLOCK);
  if (p != NULL)
    p[0] = 3;
  free(p);
}

static void pause_ms(long ms) {
  struct timespec t = {0, ms * 1000000L};
  nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
  /* Three times: fill (about 22 MiB), hold a moment so that the sampler sees it, free. */
  for (int pass = 0; pass < 3; pass++) {
    kept_count = 0;
    for (int r = 0; r < ROUNDS; r++) {
      small_site();
      big_site();
      if (r % 10 == 0)
        mid_site();
    }
    pause_ms(60);
    for (size_t i = 0; i < kept_count; i++)
      free(kept[i]);
    pause_ms(60);
  }
  if (argc > 1) {
    int (*dump)(FILE *) = (int (*)(FILE *))dlsym(RTLD_DEFAULT, "qm_profile_dump");
    if (dump == NULL) {
      fprintf(stderr, "report_sites: qm_profile_dump not found: is libqmalloc-profile.so preloaded?\n");
      return 1;
    }
    FILE *out = fopen(argv[1], "w");
    if (out == NULL || dump(out) != 0 || fclose(out) != 0) {
      fprintf(stderr, "report_sites: qm_profile_dump failed\n");
      return 1;
    }
  }
  return 0;
}
