#!/usr/bin/env python3
"""Write a byte-level BPE tokenizer.json whose vocabulary fills a full-size model's vocab, for
serving benchmarks on random-weight models (no real tokenizer may be fetched here).

The glm4-tiny fixture's tokenizer is the template (its pre-tokenizer, decoder and the GLM-4
special tokens). Its 1,000-entry vocabulary is extended deterministically with merges of two
existing tokens until it holds --bpe-size entries, and the special tokens are moved to the
ids GLM-4 uses (from --bpe-size on: 151329 [<|endoftext|>], ... for GLM-4-9B). Every id then
decodes to some bytes, so a random-weight model's output streams as text, as real output
would; the text itself is meaningless. Not used by CI; the output is never committed. Usage:

    python3 scripts/make_full_vocab_tokenizer.py MODEL_DIR [--bpe-size 151329]
"""

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "tests" / "fixtures" / "models" / "glm4-tiny"


def extend_vocab(model: dict, size: int) -> None:
    vocab, merges = model["vocab"], model["merges"]
    tokens = sorted(vocab, key=vocab.get)
    seen = set(vocab)
    left = 0
    while len(vocab) < size:
        # Pairs (tokens[left], t) for every t already present, left advancing: two-symbol
        # merges first, then longer ones, all of existing tokens, so each merge is valid BPE.
        a = tokens[left]
        for b in list(tokens):
            if len(vocab) >= size:
                break
            merged = a + b
            if merged in seen:
                continue
            seen.add(merged)
            vocab[merged] = len(vocab)
            tokens.append(merged)
            merges.append([a, b])
        left += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--bpe-size", type=int, default=151329)
    args = ap.parse_args()
    tok = json.loads((TEMPLATE / "tokenizer.json").read_text())
    extend_vocab(tok["model"], args.bpe_size)
    moved = {}
    for i, added in enumerate(tok["added_tokens"]):
        moved[added["id"]] = args.bpe_size + i
        added["id"] = args.bpe_size + i
    # The post-processor names special tokens by id too.
    text = json.dumps(tok, ensure_ascii=False)
    tok = json.loads(text)
    post = tok.get("post_processor") or {}
    for proc in post.get("processors", [post]):
        for spec in (proc.get("special_tokens") or {}).values():
            spec["ids"] = [moved.get(i, i) for i in spec.get("ids", [])]
    out = Path(args.out)
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    print(f"make_full_vocab_tokenizer: {len(tok['model']['vocab'])} BPE tokens, "
          f"{len(tok['added_tokens'])} special tokens from id {args.bpe_size}, into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
