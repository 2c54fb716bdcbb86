#!/bin/sh
# Installs what the benchmark suite compares qmalloc with and draws charts with, on Debian and
# Ubuntu: jemalloc, tcmalloc (minimal), mimalloc, gnuplot, and valgrind for the fast-path counts.
# As root it runs apt-get; otherwise it prints the command to run.
set -eu

packages="libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox valgrind"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-peers.sh: no apt-get here; install jemalloc, tcmalloc, mimalloc, gnuplot and valgrind" >&2
  echo "with the system's package manager (libjemalloc.so.2, libtcmalloc_minimal.so.4, libmimalloc.so.2)." >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Run as root:"
  echo
  # Word splitting of $packages is intended: one argument per package.
  # shellcheck disable=SC2086
  echo "  apt-get update && apt-get install -y --no-install-recommends" $packages
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $packages </dev/null
