#!/usr/bin/env python3
"""HF `tokenizers` encode throughput on the same corpus as bench/tokenizer_bench.cpp.

Usage (single-threaded, as the C++ benchmark):
  TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 \
    python bench/tokenizer_bench_hf.py TOKENIZER_JSON CORPUS.txt... [--seconds S] [--whole]
Encodes each line one at a time (add_special_tokens=False), after one warm-up pass, and with
encode_batch (single Rayon thread). Prints MB/s and tokens/s.
"""
import argparse
import time

from tokenizers import Tokenizer


def timed(fn, min_seconds):
    passes, start = 0, time.perf_counter()
    while True:
        fn()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / passes


def report(what, seconds, nbytes, ntokens):
    print(f"{what:<8} {nbytes / seconds / 1e6:8.2f} MB/s  {ntokens / seconds:10.0f} tokens/s  "
          f"({nbytes} bytes, {ntokens} tokens per pass, {seconds:.2f} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--whole", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(args.tokenizer)
    print(f"load     {time.perf_counter() - t0:.3f} s")
    whole = b"".join(open(p, "rb").read() for p in args.corpus).decode("utf-8")
    lines = [line for p in args.corpus for line in open(p, "rb").read().decode("utf-8").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    nbytes = sum(len(s.encode("utf-8")) for s in lines)
    ntokens = sum(len(tok.encode(s, add_special_tokens=False).ids) for s in lines)  # warm-up

    def one_at_a_time():
        for s in lines:
            tok.encode(s, add_special_tokens=False)

    report("lines", timed(one_at_a_time, args.seconds), nbytes, ntokens)
    report("batch", timed(lambda: tok.encode_batch(lines, add_special_tokens=False), args.seconds),
           nbytes, ntokens)
    if args.whole:
        n = len(tok.encode(whole, add_special_tokens=False).ids)
        report("whole", timed(lambda: tok.encode(whole, add_special_tokens=False), args.seconds),
               len(whole.encode("utf-8")), n)


if __name__ == "__main__":
    main()
