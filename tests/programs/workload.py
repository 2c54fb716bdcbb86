"""An allocation-heavy Python workload with a deterministic result: dicts, lists, strings, bytes,
sets and objects of many sizes are built, grown, shrunk and dropped; the checksum printed at the
end depends only on the computation, so it is the same whichever malloc serves Python."""
import zlib


def lcg(seed):
    while True:
        seed = (seed * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield seed >> 33


class Node:
    __slots__ = ("key", "value", "children")

    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []


def main():
    rnd = lcg(12345)
    crc = 0

    # Dicts of strings, grown and shrunk.
    d = {}
    for i in range(200000):
        r = next(rnd)
        d["k%d_%d" % (i, r % 1000)] = "v" * (r % 300)
        if i % 3 == 0 and d:
            d.pop(next(iter(d)))
    crc = zlib.crc32(repr(sorted(d.items())[:5000]).encode(), crc)
    total = sum(len(v) for v in d.values())
    del d

    # Lists of lists and big strings (large and huge blocks).
    lists = [[next(rnd) % 1000 for _ in range(next(rnd) % 200)] for _ in range(20000)]
    crc = zlib.crc32(str(sum(map(sum, lists))).encode(), crc)
    big = "".join(str(x) for x in range(300000))
    crc = zlib.crc32(big.encode(), crc)
    huge = b"q" * (8 << 20) + bytes(range(256)) * 4096
    crc = zlib.crc32(huge, crc)
    del lists, big, huge

    # A growing bytearray (a chain of reallocs) and string joins.
    ba = bytearray()
    for i in range(100000):
        ba += bytes([i % 251]) * (i % 50)
    crc = zlib.crc32(bytes(ba), crc)
    parts = ["%08x" % next(rnd) for _ in range(100000)]
    crc = zlib.crc32("|".join(parts).encode(), crc)

    # A tree of objects, sets and tuples.
    root = Node(0, "root")
    nodes = [root]
    for i in range(1, 100000):
        parent = nodes[next(rnd) % len(nodes)]
        n = Node(i, ("x" * (i % 40), i))
        parent.children.append(n)
        nodes.append(n)
    depth_sum = 0
    stack = [(root, 0)]
    while stack:
        n, depth = stack.pop()
        depth_sum += depth
        stack.extend((c, depth + 1) for c in n.children)
    s = set(x.key * 7 % 100003 for x in nodes)
    crc = zlib.crc32(("%d %d" % (depth_sum, len(s))).encode(), crc)
    del nodes, root, s

    print("total %d crc %08x" % (total, crc))


main()
