#!/usr/bin/env python3
"""make_seeds.py - writes the hand-written inputs of the fuzz corpus (tests/fuzz/corpus/seed-*).

Each seed is a short program in the encoding of fuzz_api.c (docs/FUZZING.md): one opcode byte, then
the argument bytes of the operation. There is one seed per family of operations, so that every
operation is reached from the start; the other files of the corpus come from fuzzer runs.
Run it from anywhere: python3 tests/fuzz/make_seeds.py
"""
import os
import struct

OPS = """MALLOC CALLOC REALLOC REALLOCARRAY FREE FREE_SIZED FREE_ALIGNED_SIZED POSIX_MEMALIGN
ALIGNED_ALLOC MEMALIGN VALLOC PVALLOC USABLE_SIZE HEAP_NEW HEAP_MALLOC HEAP_CALLOC HEAP_ALIGNED_ALLOC
HEAP_REALLOC HEAP_DESTROY POOL_NEW POOL_ALLOC POOL_FREE POOL_DESTROY ARENA_NEW ARENA_ALLOC
ARENA_ALIGNED_ALLOC ARENA_MARK ARENA_RESET_TO ARENA_RESET ARENA_DESTROY STACK_NEW STACK_ALLOC
STACK_FREE STACK_DESTROY WORKER_FREE WORKER_ALLOC WORKER_THREAD_DONE OPTION TRIM STATS""".split()
OP = {name: i for i, name in enumerate(OPS)}

# Size selectors (read_size): the selector byte, then a 16-bit little-endian n.
TINY, SMALL4K, SMALL, LARGE, EDGE, HUGE, ABSURD, TINY64 = range(8)


def size(sel, n):
    return bytes([sel]) + struct.pack("<H", n)


def op(name, *args):
    out = bytes([OP[name]])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out


def u16(n):
    return struct.pack("<H", n)


SEEDS = {
    "malloc": [op("MALLOC", 0, size(TINY, 24)), op("MALLOC", 1, size(SMALL, 5000)), op("MALLOC", 2, size(LARGE, 3000)),
               op("MALLOC", 3, size(HUGE, 100)), op("MALLOC", 4, size(TINY64, 0)), op("USABLE_SIZE", 0),
               op("USABLE_SIZE", 2), op("FREE", 0), op("FREE", 1), op("FREE", 2), op("FREE", 3), op("FREE", 4)],
    "calloc": [op("CALLOC", 0, 7, size(SMALL, 700)), op("CALLOC", 1, 0, size(TINY, 5)),
               op("CALLOC", 2, 3, size(LARGE, 2000)), op("CALLOC", 3, 9, size(ABSURD, 0)),
               op("CALLOC", 4, 1, size(HUGE, 10)), op("FREE", 0), op("FREE_SIZED", 2)],
    "realloc": [op("MALLOC", 0, size(TINY, 40)), op("REALLOC", 0, size(SMALL, 300)),
                op("REALLOC", 0, size(LARGE, 100)), op("REALLOC", 0, size(HUGE, 50)),
                op("REALLOC", 0, size(HUGE, 3000)), op("REALLOC", 0, size(SMALL, 10)),
                op("REALLOC", 0, size(ABSURD, 1)), op("REALLOC", 0, size(TINY, 0)), op("REALLOC", 1, size(TINY, 17))],
    "reallocarray": [op("REALLOCARRAY", 0, 3, size(SMALL, 999)), op("REALLOCARRAY", 0, 7, size(LARGE, 9)),
                     op("REALLOCARRAY", 0, 2, size(ABSURD, 0)), op("REALLOCARRAY", 0, 1, size(TINY, 0))],
    "free-sized": [op("MALLOC", 0, size(TINY, 100)), op("ALIGNED_ALLOC", 1, 9, size(SMALL, 2000)),
                   op("FREE_SIZED", 0), op("FREE_ALIGNED_SIZED", 1), op("FREE_SIZED", 5)],
    "aligned": [op("POSIX_MEMALIGN", 0, 12, size(SMALL, 100)), op("POSIX_MEMALIGN", 1, 2, size(TINY, 8)),
                op("POSIX_MEMALIGN", 2, 25, size(TINY, 8)), op("ALIGNED_ALLOC", 3, 21, size(LARGE, 300)),
                op("ALIGNED_ALLOC", 4, 24, size(TINY, 3)), op("ALIGNED_ALLOC", 5, 16, size(HUGE, 1)),
                op("MEMALIGN", 6, 26, size(SMALL, 3000)), op("MEMALIGN", 7, 5, size(EDGE, 5)),
                op("POSIX_MEMALIGN", 8, 23, size(ABSURD, 2)), op("FREE_ALIGNED_SIZED", 0),
                op("FREE_ALIGNED_SIZED", 3), op("FREE_ALIGNED_SIZED", 5), op("FREE_ALIGNED_SIZED", 6)],
    "valloc": [op("VALLOC", 0, size(TINY, 1)), op("PVALLOC", 1, size(TINY, 0)), op("PVALLOC", 2, size(SMALL, 4097)),
               op("VALLOC", 3, size(ABSURD, 3)), op("USABLE_SIZE", 1), op("FREE_ALIGNED_SIZED", 0)],
    "edges": [op("MALLOC", i, size(EDGE, n)) for i, n in enumerate([0, 1, 0x0f02, 0x1003, 0x1005, 0x2007, 0x2006,
                                                                     0x0804, 0x2008])] + [op("TRIM", 0)],
    "heap": [op("HEAP_NEW", 0), op("HEAP_MALLOC", 0, 0, size(SMALL, 100)), op("HEAP_CALLOC", 0, 1, 5, size(SMALL, 900)),
             op("HEAP_ALIGNED_ALLOC", 0, 2, 13, size(SMALL, 33)), op("HEAP_ALIGNED_ALLOC", 0, 3, 27, size(TINY, 3)),
             op("HEAP_MALLOC", 0, 4, size(HUGE, 7)), op("HEAP_REALLOC", 0, 0, size(LARGE, 70)),
             op("HEAP_REALLOC", 0, 5, size(TINY, 9)), op("REALLOC", 1, size(SMALL, 2000)), op("FREE", 2),
             op("HEAP_NEW", 1), op("HEAP_REALLOC", 1, 1, size(SMALL, 20)), op("HEAP_DESTROY", 0),
             op("HEAP_MALLOC", 1, 6, size(ABSURD, 4)), op("HEAP_DESTROY", 1)],
    "pool": [op("POOL_NEW", 0, 0, u16(48), 0, 0), op("POOL_ALLOC", 0, 0), op("POOL_ALLOC", 0, 1),
             op("POOL_ALLOC", 0, 2), op("POOL_FREE", 1), op("POOL_ALLOC", 0, 1), op("POOL_NEW", 1, 3, u16(200), 7, 1),
             op("POOL_ALLOC", 1, 3), op("POOL_ALLOC", 1, 4), op("WORKER_FREE", u16(0x18), u16(0), 0),
             op("POOL_NEW", 1, 0, u16(8), 14, 0), op("POOL_DESTROY", 0), op("POOL_DESTROY", 1)],
    "arena": [op("ARENA_NEW", 0, u16(0)), op("ARENA_ALLOC", 0, size(SMALL, 1000)), op("ARENA_MARK", 0),
              op("ARENA_ALLOC", 0, size(SMALL, 30000)), op("ARENA_ALIGNED_ALLOC", 0, 12, size(TINY, 77)),
              op("ARENA_MARK", 0), op("ARENA_ALLOC", 0, size(LARGE, 500)), op("ARENA_ALIGNED_ALLOC", 0, 24, size(TINY, 1)),
              op("ARENA_RESET_TO", 0, 1), op("ARENA_ALLOC", 0, size(TINY, 0)), op("ARENA_RESET_TO", 0, 0),
              op("ARENA_RESET", 0, 0), op("ARENA_NEW", 1, u16(64)), op("ARENA_ALLOC", 1, size(SMALL, 3000)),
              op("ARENA_ALLOC", 1, size(ABSURD, 5)), op("ARENA_DESTROY", 0)],
    "stack": [op("STACK_NEW", 0, u16(256)), op("STACK_ALLOC", 0, size(TINY, 100)), op("STACK_ALLOC", 0, size(SMALL, 3000)),
              op("STACK_ALLOC", 0, size(SMALL, 900)), op("STACK_FREE", 0), op("STACK_ALLOC", 0, size(TINY, 0)),
              op("STACK_FREE", 0), op("STACK_FREE", 0), op("STACK_FREE", 0), op("STACK_FREE", 0),
              op("STACK_NEW", 1, u16(0)), op("STACK_ALLOC", 1, size(TINY, 0)), op("STACK_DESTROY", 0)],
    "threads": [op("WORKER_ALLOC", 0, size(TINY, 48)), op("WORKER_ALLOC", 1, size(LARGE, 10)),
                op("WORKER_ALLOC", 2, size(HUGE, 1)), op("MALLOC", 3, size(SMALL, 64)), op("HEAP_NEW", 0),
                op("HEAP_MALLOC", 0, 4, size(TINY, 32)), op("REALLOC", 0, size(TINY, 200)),
                op("WORKER_FREE", u16(0x1d), u16(0), 0x0c), op("WORKER_ALLOC", 5, size(SMALL, 9000)),
                op("WORKER_THREAD_DONE"), op("TRIM", 0), op("FREE", 1), op("WORKER_ALLOC", 6, size(ABSURD, 6)),
                op("FREE", 5)],
    "options": [op("OPTION", i) for i in range(16)] + [op("MALLOC", 0, size(LARGE, 100)), op("FREE", 0),
                                                        op("OPTION", 0), op("TRIM", 1), op("STATS", 0), op("STATS", 1)],
}


def main():
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(corpus, exist_ok=True)
    for name, ops in SEEDS.items():
        with open(os.path.join(corpus, "seed-" + name), "wb") as f:
            f.write(b"".join(ops))


if __name__ == "__main__":
    main()
