/* stats_api.h - the statistics and option functions for the tests of both flavours: called directly
 * in the prefixed flavour, looked up with dlsym when the library is preloaded (the program is not
 * linked with it then). Each returns false when the function is missing (not running on qmalloc).
 */
#ifndef QMT_STATS_API_H
#define QMT_STATS_API_H

#include "qmt.h"

#ifdef QMT_PREFIXED
static inline bool qmt_stats_get(qm_stats_t *out) {
  qm_stats_get(out);
  return true;
}
static inline bool qmt_option_set(const char *name, const char *value, int *result) {
  *result = qm_option_set(name, value);
  return true;
}
static inline bool qmt_option_get(const char *name, char *buf, size_t size, int *result) {
  *result = qm_option_get(name, buf, size);
  return true;
}
static inline bool qmt_trim(void) {
  qm_trim(0);
  return true;
}
#else
static inline bool qmt_stats_get(qm_stats_t *out) {
  void (*fn)(qm_stats_t *) = (void (*)(qm_stats_t *))qmt_sym("qm_stats_get");
  memset(out, 0, sizeof *out);
  if (!fn) {
    CHECKF(!qmt_strict, "qm_stats_get is not exported");
    return false;
  }
  fn(out);
  return true;
}
static inline bool qmt_option_set(const char *name, const char *value, int *result) {
  int (*fn)(const char *, const char *) = (int (*)(const char *, const char *))qmt_sym("qm_option_set");
  if (!fn) {
    CHECKF(!qmt_strict, "qm_option_set is not exported");
    return false;
  }
  *result = fn(name, value);
  return true;
}
static inline bool qmt_option_get(const char *name, char *buf, size_t size, int *result) {
  int (*fn)(const char *, char *, size_t) = (int (*)(const char *, char *, size_t))qmt_sym("qm_option_get");
  if (!fn) {
    CHECKF(!qmt_strict, "qm_option_get is not exported");
    return false;
  }
  *result = fn(name, buf, size);
  return true;
}
static inline bool qmt_trim(void) {
  malloc_trim(0);
  return true;
}
#endif

/* The row of the class that serves `size` bytes (small sizes only): the first row whose block size
 * is at least `size`. */
static inline size_t qmt_stats_row(const qm_stats_t *stats, size_t size) {
  for (size_t r = 0; r < QM_STATS_SMALL_CLASSES; r++)
    if (stats->rows[r].block_size >= size)
      return r;
  return QM_STATS_SMALL_CLASSES - 1;
}

#endif /* QMT_STATS_API_H */
