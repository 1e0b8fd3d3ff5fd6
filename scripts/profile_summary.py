#!/usr/bin/env python3
"""Sums an `ncu --csv --metrics gpu__time_duration.sum` kernel list per kernel name, in two
phases: the first prefill of cuda_decode_bench (kernels up to the first lm_head-sized GEMM
after the first attention) and the decode steps (kernels after the last prefill). Used by
scripts/profile_kernels.sh.

    profile_summary.py NCU_CSV LAYERS [BATCH] [PREFILL_FORWARDS (default 5)]
"""
import csv
import re
import sys
from collections import Counter, OrderedDict


def short(name):
    name = name.replace("(anonymous namespace)", "anon").replace("<unnamed>", "anon")
    name = re.sub(r"\(.*", "", name)  # drop the argument list
    name = re.sub(r"<.*>", "<>", name)  # template arguments
    return name.split("::")[-1][:60]


def load(path):
    rows = []
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "ns")
        scale = {"ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
        rows.append((short(r["Kernel Name"]), value * scale))
    return rows


def table(title, rows, per):
    agg = OrderedDict()
    for name, us in rows:
        n, t = agg.get(name, (0, 0.0))
        agg[name] = (n + 1, t + us)
    total = sum(t for _, t in agg.values())
    print(f"\n{title}: {len(rows)} kernels, {total:.1f} us ({per})")
    print(f"{'kernel':62} {'count':>6} {'total us':>10} {'mean us':>9} {'share':>6}")
    for name, (n, t) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:62} {n:6d} {t:10.1f} {t / n:9.2f} {t / total:6.1%}")


def main():
    rows = load(sys.argv[1])
    layers = int(sys.argv[2])
    batch = sys.argv[3] if len(sys.argv) > 3 else "1"
    skip = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    if not rows:
        print("no kernels in the ncu output")
        return 1
    # Phases by the embedding gathers: each forward starts with one.
    starts = [i for i, (n, _) in enumerate(rows) if "embedding" in n]
    if len(starts) < 2:
        table("all kernels", rows, f"{layers} layers")
        return 0
    table("first prefill (one forward)", rows[starts[0]:starts[1]], f"{layers} layers")
    # Decode steps: the forwards after the prefills (by default 4 prefill runs + the decode
    # prompt's prefill) whose kernel list is the most common one among them, so that a later
    # run's prefill forwards (cuda_decode_bench prefills again with graphs on) stay out.
    first = skip if len(starts) > skip + 1 else len(starts) - 2
    forwards = [rows[a:b] for a, b in zip(starts[first:], starts[first + 1:])]
    signature = Counter(tuple(n for n, _ in f) for f in forwards).most_common(1)
    steps = [f for f in forwards if signature and tuple(n for n, _ in f) == signature[0][0]]
    if steps:
        left_out = len(forwards) - len(steps)
        table(f"batch-{batch} decode, {len(steps)} steps ({left_out} other forwards left out)",
              [k for f in steps for k in f], f"{layers} layers, {len(steps)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
