"""python-objects: the Python program of qmalloc-bench's `python` and `python-malloc` workloads.

Models: an ordinary CPU-bound Python program, whose time goes into making and dropping small
objects (dicts, lists, tuples, strings, instances, ints and floats) rather than into C extensions.
Each round runs six phases on data made from a seeded random generator:

    records      order rows as dicts, grouped per customer into dicts of lists, then totalled
    json         a slice of the rows serialised to JSON text and parsed back
    objects      instances of a small class, sorted on two keys, the best kept
    interpreter  random arithmetic programs tokenised, parsed into tuples and evaluated
    graph        shortest paths (Dijkstra, heapq) over a random sparse graph of dicts
    text         words split, counted, formatted and joined again

A cache dict lives across rounds and is trimmed to a bound, so some objects outlive their round
while most die in it. The work is fixed by --size (and --seed), never by time. Prints one JSON line:
{"workload": NAME, "ops": rounds, "checksum": N}; the checksum depends on the size and seed only,
not on the allocator (the runner fixes PYTHONHASHSEED, and no result depends on set order).

    python3 python-objects.py [--size=tiny|quick|full] [--seed=N] [--name=NAME]
"""

import argparse
import heapq
import json
import random

ROUNDS = {"tiny": 1, "quick": 1, "full": 24}
ROWS_PER_ROUND = {"tiny": 400, "quick": 3000, "full": 3000}
CACHE_LIMIT = 20000
MODULUS = (1 << 61) - 1  # checksums are kept below a Mersenne prime


def mix(checksum, value):
    return (checksum * 1000003 + value) % MODULUS


def text_hash(text):
    """A hash of a string that does not depend on PYTHONHASHSEED."""
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % MODULUS
    return value


def make_rows(rng, count):
    products = [f"product-{i:03d}" for i in range(200)]
    return [{"order": i, "customer": f"customer-{rng.randrange(count // 10 + 1)}",
             "items": [{"product": rng.choice(products), "quantity": rng.randint(1, 9),
                        "price": round(rng.uniform(0.5, 99.0), 2)} for _ in range(rng.randint(1, 5))],
             "tags": tuple(rng.sample(("new", "gift", "express", "bulk", "repeat", "trial"), rng.randint(0, 3)))}
            for i in range(count)]


def phase_records(rows):
    by_customer = {}
    for row in rows:
        by_customer.setdefault(row["customer"], []).append(row)
    totals = {}
    for customer, orders in by_customer.items():
        lines = [(item["product"], item["quantity"] * item["price"]) for order in orders for item in order["items"]]
        per_product = {}
        for product, amount in lines:
            per_product[product] = per_product.get(product, 0.0) + amount
        totals[customer] = (len(orders), round(sum(per_product.values()), 2), max(per_product, key=per_product.get))
    checksum = 0
    for customer in sorted(totals):
        count, total, top = totals[customer]
        checksum = mix(checksum, count * 7 + int(total * 100) + text_hash(top))
    return checksum, totals


def phase_json(rows):
    text = json.dumps(rows[: len(rows) // 2], sort_keys=True)
    back = json.loads(text)
    return mix(len(text), sum(len(row["items"]) for row in back))


class Candidate:
    def __init__(self, name, score, age, history):
        self.name, self.score, self.age, self.history = name, score, age, history

    def key(self):
        return (-self.score, self.age, self.name)


def phase_objects(rng, count):
    people = [Candidate(f"c{rng.randrange(10**6)}", rng.randrange(1000), rng.randrange(18, 90),
                        [rng.random() for _ in range(rng.randrange(1, 8))]) for _ in range(count)]
    people.sort(key=Candidate.key)
    best = people[: count // 20]
    by_age = sorted(best, key=lambda c: (c.age, sum(c.history)))
    checksum = 0
    for c in by_age:
        checksum = mix(checksum, c.score * 100 + c.age)
    return checksum


# The toy interpreter: programs of assignments `name = expression` over + - * and parentheses.

def tokenize(source):
    tokens, i = [], 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            j = i
            while j < len(source) and source[j].isdigit():
                j += 1
            tokens.append(("num", int(source[i:j])))
            i = j
        elif ch.isalpha():
            j = i
            while j < len(source) and source[j].isalnum():
                j += 1
            tokens.append(("name", source[i:j]))
            i = j
        else:
            tokens.append(("op", ch))
            i += 1
    return tokens


def parse_expression(tokens, pos):
    """expression := term (('+' | '-') term)*, as nested tuples (op, left, right)."""
    node, pos = parse_term(tokens, pos)
    while pos < len(tokens) and tokens[pos] in (("op", "+"), ("op", "-")):
        right, next_pos = parse_term(tokens, pos + 1)
        node, pos = (tokens[pos][1], node, right), next_pos
    return node, pos


def parse_term(tokens, pos):
    node, pos = parse_atom(tokens, pos)
    while pos < len(tokens) and tokens[pos] == ("op", "*"):
        right, next_pos = parse_atom(tokens, pos + 1)
        node, pos = ("*", node, right), next_pos
    return node, pos


def parse_atom(tokens, pos):
    kind, value = tokens[pos]
    if (kind, value) == ("op", "("):
        node, pos = parse_expression(tokens, pos + 1)
        return node, pos + 1  # the closing parenthesis
    return (kind, value), pos + 1


def evaluate(node, variables):
    if node[0] == "num":
        return node[1]
    if node[0] == "name":
        return variables.get(node[1], 1)
    left, right = evaluate(node[1], variables), evaluate(node[2], variables)
    result = left + right if node[0] == "+" else left - right if node[0] == "-" else left * right
    return result % 1000003


def random_expression(rng, names, depth):
    if depth == 0 or rng.random() < 0.3:
        return str(rng.randrange(100)) if rng.random() < 0.5 else rng.choice(names)
    left, right = random_expression(rng, names, depth - 1), random_expression(rng, names, depth - 1)
    expression = f"{left} {rng.choice('+-*')} {right}"
    return f"({expression})" if rng.random() < 0.5 else expression


def phase_interpreter(rng, statements):
    names = [f"v{i}" for i in range(12)]
    program = [(rng.choice(names), random_expression(rng, names, 5)) for _ in range(statements)]
    variables = {}
    for target, source in program:
        tree, _ = parse_expression(tokenize(source), 0)
        variables[target] = evaluate(tree, variables)
    checksum = 0
    for name in sorted(variables):
        checksum = mix(checksum, variables[name])
    return checksum


def phase_graph(rng, nodes):
    graph = {f"n{i}": {} for i in range(nodes)}
    keys = list(graph)
    for i, key in enumerate(keys):
        for _ in range(4):
            graph[key][keys[(i + rng.randrange(1, nodes)) % nodes]] = rng.randint(1, 50)
    distance, queue = {keys[0]: 0}, [(0, keys[0])]
    while queue:
        d, node = heapq.heappop(queue)
        if d > distance[node]:
            continue
        for neighbour, weight in graph[node].items():
            candidate = d + weight
            if candidate < distance.get(neighbour, candidate + 1):
                distance[neighbour] = candidate
                heapq.heappush(queue, (candidate, neighbour))
    return mix(len(distance), sum(distance.values()))


def phase_text(rng, words):
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(500)]
    text = " ".join(rng.choice(vocabulary) for _ in range(words))
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    report = "\n".join(f"{word:>10}: {count:5d} {'*' * (count // 10)}"
                       for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    upper = [line.upper().replace("*", "#") for line in report.splitlines()]
    return mix(len(report), text_hash("".join(upper[:50])))


def run(size, seed):
    rng, checksum, cache = random.Random(seed), 0, {}
    rows_per_round = ROWS_PER_ROUND[size]
    for round_number in range(ROUNDS[size]):
        rows = make_rows(rng, rows_per_round)
        records_sum, totals = phase_records(rows)
        checksum = mix(checksum, records_sum)
        checksum = mix(checksum, phase_json(rows))
        checksum = mix(checksum, phase_objects(rng, rows_per_round * 2))
        checksum = mix(checksum, phase_interpreter(rng, rows_per_round // 4))
        checksum = mix(checksum, phase_graph(rng, rows_per_round))
        checksum = mix(checksum, phase_text(rng, rows_per_round * 10))
        # Some of this round's results outlive it; the oldest entries go when the cache is full.
        for customer, total in totals.items():
            cache[(round_number, customer)] = total
        while len(cache) > CACHE_LIMIT:
            del cache[next(iter(cache))]
    return mix(checksum, len(cache))


def main():
    parser = argparse.ArgumentParser(description="An allocation-heavy Python program for qmalloc-bench.")
    parser.add_argument("--size", choices=tuple(ROUNDS), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", default="python", help="the workload name printed in the JSON line")
    args = parser.parse_args()
    print(json.dumps({"workload": args.name, "ops": ROUNDS[args.size], "checksum": run(args.size, args.seed)}))


if __name__ == "__main__":
    main()
