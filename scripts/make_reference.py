#!/usr/bin/env python3
"""Build the tiny random-weight model fixtures and record their transformers truth.

Single-threaded offline tool (torch is pinned to one intra-op thread for determinism). For each
family in scripts/reference_families.py it trains a tiny byte-level BPE tokenizer with the
family's real pipeline, writes a hub-style checkpoint (config.json, generation_config.json,
tokenizer.json, tokenizer_config.json with the real chat template, safetensors weights in the
family's dtype), reloads it with transformers and records, in fp32 with eager attention:
the prompt ids, the full logits of every prompt and a 32-token greedy continuation that ignores
EOS. See docs/FIXTURES.md. Usage:

    /opt/refenv/bin/python scripts/make_reference.py --out tests/fixtures/models
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers  # noqa: E402
from tokenizers import pre_tokenizers, processors, trainers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_corpus  # noqa: E402
import reference_families as fams  # noqa: E402

BPE_VOCAB = 1000  # 256 byte symbols + 744 merges
GREEDY_TOKENS = 32
EMBED_STD = 0.5
LINEAR_GAIN = 2.0
MAX_DIR_BYTES = 5 * 1024 * 1024
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def fail(msg):
    raise SystemExit(f"make_reference: {msg}")


# ----------------------------------------------------------------------------- tokenizer


def byte_level(**kw):
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, **kw)


def post_processor(fam, ids):
    """The family's post-processor: ByteLevel, plus a TemplateProcessing prefix where it has one."""
    if fam.model_type == "llama":
        bl = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    else:
        bl = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if not fam.prefix_tokens:
        return bl
    prefix = " ".join(f"{t}:0" for t in fam.prefix_tokens)
    pair = f"{prefix} $A:0 $B:1" if fam.model_type != "llama" else f"{prefix} $A:0 {prefix[:-2]}:1 $B:1"
    template = processors.TemplateProcessing(
        single=f"{prefix} $A:0", pair=pair, special_tokens=[(t, ids[t]) for t in fam.prefix_tokens])
    return processors.Sequence([bl, template])


def build_tokenizer(fam):
    """Train the tiny BPE with the family's normalizer / Split regex / ByteLevel structure."""
    tok = Tokenizer(models.BPE(ignore_merges=fam.ignore_merges))
    if fam.nfc:
        tok.normalizer = normalizers.NFC()
    split = pre_tokenizers.Split(Regex(fam.regex), behavior="isolated", invert=False)
    # trim_offsets only affects offsets, not ids; set as the real files do (Qwen: false).
    trim = fam.model_type not in ("qwen2", "qwen3")
    tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level(trim_offsets=trim)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(reference_corpus.corpus_lines(), trainer)
    if tok.get_vocab_size() != BPE_VOCAB:
        fail(f"{fam.name}: BPE vocab is {tok.get_vocab_size()}, expected {BPE_VOCAB}")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in fam.specials])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in fam.plain_added])
    ids = {t: tok.token_to_id(t) for t in fam.specials + fam.plain_added}
    tok.post_processor = post_processor(fam, ids)
    added = [(ids[t], t, True) for t in fam.specials] + [(ids[t], t, False) for t in fam.plain_added]
    return tok, ids, added


def patch_tokenizer_json(fam, path):
    """Match fields the tokenizers API cannot set the way the real files spell them."""
    obj = json.loads(path.read_text(encoding="utf-8"))
    if fam.model_type in ("qwen2", "qwen3"):
        obj["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": False}
        obj["model"]["continuing_subword_prefix"] = ""
        obj["model"]["end_of_word_suffix"] = ""
    if fam.legacy_merges:
        # Older hub files store merges as "left right" strings; keep one fixture in that form
        # so that loaders handle both spellings.
        obj["model"]["merges"] = [f"{a} {b}" for a, b in obj["model"]["merges"]]
    write_json(path, obj)


# ----------------------------------------------------------------------------- weights


def weight_std(name, shape):
    """Init scale per tensor. Plain std 0.02 gives near-flat logits (top1-top2 margins ~1e-4)
    and makes the tied-embedding Qwen2 repeat its input token forever, so projections use
    2/sqrt(fan_in) and embeddings 0.5: logits spread by a few units and varied continuations."""
    if name.endswith("embed_tokens.weight"):
        return EMBED_STD
    return LINEAR_GAIN / float(shape[-1]) ** 0.5


def init_weights(model, seed, tokenizer_size):
    """Deterministic random weights; norms around 1.0 and non-zero biases so that bugs show.

    Rows past the tokenizer's size (the config pads vocab_size like the real models) are zero
    in the embedding and lm_head, so their logits are exactly 0 and greedy never picks an id
    that has no token."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * weight_std(name, p.shape))
            if name.endswith(("embed_tokens.weight", "lm_head.weight")):
                p[tokenizer_size:].zero_()


def checkpoint_tensors(model, dtype):
    """Named tensors as the hub checkpoint stores them (tied lm_head omitted)."""
    out = {}
    for name, p in model.named_parameters():  # shared (tied) parameters are yielded once
        out[name] = p.detach().to(dtype).contiguous()
    return dict(sorted(out.items()))


def save_weights(out_dir, tensors, shards):
    meta = {"format": "pt"}
    if shards == 1:
        safetensors.torch.save_file(tensors, out_dir / "model.safetensors", metadata=meta)
        return
    names = list(tensors)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    weight_map, start = {}, 0
    for shard in range(shards):
        # Split by cumulative bytes so that both shards hold real data.
        part, acc = {}, 0
        budget = total / shards
        while start < len(names) and (acc < budget or shard == shards - 1):
            t = tensors[names[start]]
            part[names[start]] = t
            acc += t.numel() * t.element_size()
            start += 1
        fname = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        safetensors.torch.save_file(part, out_dir / fname, metadata=meta)
        weight_map.update({n: fname for n in part})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(out_dir / "model.safetensors.index.json", index)


# ----------------------------------------------------------------------------- files


def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_checkpoint(fam, out_dir, templates_dir):
    """Write every checkpoint file of one family; returns the config vocab size."""
    tok, ids, added = build_tokenizer(fam)
    tok.save(str(out_dir / "tokenizer.json"), pretty=True)
    patch_tokenizer_json(fam, out_dir / "tokenizer.json")
    template = (templates_dir / fam.template_file).read_text(encoding="utf-8")
    write_json(out_dir / "tokenizer_config.json", fams.tokenizer_config(fam, added, template))
    vocab_size = fams.padded_vocab(tok.get_vocab_size(), fam.vocab_multiple)
    write_json(out_dir / "config.json", fams.model_config(fam, ids, vocab_size))
    write_json(out_dir / "generation_config.json", fams.generation_config(fam, ids))
    config = transformers.AutoConfig.from_pretrained(out_dir)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    init_weights(model, fam.seed, tok.get_vocab_size())
    tensors = checkpoint_tensors(model, fams_dtype(fam))
    save_weights(out_dir, tensors, fam.shards)
    return tensors


def fams_dtype(fam):
    return DTYPES[fam.dtype]


# ----------------------------------------------------------------------------- truth


def load_reference_model(out_dir, saved):
    """Reload through transformers in fp32 and check it holds exactly the saved weights."""
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        out_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        fail(f"{out_dir}: transformers loading problems {bad}")
    state = model.state_dict()
    for name, t in saved.items():
        if not torch.equal(state[name], t.float()):
            fail(f"{out_dir}: reloaded tensor {name} differs from the saved one")
    return model.float().eval()


def prompt_specs():
    """(name, kind, payload): plain text, one chat conversation and one two-chunk pair."""
    return [
        ("single_token", "text_nospecial", " the"),
        ("english", "text", "The quick brown fox jumps over the lazy dog."),
        ("chinese_emoji", "text", "你好，世界！今天天气很好 😀🎉"),
        ("code", "text", "def add(a, b):\n    return a + b\n\nprint(add(2, 40))"),
        ("numbers_whitespace", "text", "  Year 2024:\n\n\t1234567 items, $3.14 each!!  "),
        ("chat", "chat", [{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": "What is 2+2? 请回答。"}]),
        ("two_chunk", "pair", ("Once upon a time there was a small model.",
                               " It answered: 你好 🚀 42!")),
    ]


# Tokenizer-only cases (no model run): pre-tokenizer branches, normalization, special-token
# matching inside text, byte fallback of rare characters, empty input.
TOKENIZER_CASES = [
    "", " ", "a", "Hello, world!", "I'M sure you'll see they're right; we'd go.",
    "1 12 123 1234 12345 1234567", "  two  spaces   three\tTab\r\nCRLF\n\n\nend   ",
    "caf\u00e9 vs cafe\u0301 (NFC vs NFD)", "你好，世界！中文和English混合123",
    "emoji 😀 zwj 👨\u200d👩\u200d👧 flag 🇨🇳 heart ❤️", "def f(x):\n    return x**2  # sq",
    "<|endoftext|><|im_start|>[gMASK]<sop><|begin_of_text|><think></think><tool_call>",
    "not<|endoftext|>special<|eot_id|>", "\u00a0nbsp\u2003em\u3000ideographic",
    "rare: \u0e01\u0e32 \u05e9\u05dc\u05d5\u05dd \U0001f9ec \u2603",
]


def tokenizer_cases(hf_tok, raw_tok):
    """Encode/decode truths for the tokenizer alone, with and without the post-processor."""
    out = []
    for text in TOKENIZER_CASES:
        ids = encode_checked(hf_tok, raw_tok, text, False)
        out.append({"text": text, "ids": ids,
                    "ids_with_special": encode_checked(hf_tok, raw_tok, text, True),
                    "decoded": raw_tok.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": raw_tok.decode(ids, skip_special_tokens=True)})
    return out


def encode_checked(hf_tok, raw_tok, text, add_special):
    """Ids from transformers, which must agree with the bare tokenizer.json pipeline."""
    ids = hf_tok(text, add_special_tokens=add_special)["input_ids"]
    raw = raw_tok.encode(text, add_special_tokens=add_special).ids
    if ids != raw:
        fail(f"transformers and tokenizers disagree on {text!r}: {ids} vs {raw}")
    return ids


def encode_prompt(spec, hf_tok, raw_tok):
    name, kind, payload = spec
    entry = {"name": name}
    if kind in ("text", "text_nospecial"):
        add = kind == "text"
        entry.update(text=payload, add_special_tokens=add,
                     ids=encode_checked(hf_tok, raw_tok, payload, add))
    elif kind == "chat":
        rendered = hf_tok.apply_chat_template(payload, tokenize=False, add_generation_prompt=True)
        entry.update(messages=payload, add_generation_prompt=True, text=rendered,
                     add_special_tokens=False, ids=encode_checked(hf_tok, raw_tok, rendered, False))
    else:
        first = encode_checked(hf_tok, raw_tok, payload[0], True)
        second = encode_checked(hf_tok, raw_tok, payload[1], False)
        entry.update(text=payload[0] + payload[1], chunks=list(payload), add_special_tokens=True,
                     chunk_split=len(first), ids=first + second)
    return entry


@torch.no_grad()
def greedy(model, ids):
    """32 argmax steps by full recomputation; EOS is ignored. Returns ids and top1-top2 margins."""
    seq, out, margins = list(ids), [], []
    for _ in range(GREEDY_TOKENS):
        row = model(torch.tensor([seq])).logits[0, -1].float()
        top = torch.topk(row, 2)
        nxt = int(torch.argmax(row))
        out.append(nxt)
        margins.append(round(float(top.values[0] - top.values[1]), 6))
        seq.append(nxt)
    return out, margins


@torch.no_grad()
def check_against_generate(model, ids, expected):
    """transformers' own KV-cached greedy generate (EOS disabled) must give the same tokens."""
    cfg = transformers.GenerationConfig(do_sample=False, max_new_tokens=GREEDY_TOKENS,
                                        eos_token_id=None, pad_token_id=0)
    model.generation_config = cfg  # otherwise generate() merges in the checkpoint's EOS ids
    out = model.generate(torch.tensor([ids]), generation_config=cfg,
                         attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    got = out[0, len(ids):].tolist()
    if got != expected:
        fail(f"KV-cached generate {got} differs from full-recompute greedy {expected}")


@torch.no_grad()
def record_truth(fam, out_dir, saved):
    model = load_reference_model(out_dir, saved)
    hf_tok = transformers.AutoTokenizer.from_pretrained(out_dir)
    raw_tok = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    prompts, logits = [], {}
    for i, spec in enumerate(prompt_specs()):
        entry = encode_prompt(spec, hf_tok, raw_tok)
        full = model(torch.tensor([entry["ids"]])).logits[0].float().contiguous()
        logits[f"logits.{i}"] = full
        entry["logits_tensor"] = f"logits.{i}"
        entry["greedy_ids"], entry["greedy_margins"] = greedy(model, entry["ids"])
        if max(entry["greedy_ids"]) >= raw_tok.get_vocab_size():
            fail(f"{fam.name}/{entry['name']}: greedy picked a padding id {entry['greedy_ids']}")
        check_against_generate(model, entry["ids"], entry["greedy_ids"])
        entry["decoded_greedy"] = raw_tok.decode(entry["greedy_ids"], skip_special_tokens=False)
        prompts.append(entry)
    safetensors.torch.save_file(logits, out_dir / "reference_logits.safetensors",
                                metadata={"format": "pt"})
    return prompts, tokenizer_cases(hf_tok, raw_tok)


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__}


def build_family(fam, out_root, templates_dir):
    out_dir = out_root / fam.name
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    torch.manual_seed(fam.seed)
    saved = write_checkpoint(fam, out_dir, templates_dir)
    prompts, tok_cases = record_truth(fam, out_dir, saved)
    config = json.loads((out_dir / "config.json").read_text())
    ref = {"model": fam.name, "architecture": fam.arch, "weights_dtype": fam.dtype,
           "vocab_size": config["vocab_size"],
           "tokenizer_size": Tokenizer.from_file(str(out_dir / "tokenizer.json")).get_vocab_size(),
           "truth": "fp32 eager attention, logits of every prompt position; greedy = argmax "
                    "by full recomputation, EOS ignored",
           "chat_template_file": fam.template_file,
           "chat_template_sha256": hashlib.sha256(
               (templates_dir / fam.template_file).read_bytes()).hexdigest(),
           "versions": versions(), "prompts": prompts, "tokenizer_cases": tok_cases}
    write_json(out_dir / "reference.json", ref)
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    if total > MAX_DIR_BYTES:
        fail(f"{out_dir}: {total} bytes exceeds the {MAX_DIR_BYTES} byte budget")
    return total


def digest_tree(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/models", type=Path)
    ap.add_argument("--templates", default="tests/fixtures/templates", type=Path,
                    help="directory holding the real chat templates (*.jinja)")
    ap.add_argument("--only", nargs="*", help="family names to build (default: all)")
    ap.add_argument("--bundled", action="store_true",
                    help="build only the bundled default model (models/autoglm-tiny)")
    args = ap.parse_args()
    families = fams.FAMILIES
    if args.bundled:
        families = [fams.BUNDLED]
        if args.out == Path("tests/fixtures/models"):
            args.out = Path("models")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for fam in families:
        if args.only and fam.name not in args.only:
            continue
        size = build_family(fam, args.out, args.templates)
        print(f"{fam.name}: {size} bytes, sha256 {digest_tree(args.out / fam.name)[:16]}")


if __name__ == "__main__":
    main()
