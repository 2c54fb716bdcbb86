/* Purging many ranges at once (os.c, QMALLOC_PURGE_BATCH): a trim that thins many sparse pages
 * hands their free OS pages to the kernel in a few process_madvise calls, where the kernel takes
 * them, instead of one madvise each; the memory goes back all the same, and the live blocks keep
 * their contents.
 *
 * The scene: 1 KiB blocks (four to an OS page), written, then every block freed but those of every
 * other OS page, so that each small page is sparse and its free memory is isolated single OS pages;
 * then a trim. Checks, with batching on and off (qm_option_set):
 *   - the freed OS pages are no longer resident (mincore), the kept blocks hold what was written,
 *     the heap validates, and the freed blocks can be allocated and written again;
 *   - on: far fewer calls than ranges, where process_madvise on the calling process works here
 *     (recent kernels; the test asks the kernel itself); off: a call per range.
 * And in a child process under a seccomp filter that kills the process on process_madvise (and
 * allows everything else), the same trim: the child must live (qmalloc sees the filter in
 * /proc/thread-self/status and uses madvise) and its memory must still go back. */
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "stats_api.h"

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#define HAVE_SECCOMP_TEST 1
#endif

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

#define BLOCK 1024
#define BLOCKS 4096 /* 4 MiB: 64 pages of 64 blocks */
#define OS_PAGE 4096
#define PER_OS_PAGE (OS_PAGE / BLOCK)

static bool option_set(const char *name, const char *value) {
  int result = -1;
  return qmt_option_set(name, value, &result) && result == 0;
}

static size_t madvise_calls(void) {
  qm_stats_t stats;
  return qmt_stats_get(&stats) ? stats.madvise_calls : 0;
}

/* Whether process_madvise(PIDFD_SELF) purges memory of this process here. */
static bool kernel_batches(void) {
  unsigned char *p = mmap(NULL, OS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return false;
  p[0] = 1;
  struct iovec range = {p, OS_PAGE};
  long done = syscall(SYS_process_madvise, -10001 /* PIDFD_SELF_PROCESS */, &range, 1, MADV_DONTNEED, 0);
  bool works = done == OS_PAGE && p[0] == 0;
  munmap(p, OS_PAGE);
  return works;
}

struct scene {
  unsigned char *blocks[BLOCKS];
  size_t kept, holes; /* blocks kept; OS pages freed whole (the ranges a trim should purge) */
};

/* Allocates and writes the blocks, frees all but those of every other OS page. */
static void scene_build(struct scene *s) {
  for (size_t i = 0; i < BLOCKS; i++) {
    s->blocks[i] = T_MALLOC(BLOCK);
    CHECK(s->blocks[i] != NULL);
    if (s->blocks[i] != NULL)
      qmt_fill(s->blocks[i], BLOCK, i);
  }
  s->kept = s->holes = 0;
  for (size_t i = 0; i < BLOCKS; i++) {
    uintptr_t os_page = (uintptr_t)s->blocks[i] / OS_PAGE;
    if (os_page % 2 == 0) {
      s->kept++;
      continue;
    }
    if ((uintptr_t)s->blocks[i] % OS_PAGE == 0)
      s->holes++;
    T_FREE(s->blocks[i]);
    s->blocks[i] = NULL;
  }
}

/* Checks the state after the trim and frees everything. Returns the freed OS pages still resident. */
static size_t scene_check(struct scene *s, const char *what) {
  size_t resident = 0, looked = 0, damaged = 0;
  for (size_t i = 0; i < BLOCKS; i++) {
    if (s->blocks[i] != NULL) {
      damaged += qmt_verify(s->blocks[i], BLOCK, i) != SIZE_MAX;
      /* The freed OS page after this kept one, when it was a page of this block's run. */
      if ((uintptr_t)s->blocks[i] % OS_PAGE == 0 && i + 2 * PER_OS_PAGE < BLOCKS &&
          s->blocks[i + 2 * PER_OS_PAGE] == s->blocks[i] + 2 * OS_PAGE) {
        resident += qmt_resident_os_pages(s->blocks[i] + OS_PAGE, OS_PAGE) != 0;
        looked++;
      }
    }
  }
  CHECKF(looked * 2 >= s->holes, "%s: only %zu of %zu freed OS pages were looked at", what, looked, s->holes);
  CHECKF(damaged == 0, "%s: %zu kept blocks lost their contents", what, damaged);
  CHECKF(qmt_heap_validate(), "%s: the heap validator failed after the trim", what);
  /* The freed blocks come back from the holes and can be used. */
  unsigned char *again[BLOCKS];
  size_t count = BLOCKS - s->kept;
  for (size_t i = 0; i < count; i++) {
    again[i] = T_MALLOC(BLOCK);
    CHECK(again[i] != NULL);
    if (again[i] != NULL)
      qmt_fill(again[i], BLOCK, 1000000 + i);
  }
  size_t bad = 0;
  for (size_t i = 0; i < count; i++) {
    bad += again[i] != NULL && qmt_verify(again[i], BLOCK, 1000000 + i) != SIZE_MAX;
    T_FREE(again[i]);
  }
  CHECKF(bad == 0, "%s: %zu blocks taken again from the holes were damaged", what, bad);
  for (size_t i = 0; i < BLOCKS; i++)
    T_FREE(s->blocks[i]);
  CHECK(qmt_heap_validate());
  return resident;
}

static struct scene scene;

static void *batched_trim(void *arg) {
  bool batching = arg != NULL;
  CHECK(option_set("purge_batch", batching ? "1" : "0"));
  scene_build(&scene);
  size_t before = madvise_calls();
  (void)qmt_trim();
  size_t calls = madvise_calls() - before;
  const char *what = batching ? "batching on" : "batching off";
  fprintf(stderr, "  %s: %zu holes of one OS page, %zu purge calls in the trim\n", what, scene.holes, calls);
  CHECKF(scene.holes >= BLOCKS / PER_OS_PAGE / 4, "%s: only %zu isolated freed OS pages", what, scene.holes);
  if (batching && kernel_batches())
    CHECKF(calls * 8 < scene.holes, "%s: %zu calls for %zu ranges: the ranges were not batched", what, calls,
           scene.holes);
  else
    CHECKF(calls >= scene.holes, "%s: %zu calls for %zu separate ranges", what, calls, scene.holes);
  size_t resident = scene_check(&scene, what);
  CHECKF(resident * 10 <= scene.holes, "%s: %zu of %zu freed OS pages are still resident after the trim",
         what, resident, scene.holes);
  return NULL;
}

#ifdef HAVE_SECCOMP_TEST
#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#else
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

/* Kills the process on process_madvise, allows every other call (of this architecture). */
static bool install_filter(void) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_madvise, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {(unsigned short)(sizeof code / sizeof code[0]), code};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

static void trim_under_seccomp(void) {
  fflush(stderr);
  int failures_before = check_failures(); /* the child inherits the count */
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    if (!install_filter())
      _exit(77);
    CHECK(option_set("purge_batch", "1"));
    scene_build(&scene);
    (void)qmt_trim();
    size_t resident = scene_check(&scene, "under seccomp");
    CHECKF(resident * 10 <= scene.holes, "under seccomp: %zu of %zu freed OS pages are still resident",
           resident, scene.holes);
    _exit(check_failures() == failures_before ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    fprintf(stderr, "  no seccomp filter could be installed here: that check is skipped\n");
    return;
  }
  CHECKF(!WIFSIGNALED(status),
         "under a seccomp filter that forbids process_madvise the child died of signal %d",
         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child under seccomp failed its checks");
}
#endif

int main(void) {
  qmt_start("purge_batch");
  if (!qmt_strict)
    return check_result("purge_batch");
  if (sysconf(_SC_PAGESIZE) != OS_PAGE) {
    fprintf(stderr, "purge_batch: the scene is laid out for 4 KiB OS pages: skipped\n");
    return check_result("purge_batch");
  }
  if (qmt_thp_always()) {
    fprintf(stderr,
            "purge_batch: transparent huge pages are set to always: the residency checks are skipped\n");
    return check_result("purge_batch");
  }
  /* Each in a thread of its own, so that the trim finds only this scene's pages. */
  for (int batching = 1; batching >= 0; batching--) {
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, batched_trim, batching ? &scene : NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
  }
#ifdef HAVE_SECCOMP_TEST
  trim_under_seccomp();
#endif
  return check_result("purge_batch");
}
