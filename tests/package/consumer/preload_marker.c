/* An inert library for LD_PRELOAD, so the test can check that qmalloc-run keeps an existing preload. */
int qm_package_test_marker(void);
int qm_package_test_marker(void) { return 42; }
