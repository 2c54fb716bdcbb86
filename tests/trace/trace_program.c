/* trace_program.c - a program with known calls, recorded by tests/trace/run_trace.sh under
 * `qmalloc-run --trace`: its trace must show them (qmalloc-replay --info) and replay.
 *
 *   malloc 1000 (+ what libc adds), calloc 11, realloc 4 (3 that move the block), aligned_alloc 7,
 *   posix_memalign 5, memalign 3, pvalloc 2, free_sized 4, free_aligned_sized 2, valloc 0 (the
 *   child of fork calls valloc 9 times: a child of fork is not traced);
 *   a second thread frees 300 blocks of the main thread, which frees 50 of the second thread's.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CROSS_MAIN 300
#define CROSS_WORKER 50

static void *from_main[CROSS_MAIN];
static void *from_worker[CROSS_WORKER];

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "trace_program: %s failed\n", what);
    exit(1);
  }
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < CROSS_MAIN; i++)
    free(from_main[i]);
  for (int i = 0; i < CROSS_WORKER; i++)
    check((from_worker[i] = malloc(48)) != NULL, "malloc in the worker");
  return NULL;
}

int main(void) {
  void *blocks[1000];
  for (int i = 0; i < 1000; i++)
    check((blocks[i] = malloc((size_t)(16 + i % 200))) != NULL, "malloc");
  for (int i = 0; i < 1000; i++)
    free(blocks[i]);

  void *zeroed[11];
  for (int i = 0; i < 11; i++)
    check((zeroed[i] = calloc(3, 50)) != NULL, "calloc");

  /* realloc: from NULL, then growing from a small block to a large, then a huge one. */
  char *r = realloc(NULL, 16);
  check(r != NULL, "realloc(NULL)");
  memset(r, 7, 16);
  char *r2 = realloc(r, 200000);
  check(r2 != NULL && r2[15] == 7, "realloc to large");
  char *r3 = realloc(r2, (size_t)8 << 20);
  check(r3 != NULL && r3[15] == 7, "realloc to huge");
  char *r4 = realloc(r3, 64);
  check(r4 != NULL && r4[15] == 7, "realloc to small");

  void *aligned[7];
  for (int i = 0; i < 7; i++)
    check((aligned[i] = aligned_alloc((size_t)64 << i, 100)) != NULL, "aligned_alloc");
  void *posix[5];
  for (int i = 0; i < 5; i++)
    check(posix_memalign(&posix[i], 4096, 1000) == 0, "posix_memalign");
  void *mem[3];
  for (int i = 0; i < 3; i++)
    check((mem[i] = memalign(256, 300)) != NULL, "memalign");
  void *pages[2];
  for (int i = 0; i < 2; i++)
    check((pages[i] = pvalloc(5000)) != NULL, "pvalloc");

  /* C23 sized frees: looked up, since older C libraries do not declare them. */
  void (*sized)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  void (*aligned_sized)(void *, size_t, size_t) =
      (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  check(sized != NULL && aligned_sized != NULL, "finding free_sized (is qmalloc preloaded?)");
  for (int i = 0; i < 4; i++)
    sized(zeroed[i], 150);
  aligned_sized(aligned[0], 64, 100);
  aligned_sized(aligned[1], 128, 100);

  /* Frees across threads, both ways. */
  for (int i = 0; i < CROSS_MAIN; i++)
    check((from_main[i] = malloc(32)) != NULL, "malloc for the worker");
  pthread_t thread;
  check(pthread_create(&thread, NULL, worker, NULL) == 0, "pthread_create");
  check(pthread_join(thread, NULL) == 0, "pthread_join");
  for (int i = 0; i < CROSS_WORKER; i++)
    free(from_worker[i]);

  /* A child of fork allocates, and exits through the destructors: it must not touch the trace. */
  pid_t child = fork();
  check(child >= 0, "fork");
  if (child == 0) {
    for (int i = 0; i < 9; i++)
      free(valloc(100));
    exit(0);
  }
  int status = 0;
  check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child");

  for (int i = 4; i < 11; i++)
    free(zeroed[i]);
  for (int i = 2; i < 7; i++)
    free(aligned[i]);
  for (int i = 0; i < 5; i++)
    free(posix[i]);
  for (int i = 0; i < 3; i++)
    free(mem[i]);
  for (int i = 0; i < 2; i++)
    free(pages[i]);
  free(r4);
  puts("trace_program: done");
  return 0;
}
