/* timeline.c - RSS over time of a program that changes phases, for the purge chart of the README.
 *
 * Phases (each separated by a quiet second in which the program keeps making a few ordinary
 * allocator calls, as a server between requests would):
 *   1. small  256 MiB of 64-byte objects, held for half a second, then freed;
 *   2. large  256 MiB of 256 KiB objects, held, then freed;
 *   3. mixed  128 MiB of small and 128 MiB of large objects, then all freed.
 * A sampler thread reads /proc/self/statm every 10 ms and the samples are printed at the end as
 * "milliseconds rss_mib phase" lines. The program calls only the standard malloc and free, so it
 * runs under any allocator (LD_PRELOAD); it never calls malloc_trim.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB ((size_t)1024 * 1024)
#define MAX_SAMPLES 4096

static _Atomic int phase;
static _Atomic int done;
static double sample_ms[MAX_SAMPLES], sample_mib[MAX_SAMPLES];
static int sample_phase[MAX_SAMPLES];
static int samples;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double rss_mib(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  char *space = strchr(buf, ' ');
  return space ? (double)strtoull(space + 1, NULL, 10) * (double)sysconf(_SC_PAGESIZE) / (double)MiB : 0;
}

static void *sampler(void *arg) {
  double start = *(double *)arg;
  while (!atomic_load(&done) && samples < MAX_SAMPLES) {
    sample_ms[samples] = now_ms() - start;
    sample_mib[samples] = rss_mib();
    sample_phase[samples] = atomic_load(&phase);
    samples++;
    usleep(10000);
  }
  return NULL;
}

/* A quiet period: a few small and one large allocation every 10 ms. */
static void quiet(double ms) {
  double end = now_ms() + ms;
  while (now_ms() < end) {
    void *a = malloc(200 * 1024), *b = malloc(40);
    if (a)
      memset(a, 1, 64);
    free(a);
    free(b);
    usleep(10000);
  }
}

static void **fill(size_t count, size_t size) {
  void **blocks = malloc(count * sizeof *blocks);
  if (!blocks)
    exit(1);
  for (size_t i = 0; i < count; i++) {
    blocks[i] = malloc(size);
    if (!blocks[i])
      exit(1);
    memset(blocks[i], (int)i, size);
  }
  return blocks;
}

static void release(void **blocks, size_t count) {
  for (size_t i = 0; i < count; i++)
    free(blocks[i]);
  free(blocks);
}

int main(void) {
  double start = now_ms();
  pthread_t t;
  pthread_create(&t, NULL, sampler, &start);
  quiet(300);

  atomic_store(&phase, 1);
  size_t n_small = 256 * MiB / 64;
  void **small = fill(n_small, 64);
  quiet(500);
  release(small, n_small);
  atomic_store(&phase, 0);
  quiet(1000);

  atomic_store(&phase, 2);
  size_t n_large = 256 * MiB / (256 * 1024);
  void **large = fill(n_large, 256 * 1024);
  quiet(500);
  release(large, n_large);
  atomic_store(&phase, 0);
  quiet(1000);

  atomic_store(&phase, 3);
  size_t n_mixed_small = 128 * MiB / 64, n_mixed_large = 128 * MiB / (256 * 1024);
  small = fill(n_mixed_small, 64);
  large = fill(n_mixed_large, 256 * 1024);
  quiet(500);
  release(small, n_mixed_small);
  release(large, n_mixed_large);
  atomic_store(&phase, 0);
  quiet(1000);

  atomic_store(&done, 1);
  pthread_join(t, NULL);
  for (int i = 0; i < samples; i++)
    printf("%.0f %.1f %d\n", sample_ms[i], sample_mib[i], sample_phase[i]);
  return 0;
}
