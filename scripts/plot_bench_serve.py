#!/usr/bin/env python3
"""Plots `autoglm bench serve` results against concurrency: output throughput, and P50/P99
inter-token latency, from bench_serve_c<N>.json files (scripts/gpu_check.sh writes them). Run on
the GPU machine, which has matplotlib; the PNG is committed under docs/.

    plot_bench_serve.py OUT.png TITLE bench_serve_c1.json bench_serve_c8.json ...
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def main():
    out, title, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for path in paths:
        r = json.load(open(path))
        rows.append((r["parameters"]["max_concurrency"], r["output_throughput"],
                     r["itl"]["p50_ms"], r["itl"]["p99_ms"], r["ttft"]["p99_ms"]))
    rows.sort()
    conc = [r[0] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(conc, [r[1] for r in rows], "o-")
    left.set(xscale="log", xlabel="concurrent clients", ylabel="output tokens / s",
             title="Throughput")
    right.plot(conc, [r[2] for r in rows], "o-", label="ITL p50")
    right.plot(conc, [r[3] for r in rows], "s-", label="ITL p99")
    right.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms",
              title="Inter-token latency")
    right.legend()
    for axis in (left, right):
        axis.set_xticks(conc)
        axis.set_xticklabels([str(c) for c in conc])
        axis.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    for c, tput, p50, p99, ttft in rows:
        print(f"concurrency {c}: {tput:.0f} tok/s, ITL p50 {p50:.1f} p99 {p99:.1f} ms, "
              f"TTFT p99 {ttft:.0f} ms")


if __name__ == "__main__":
    main()
