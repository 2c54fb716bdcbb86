/* The library's zero-initialised globals (.bss) cost every process the OS pages of them it writes,
 * and the 64 MiB segment map lies among them (DESIGN.md, section 9, "The library's own resident
 * pages"): a program  should find one page of small globals resident there, besides the map's pages
 * for its own segments. A large array between small globals splits them over one more page in every
 * process (the arena's free list did, until it was mapped with the arena).
 *
 * Preload flavour only: in the prefixed one the library's globals share the test program's .bss.
 * The main thread and a second one allocate small and large blocks (no huge ones, whose mappings
 * may lie anywhere); the segments of those blocks give the map pages the process may have written.
 * Then mincore counts the resident pages of the anonymous mapping that follows the library's file. */
#include "qmt.h"

#define BLOCKS 64
#define MAX_SEGMENTS (2 * BLOCKS)

static uintptr_t segments[MAX_SEGMENTS];
static size_t segment_count;

static void note_segment(const void *p) {
  uintptr_t s = qmt_segment_of(p);
  for (size_t i = 0; i < segment_count; i++)
    if (segments[i] == s)
      return;
  if (segment_count < MAX_SEGMENTS)
    segments[segment_count++] = s;
}

/* Allocates blocks of 16 B to 256 KiB, notes their segments, frees half of them. */
static void *allocate_some(void *arg) {
  (void)arg;
  void *blocks[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) {
    size_t size = (size_t)16 << (i % 15);
    blocks[i] = T_MALLOC(size);
    CHECK(blocks[i] != NULL);
    if (blocks[i] != NULL) {
      memset(blocks[i], i, size);
      note_segment(blocks[i]);
    }
  }
  for (int i = 0; i < BLOCKS; i += 2)
    T_FREE(blocks[i]);
  return NULL;
}

/* The map pages that the noted segments' entries lie in (one byte per segment). */
static size_t map_pages_written(size_t os_page) {
  size_t count = 0;
  for (size_t i = 0; i < segment_count; i++) {
    uintptr_t page = segments[i] / QMT_SEGMENT_SIZE / os_page;
    bool seen = false;
    for (size_t j = 0; j < i; j++)
      seen = seen || segments[j] / QMT_SEGMENT_SIZE / os_page == page;
    count += seen ? 0 : 1;
  }
  return count;
}

/* Finds the anonymous mapping right after the library's last file mapping: its .bss. */
static bool find_library_bss(uintptr_t *start, uintptr_t *end) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL)
    return false;
  char line[512];
  uintptr_t library_end = 0;
  bool found = false;
  while (!found && fgets(line, sizeof line, maps) != NULL) {
    unsigned long from, to;
    char path[400] = "";
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %399s", &from, &to, path) < 2)
      continue;
    if (strstr(path, "libqmalloc") != NULL) {
      library_end = to;
    } else if (library_end != 0) {
      found = path[0] == '\0' && from == library_end;
      *start = from;
      *end = to;
      library_end = 0;
    }
  }
  fclose(maps);
  return found;
}

/* Counts the resident pages of the library's .bss after the work above, and checks the bound. */
static void check_globals(void) {
  allocate_some(NULL);
  qmt_in_thread(allocate_some);
  uintptr_t start = 0, end = 0;
  CHECKF(find_library_bss(&start, &end),
         "no anonymous mapping follows the library's file in /proc/self/maps");
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  size_t pages = (end - start) / os_page;
  unsigned char *resident = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(resident != MAP_FAILED);
  if (start == 0 || resident == MAP_FAILED || mincore((void *)start, end - start, resident) != 0)
    return;
  size_t count = 0;
  for (size_t i = 0; i < pages; i++)
    count += resident[i] & 1;
  size_t map_pages = map_pages_written(os_page);
  fprintf(
      stderr,
      "library_globals: %zu of the %zu pages of the library's .bss resident; %zu segments, %zu map pages\n",
      count, pages, segment_count, map_pages);
  CHECKF(count <= 1 + map_pages,
         "%zu pages of the library's .bss are resident: more than one page of globals besides the segment "
         "map's %zu",
         count, map_pages);
}

int main(void) {
  qmt_start("library_globals");
#ifdef QMT_PREFIXED
  bool applies = false; /* the library's globals are the program's */
#else
  bool applies = qmt_strict && !qmt_thp_always();
#endif
  if (applies)
    check_globals();
  else
    fprintf(stderr,
            "library_globals: needs the preloaded library and no transparent huge pages always: skipped\n");
  return check_result("library_globals");
}
