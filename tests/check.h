/* check.h - a minimal assertion harness for the qmalloc tests.
 *
 * CHECK(cond) reports "file:line: CHECK failed: cond" on stderr when cond is false and counts the
 * failure; CHECKF(cond, fmt, ...) adds a formatted explanation. A test's main() ends with
 * `return check_result("name");`, which is nonzero when any check failed. Counting is atomic, so
 * checks may be made from any thread, and from a forked child (which then reports through its exit
 * status). Reporting uses only stderr (unbuffered), so it works when the heap is exhausted.
 */
#ifndef QMT_CHECK_H
#define QMT_CHECK_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* Failures beyond this many are counted but not printed, so a broken heap does not flood the log. */
#define CHECK_MAX_REPORTED 40

static atomic_int check_failures_;

static inline void check_report_(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void check_report_(const char *file, int line, const char *expr, const char *fmt, ...) {
  int n = atomic_fetch_add(&check_failures_, 1);
  if (n >= CHECK_MAX_REPORTED) {
    if (n == CHECK_MAX_REPORTED)
      fprintf(stderr, "(further failed checks are counted but not shown)\n");
    return;
  }
  char msg[512];
  msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  fprintf(stderr, "%s:%d: CHECK failed: %s%s%s\n", file, line, expr, msg[0] ? " -- " : "", msg);
}

#define CHECK(cond) ((cond) ? (void)0 : check_report_(__FILE__, __LINE__, #cond, NULL))
#define CHECKF(cond, ...) ((cond) ? (void)0 : check_report_(__FILE__, __LINE__, #cond, __VA_ARGS__))

/* Number of failed checks so far in this process. */
static inline int check_failures(void) { return atomic_load(&check_failures_); }

/* Prints a summary line and returns the exit status for main(): 0 when every check held. */
static inline int check_result(const char *name) {
  int n = check_failures();
  if (n)
    fprintf(stderr, "%s: %d check(s) FAILED\n", name, n);
  else
    fprintf(stderr, "%s: all checks passed\n", name);
  return n ? 1 : 0;
}

#endif /* QMT_CHECK_H */
