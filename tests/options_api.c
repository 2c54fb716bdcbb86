/* qm_option_set and qm_option_get: names with or without the QMALLOC_ prefix and in any case;
 * every value form (booleans, durations, sizes, names) and its canonical text; errors (unknown
 * name, bad or out-of-range value: EINVAL, printing nothing; an option fixed at start-up once memory
 * is allocated: EBUSY; a mode of another variant of the library: ENOTSUP; a short buffer: ERANGE).
 * Run with no QMALLOC_* variable in the environment (ctest clears none, so the values checked
 * first are the defaults only when the caller set none). */
#include <sys/stat.h>

#include "stats_api.h"

static int set(const char *name, const char *value) {
  int result = -2;
  errno = 0;
  qmt_option_set(name, value, &result);
  return result;
}

static const char *get(const char *name) {
  static char buf[64];
  int result = -2;
  buf[0] = '\0';
  qmt_option_get(name, buf, sizeof buf, &result);
  CHECKF(result == 0, "qm_option_get(%s) = %d", name, result);
  return buf;
}

#define CHECK_VALUE(name, expected)                                                                          \
  do {                                                                                                       \
    const char *value_ = get(name);                                                                          \
    CHECKF(strcmp(value_, expected) == 0, "%s is \"%s\", expected \"%s\"", name, value_, expected);          \
  } while (0)

#define CHECK_ERROR(call, expected_errno)                                                                    \
  do {                                                                                                       \
    int result_ = (call);                                                                                    \
    int errno_ = errno;                                                                                      \
    CHECKF(result_ == -1 && errno_ == (expected_errno), "%s = %d, errno %d (expected -1, errno %d)", #call,  \
           result_, errno_, expected_errno);                                                                 \
  } while (0)

int main(void) {
  qmt_start("options_api");
  int probe = 0;
  if (!qmt_option_set("verbose", "0", &probe) || !qmt_strict)
    return check_result("options_api");
  if (getenv("QMALLOC_PURGE_DELAY") == NULL)
    CHECK_VALUE("purge_delay", "100ms");

  /* Names: with or without the prefix, any case */
  CHECK(set("QMALLOC_PURGE_DELAY", "250ms") == 0);
  CHECK_VALUE("purge_delay", "250ms");
  CHECK(set("purge_delay", "2s") == 0);
  CHECK_VALUE("QMALLOC_PURGE_DELAY", "2s");
  CHECK(set("Purge_Delay", "1500") == 0);
  CHECK_VALUE("qmalloc_purge_delay", "1500ms");
  CHECK(set("purge_delay", "0") == 0);
  CHECK_VALUE("purge_delay", "0ms");
  CHECK(set("purge_delay", "60s") == 0);
  CHECK(set("segment_decay", "10S") == 0);
  CHECK_VALUE("segment_decay", "10s");

  /* Booleans and names */
  CHECK(set("show_stats", "yes") == 0);
  CHECK_VALUE("show_stats", "1");
  CHECK(set("show_stats", "OFF") == 0);
  CHECK_VALUE("show_stats", "0");
  CHECK(set("verbose", "false") == 0);
  CHECK(set("purge_method", "FREE") == 0);
  CHECK_VALUE("purge_method", "free");
  CHECK(set("purge_method", "dontneed") == 0);
  CHECK_VALUE("purge_method", "dontneed");

  /* Errors, printing nothing */
  char path[] = "/tmp/qmt-options-XXXXXX";
  int capture = mkstemp(path);
  CHECK(capture >= 0);
  int saved_stderr = dup(2);
  dup2(capture, 2);
  CHECK_ERROR(set("purge_delay", "banana"), EINVAL);
  CHECK_ERROR(set("purge_delay", "61s"), EINVAL);
  CHECK_ERROR(set("purge_delay", "99999999999999999999999"), EINVAL);
  CHECK_ERROR(set("purge_delay", "-1"), EINVAL);
  CHECK_ERROR(set("purge_delay", "5 ms"), EINVAL);
  CHECK_ERROR(set("purge_method", "sometimes"), EINVAL);
  CHECK_ERROR(set("verbose", "2"), EINVAL);
  CHECK_ERROR(set("arena_reserve", "2t"), EINVAL);
  CHECK_ERROR(set("arena_reserve", "12q"), EINVAL);
  CHECK_ERROR(set("no_such_option", "1"), EINVAL);
  CHECK_ERROR(set("QMALLOC_", "1"), EINVAL);
  CHECK_ERROR(set(NULL, "1"), EINVAL);
  CHECK_ERROR(set("verbose", NULL), EINVAL);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  struct stat st;
  CHECK(fstat(capture, &st) == 0);
  CHECKF(st.st_size == 0, "qm_option_set printed %lld bytes for bad values", (long long)st.st_size);
  close(capture);
  unlink(path);
  CHECK_VALUE("purge_delay", "60s"); /* unchanged by the rejected values */

  char small[4];
  int result = 0;
  errno = 0;
  qmt_option_get("purge_method", small, sizeof small, &result);
  CHECK(result == -1 && errno == ERANGE);
  errno = 0;
  qmt_option_get("nothing", small, sizeof small, &result);
  CHECK(result == -1 && errno == EINVAL);

  /* Variants this library is not */
  CHECK_ERROR(set("debug", "1"), ENOTSUP);
  CHECK_ERROR(set("secure", "on"), ENOTSUP);
  CHECK(set("debug", "0") == 0);
  CHECK_VALUE("debug", "0");

  /* Options fixed at start-up: settable before the first allocation only. The prefixed flavour
   * has allocated nothing with qmalloc yet; a preloaded library may already have served the C
   * library. */
#ifdef QMT_PREFIXED
  CHECK(set("arena_reserve", "64M") == 0);
  CHECK_VALUE("arena_reserve", "64m");
  CHECK(set("arena_reserve", "1536k") == 0);
  CHECK_VALUE("arena_reserve", "1536k");
  CHECK(set("arena_reserve", "4096b") == 0);
  CHECK_VALUE("arena_reserve", "4k");
  CHECK(set("arena_reserve", "1TiB") == 0);
  CHECK_VALUE("arena_reserve", "1t");
  CHECK(set("arena_reserve", "0") == 0);
  CHECK_VALUE("arena_reserve", "0");
  CHECK(set("thp", "1") == 0);
  CHECK(set("thp", "0") == 0);
#endif
  void *p = T_MALLOC(100);
  CHECK(p != NULL);
  CHECK_ERROR(set("arena_reserve", "64m"), EBUSY);
  CHECK_ERROR(set("thp", "1"), EBUSY);
  CHECK(set("arena_reserve", get("arena_reserve")) == 0); /* no change: accepted */
  CHECK(set("purge_delay", "100ms") == 0);                /* run-time options stay settable */
  CHECK(set("segment_decay", "1s") == 0);
  T_FREE(p);
  return check_result("options_api");
}
