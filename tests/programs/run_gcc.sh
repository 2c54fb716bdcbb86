#!/bin/sh
# run_gcc.sh QMALLOC_RUN
# Compiles a small C program with gcc under qmalloc-run (the driver, cc1, as and ld all run with
# qmalloc), runs it under qmalloc-run and checks its output. Exits 77 (skip) without gcc.
set -u
run=$1
command -v gcc >/dev/null 2>&1 || { echo "SKIP: gcc not found"; exit 77; }
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-gcc.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/prog.c" <<'CODE'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct item {
  struct item *next;
  char name[24];
  unsigned value;
};

static unsigned count_primes(unsigned limit) {
  char *sieve = calloc(limit + 1, 1);
  unsigned n = 0;
  if (!sieve)
    return 0;
  for (unsigned i = 2; i <= limit; i++) {
    if (sieve[i])
      continue;
    n++;
    for (unsigned long j = (unsigned long)i * i; j <= limit; j += i)
      sieve[j] = 1;
  }
  free(sieve);
  return n;
}

int main(void) {
  struct item *head = NULL;
  for (unsigned i = 0; i < 100000; i++) {
    struct item *it = malloc(sizeof *it);
    if (!it)
      return 1;
    snprintf(it->name, sizeof it->name, "item-%u", i);
    it->value = i * 7u;
    it->next = head;
    head = it;
  }
  unsigned long sum = 0;
  size_t names = 0;
  while (head) {
    struct item *next = head->next;
    sum += head->value;
    names += strlen(head->name);
    free(head);
    head = next;
  }
  char *buf = NULL;
  size_t len = 0;
  for (unsigned i = 0; i < 2000; i++) {
    buf = realloc(buf, len + 1000);
    if (!buf)
      return 1;
    memset(buf + len, 'a' + i % 26, 1000);
    len += 1000;
  }
  unsigned long letters = 0;
  for (size_t i = 0; i < len; i++)
    letters += (unsigned long)(buf[i] - 'a');
  free(buf);
  printf("primes %u sum %lu names %zu letters %lu\n", count_primes(1000000), sum, names, letters);
  return 0;
}
CODE

"$run" gcc -O2 -Wall -o "$tmp/prog" "$tmp/prog.c" || { echo "FAIL: gcc under qmalloc-run failed"; exit 1; }
got=$("$run" "$tmp/prog") || { echo "FAIL: the program failed under qmalloc-run"; exit 1; }
want="primes 78498 sum 34999650000 names 988890 letters 24976000"
echo "output: $got"
[ "$got" = "$want" ] || { echo "FAIL: expected: $want"; exit 1; }
echo PASS
