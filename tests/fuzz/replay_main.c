/* replay_main.c - runs the fuzz harness (fuzz_api.c) once over each file named on the command line,
 * or over every file of each directory named, without libFuzzer. Any compiler builds it, so the
 * ordinary test suite runs the harness over its corpus (ctest -L fuzz), and a crashing input found
 * by the fuzzer can be replayed under a debugger in any build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long files_run;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  uint8_t *data = NULL;
  size_t size = 0, capacity = 0;
  for (;;) {
    if (size == capacity) {
      capacity = capacity ? 2 * capacity : 4096;
      data = realloc(data, capacity);
      if (data == NULL) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        exit(2);
      }
    }
    size_t n = fread(data + size, 1, capacity - size, f);
    if (n == 0)
      break;
    size += n;
  }
  fclose(f);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  files_run++;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files of a directory, in name order (so that a run is the same everywhere). */
static void run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    perror(dir);
    exit(2);
  }
  char **names = NULL;
  size_t count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    names = realloc(names, (count + 1) * sizeof *names);
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    if (names == NULL || (names[count] = malloc(len)) == NULL) {
      fprintf(stderr, "replay: out of memory listing %s\n", dir);
      exit(2);
    }
    snprintf(names[count], len, "%s/%s", dir, e->d_name);
    count++;
  }
  closedir(d);
  qsort(names, count, sizeof *names, by_name);
  for (size_t i = 0; i < count; i++) {
    run_file(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
      run_dir(argv[i]);
    else
      run_file(argv[i]);
  }
  printf("replay: %lu inputs ran clean\n", files_run);
  return files_run > 0 ? 0 : 1;
}
