/* The library's zero-initialised globals (.bss) cost every process the OS pages of them it writes,
 * and the 64 MiB segment map lies among them (DESIGN.md, section 9, "The library's own resident
 * pages"): a program should find one page of small globals resident there, besides the map's pages
 * for its own segments. A large array between small globals splits them over one more page in every
 * process (the arena's free list did, until it was mapped with the arena).
 *
 * Preload flavour only: in the prefixed one the library's globals share the test program's .bss.
 * The main thread and a second one allocate small and large blocks (no huge ones, whose mappings
 * may lie anywhere); the segments of those blocks give the map pages the process may have written.
 * Then mincore counts the resident pages of the .bss past the file's last page (found from the
 * library's program headers). */
#include "qmt.h"

#include <link.h>

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

/* The OS pages of the library's .bss past its file's last page (the part the loader maps anonymous),
 * from the library's writable load segment. */
struct bss_search {
  uintptr_t start, end;
  size_t os_page;
  bool found;
};

static int find_bss_in(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct bss_search *search = arg;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libqmalloc") == NULL)
    return 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) == 0 || ph->p_memsz <= ph->p_filesz)
      continue;
    uintptr_t mask = search->os_page - 1;
    uintptr_t file_end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
    uintptr_t memory_end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    search->start = (file_end + mask) & ~mask;
    search->end = (memory_end + mask) & ~mask;
    search->found = search->end > search->start;
    return 1;
  }
  return 0;
}

/* Counts the resident pages of the library's .bss after the work above, and checks the bound. */
static void check_globals(void) {
  allocate_some(NULL);
  qmt_in_thread(allocate_some);
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  struct bss_search search = {.os_page = os_page};
  dl_iterate_phdr(find_bss_in, &search);
  CHECKF(search.found, "the loaded library's writable segment has no .bss past its file's pages");
  uintptr_t start = search.found ? search.start : 0, end = search.found ? search.end : 0;
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
