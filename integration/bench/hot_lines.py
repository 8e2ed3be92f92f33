#!/usr/bin/env python3
"""How much code a transaction runs through: the 64-byte instruction cache lines executed.

Reads two callgrind outputs written with --dump-instr=yes (a short run and a longer run of
the same binary, as callgrind.sh makes them) and the number of transactions between them.
A line counts as hot when the difference in instructions executed in it, divided by the
difference in transactions, is at least THRESHOLD (default 1: on average at least one
instruction per transaction). Prints the hot lines and bytes, and the ten objects or
functions holding most of them.

Usage: hot_lines.py SHORT.out LONG.out TRANSACTIONS [THRESHOLD]
"""
import collections
import sys

LINE = 64


def position(token, previous):
    """One compressed position of callgrind's format: absolute, +N, -N or * (the same)."""
    if token == "*":
        return previous
    if token[0] in "+-":
        return previous + int(token, 0)
    return int(token, 0)


def instruction_costs(path):
    """Instructions executed per instruction address, and the function holding each address."""
    costs = collections.Counter()
    owner = {}
    names = {}
    function = "?"
    address = 0
    skip_next_cost = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            head = line[0]
            if head.isdigit() or head in "+-*":
                fields = line.split()
                address = position(fields[0], address)
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                if len(fields) > 2:
                    costs[address] += int(fields[2])
                    owner[address] = function
            elif line.startswith("calls="):
                skip_next_cost = True
            elif line.startswith("fn="):
                function = compressed_name(line[3:], names)
            elif line.startswith(("cfn=", "cfi=", "cfl=", "cob=")):
                compressed_name(line.split("=", 1)[1], names)
    return costs, owner


def compressed_name(text, names):
    """Callgrind's name compression: "(N) name" defines N, "(N)" refers to it."""
    if text.startswith("("):
        number, _, rest = text.partition(")")
        if rest.strip():
            names[number] = rest.strip()
        return names.get(number, text)
    return text


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    short, _ = instruction_costs(sys.argv[1])
    long_, owner = instruction_costs(sys.argv[2])
    transactions = float(sys.argv[3])
    threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    per_line = collections.Counter()
    line_owner = {}
    for address, cost in long_.items():
        per_line[address // LINE] += cost - short.get(address, 0)
        line_owner.setdefault(address // LINE, owner[address])
    hot = [l for l, c in per_line.items() if c / transactions >= threshold]
    print(f"{len(hot)} hot lines ({len(hot) * LINE / 1024:.1f} KiB) at >= {threshold} instructions per transaction")
    by_function = collections.Counter(line_owner[l] for l in hot)
    for name, count in by_function.most_common(int(sys.argv[5]) if len(sys.argv) > 5 else 25):
        print(f"{count:5d}  {name[:140]}")


if __name__ == "__main__":
    main()
