/* fork() while other threads allocate: the child can allocate, free, free blocks the parent
 * allocated before the fork, and start a thread; it never hangs (alarm) and its heap is valid.
 * Forks come from the main thread and from one of the allocating threads.
 *
 * usage: fork_threads [forks [threads [child-threads]]]   (defaults: 200, 4, 1)
 *   child-threads 0: the child does not start a thread (for ThreadSanitizer, which forbids it)
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "qmt.h"

#define INHERITED 64
#define WORKER_LIVE 128

struct block {
  unsigned char *p;
  size_t n;
};

static atomic_bool stop;
static int child_threads = 1;
static struct block inherited[INHERITED]; /* allocated by main before any fork, never touched after */
static atomic_size_t forks_done, child_failures;
static int max_worker_forks;

static void *child_thread(void *arg) {
  qmt_rng *r = arg;
  for (int i = 0; i < 500; i++) {
    size_t n = qmt_random_size(r, 64 * KiB);
    unsigned char *p = T_MALLOC(n);
    CHECK(p != NULL);
    if (p) {
      qmt_fill(p, n, qmt_seed(p, n));
      CHECK(qmt_verify(p, n, qmt_seed(p, n)) == SIZE_MAX);
    }
    T_FREE(p);
  }
  return NULL;
}

/* Big blocks are checked at their edges only: the child should not fault in much memory. */
static void fill_block(struct block *b) {
  if (b->n <= 64 * KiB) {
    qmt_fill(b->p, b->n, qmt_seed(b->p, b->n));
  } else {
    qmt_fill(b->p, 4 * KiB, qmt_seed(b->p, b->n));
    qmt_fill(b->p + b->n - 4 * KiB, 4 * KiB, qmt_seed(b->p, b->n) + 1);
  }
}
static bool check_block(const struct block *b) {
  if (b->n <= 64 * KiB)
    return qmt_verify(b->p, b->n, qmt_seed(b->p, b->n)) == SIZE_MAX;
  return qmt_verify(b->p, 4 * KiB, qmt_seed(b->p, b->n)) == SIZE_MAX &&
         qmt_verify(b->p + b->n - 4 * KiB, 4 * KiB, qmt_seed(b->p, b->n) + 1) == SIZE_MAX;
}

/* What a child does; returns its exit status. */
static int child_work(uint64_t seed) {
  alarm(30); /* a deadlock in the child ends in SIGALRM, which the parent reports */
  qmt_rng r;
  qmt_rng_seed(&r, seed);
  enum { N = 300 };
  struct block v[N];
  for (int i = 0; i < N; i++) {
    size_t n = (i == 7) ? 3 * MiB : (i % 50 == 3) ? 100 * KiB : qmt_random_size(&r, 8 * KiB);
    v[i].n = n;
    v[i].p = (i % 5 == 0) ? T_CALLOC(1, n) : T_MALLOC(n);
    CHECKF(v[i].p != NULL, "child: malloc(%zu)", n);
    if (v[i].p)
      fill_block(&v[i]);
  }
  /* The parent's blocks are in the child's copy of the heap: check them, grow some, free them. */
  for (int i = 0; i < INHERITED; i++) {
    struct block b = inherited[i];
    CHECKF(check_block(&b), "child: inherited block %d corrupted", i);
    if (i % 4 == 0) {
      unsigned char *q = T_REALLOC(b.p, b.n * 3);
      CHECK(q != NULL);
      if (q) {
        b.p = q;
        CHECK(qmt_verify(q, 4 * KiB < b.n ? 4 * KiB : b.n, qmt_seed(inherited[i].p, b.n)) == SIZE_MAX);
      }
    }
    T_FREE(b.p);
  }
  if (child_threads) {
    pthread_t t;
    qmt_rng tr;
    qmt_rng_seed(&tr, seed + 1);
    CHECK(pthread_create(&t, NULL, child_thread, &tr) == 0);
    pthread_join(t, NULL);
  }
  for (int i = 0; i < N; i++) {
    if (v[i].p)
      CHECK(check_block(&v[i]));
    T_FREE(v[i].p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  return check_failures() ? 1 : 0;
}

/* Forks, runs child_work in the child, waits; counts the outcome. */
static void fork_once(uint64_t seed) {
  pid_t pid = fork();
  CHECKF(pid >= 0, "fork failed: %d", errno);
  if (pid < 0)
    return;
  if (pid == 0)
    _exit(child_work(seed));
  int status = 0;
  pid_t w;
  do
    w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  CHECK(w == pid);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    atomic_fetch_add(&child_failures, 1);
    if (WIFSIGNALED(status))
      CHECKF(0, "child %d killed by signal %d%s", (int)pid, WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
    else
      CHECKF(0, "child %d exited with status %d", (int)pid, WEXITSTATUS(status));
  }
  atomic_fetch_add(&forks_done, 1);
}

static void *worker(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  qmt_rng r;
  qmt_rng_seed(&r, 500 + id);
  struct block live[WORKER_LIVE];
  memset(live, 0, sizeof live);
  size_t it = 0;
  int worker_forks = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    struct block *b = &live[qmt_below(&r, WORKER_LIVE)];
    if (b->p) {
      CHECK(check_block(b));
      T_FREE(b->p);
    }
    size_t k = qmt_below(&r, 4000);
    b->n = k == 0   ? 2 * MiB + qmt_below(&r, 2 * MiB)
           : k < 20 ? 64 * KiB + qmt_below(&r, 256 * KiB)
                    : qmt_random_size(&r, 4 * KiB);
    b->p = T_MALLOC(b->n);
    CHECK(b->p != NULL);
    if (b->p)
      fill_block(b);
    /* The first worker forks too, now and then, while the others keep allocating. */
    if (id == 1 && ++it % 5000 == 0 && worker_forks < max_worker_forks) {
      worker_forks++;
      fork_once(900000 + it);
    }
    if (it % 64 == 0)
      sched_yield(); /* let the forking threads run on a busy machine */
  }
  for (int i = 0; i < WORKER_LIVE; i++) {
    if (live[i].p)
      CHECK(check_block(&live[i]));
    T_FREE(live[i].p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 200;
  int threads = argc > 2 ? atoi(argv[2]) : 4;
  if (argc > 3)
    child_threads = atoi(argv[3]);
  if (forks < 1 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: %s [forks [threads [child-threads]]]\n", argv[0]);
    return 2;
  }
  qmt_start("fork_threads");
  max_worker_forks = forks / 4;
  fprintf(stderr, "  %d forks from the main thread, up to %d from a worker, %d allocating threads\n", forks,
          max_worker_forks, threads);
  alarm(150); /* the whole test */

  for (int i = 0; i < INHERITED; i++) {
    inherited[i].n = (i % 16 == 5) ? 300 * KiB : (i % 16 == 9) ? 3 * MiB : 16 + (size_t)i * 37;
    inherited[i].p = T_MALLOC(inherited[i].n);
    CHECK(inherited[i].p != NULL);
    if (!inherited[i].p)
      return check_result("fork_threads");
    fill_block(&inherited[i]);
  }

  pthread_t tid[64];
  for (int i = 0; i < threads; i++)
    CHECK(pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
  for (int i = 0; i < forks && !atomic_load(&child_failures); i++)
    fork_once((uint64_t)i);
  atomic_store(&stop, true);
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);

  /* The parent can fork once more, now single-threaded. */
  fork_once(12345);
  /* The parent's own blocks were not disturbed by the children. */
  for (int i = 0; i < INHERITED; i++) {
    CHECK(check_block(&inherited[i]));
    T_FREE(inherited[i].p);
  }
  if (qmt_strict)
    CHECK(qmt_heap_validate());
  fprintf(stderr, "  %zu forks, %zu children failed\n", atomic_load(&forks_done),
          atomic_load(&child_failures));
  return check_result("fork_threads");
}
