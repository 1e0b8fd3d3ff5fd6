"""Integrity checks for the tiny model fixtures under tests/fixtures/models (see docs/FIXTURES.md).

Single-threaded pytest module. Needs only the standard library (json + struct read the
safetensors files), so it runs without torch/numpy. It checks that every fixture directory is
complete and under budget, that the weight files hold exactly the tensors (names, shapes,
dtypes) the config implies, and that reference.json agrees with reference_logits.safetensors:
ids within the vocabulary, 32 greedy ids, argmax and top1-top2 margin of the last logits row
equal to the first greedy step. Needs pytest; `python3 tests/python/test_fixtures.py` runs it too.
"""

import hashlib
import json
import math
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
TEMPLATES = ROOT / "tests" / "fixtures" / "templates"
NAMES = ["glm4-tiny", "glm-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny"]
MAX_DIR_BYTES = 5 * 1024 * 1024
GREEDY_TOKENS = 32
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
CONFIG_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
COMMON_FILES = ["config.json", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "reference.json", "reference_logits.safetensors"]


def load_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_safetensors_header(path):
    """(header dict, data start offset), validating offsets against the file size."""
    raw = path.read_bytes()
    assert len(raw) >= 8, f"{path}: shorter than the 8-byte header length"
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"{path}: header length {n} past end of file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data_len = len(raw) - 8 - n
    spans = []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        count = math.prod(info["shape"])
        assert end - begin == count * DTYPE_BYTES[info["dtype"]], f"{path}: {name} size mismatch"
        assert 0 <= begin <= end <= data_len, f"{path}: {name} offsets outside the data"
        spans.append((begin, end))
    spans.sort()
    covered = 0
    for begin, end in spans:  # tensors tile the data section with no gaps or overlaps
        assert begin == covered, f"{path}: gap or overlap at byte {begin}"
        covered = end
    assert covered == data_len, f"{path}: {data_len - covered} trailing bytes"
    return header, 8 + n


def read_f32_row(path, header, start, name, row):
    info = header[name]
    assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}, expected F32"
    cols = info["shape"][1]
    offset = start + info["data_offsets"][0] + row * cols * 4
    with open(path, "rb") as f:
        f.seek(offset)
        return struct.unpack(f"<{cols}f", f.read(cols * 4))


def expected_tensors(cfg):
    """Every weight name -> shape that the architecture's HF checkpoint holds."""
    h, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    head_dim = cfg.get("head_dim", h // cfg["num_attention_heads"])
    q, kv = cfg["num_attention_heads"] * head_dim, cfg["num_key_value_heads"] * head_dim
    arch = cfg["architectures"][0]
    out = {"model.embed_tokens.weight": [vocab, h], "model.norm.weight": [h]}
    if not cfg.get("tie_word_embeddings", False):
        out["lm_head.weight"] = [vocab, h]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out.update({p + "self_attn.q_proj.weight": [q, h], p + "self_attn.k_proj.weight": [kv, h],
                    p + "self_attn.v_proj.weight": [kv, h], p + "self_attn.o_proj.weight": [h, q],
                    p + "input_layernorm.weight": [h], p + "post_attention_layernorm.weight": [h],
                    p + "mlp.down_proj.weight": [h, inter]})
        if arch in ("Glm4ForCausalLM", "GlmForCausalLM"):
            out[p + "mlp.gate_up_proj.weight"] = [2 * inter, h]
        else:
            out[p + "mlp.gate_proj.weight"] = [inter, h]
            out[p + "mlp.up_proj.weight"] = [inter, h]
        if arch == "Glm4ForCausalLM":
            out[p + "post_self_attn_layernorm.weight"] = [h]
            out[p + "post_mlp_layernorm.weight"] = [h]
        if cfg.get("attention_bias", False) or arch == "Qwen2ForCausalLM":
            for proj, n in (("q", q), ("k", kv), ("v", kv)):
                out[p + f"self_attn.{proj}_proj.bias"] = [n]
        if arch == "Qwen3ForCausalLM":
            out[p + "self_attn.q_norm.weight"] = [head_dim]
            out[p + "self_attn.k_norm.weight"] = [head_dim]
    return out


def weight_headers(model_dir):
    """{tensor name: header entry} over the single file or every shard of the index."""
    index_path = model_dir / "model.safetensors.index.json"
    if not index_path.exists():
        header, _ = read_safetensors_header(model_dir / "model.safetensors")
        return header
    index = load_json(index_path)
    merged, total = {}, 0
    for shard in sorted(set(index["weight_map"].values())):
        header, _ = read_safetensors_header(model_dir / shard)
        for name, info in header.items():
            assert index["weight_map"].get(name) == shard, f"{shard}: {name} not mapped to it"
            total += info["data_offsets"][1] - info["data_offsets"][0]
        merged.update(header)
    assert set(merged) == set(index["weight_map"]), f"{index_path}: weight_map vs shard tensors"
    assert index["metadata"]["total_size"] == total, f"{index_path}: total_size"
    return merged


@pytest.fixture(params=NAMES)
def model_dir(request):
    return MODELS / request.param


def test_files_present_and_under_budget(model_dir):
    for name in COMMON_FILES:
        assert (model_dir / name).is_file(), f"{model_dir}: missing {name}"
    single = (model_dir / "model.safetensors").is_file()
    sharded = (model_dir / "model.safetensors.index.json").is_file()
    assert single != sharded, f"{model_dir}: need exactly one of model.safetensors / index"
    total = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file())
    assert total <= MAX_DIR_BYTES, f"{model_dir}: {total} bytes over budget"


def test_weights_match_config(model_dir):
    cfg = load_json(model_dir / "config.json")
    headers = weight_headers(model_dir)
    expected = expected_tensors(cfg)
    assert set(headers) == set(expected), f"{model_dir}: {set(headers) ^ set(expected)}"
    want_dtype = CONFIG_DTYPES[cfg["torch_dtype"]]
    for name, shape in expected.items():
        assert headers[name]["shape"] == shape, f"{model_dir}: {name} shape"
        assert headers[name]["dtype"] == want_dtype, f"{model_dir}: {name} dtype"


def test_tokenizer_and_special_ids(model_dir):
    tok = load_json(model_dir / "tokenizer.json")
    cfg = load_json(model_dir / "config.json")
    ref = load_json(model_dir / "reference.json")
    base = len(tok["model"]["vocab"])
    added = tok["added_tokens"]
    assert [a["id"] for a in added] == list(range(base, base + len(added))), "added ids contiguous"
    assert ref["tokenizer_size"] == base + len(added)
    assert ref["vocab_size"] == cfg["vocab_size"] >= ref["tokenizer_size"], "vocab sizes"
    special_ids = {a["id"] for a in added if a["special"]}
    gen = load_json(model_dir / "generation_config.json")
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    assert eos and set(eos) <= special_ids, f"{model_dir}: EOS ids must be special tokens"
    tcfg = load_json(model_dir / "tokenizer_config.json")
    for key, entry in tcfg["added_tokens_decoder"].items():
        assert any(a["id"] == int(key) and a["content"] == entry["content"] for a in added)


def test_chat_template(model_dir):
    ref = load_json(model_dir / "reference.json")
    template = load_json(model_dir / "tokenizer_config.json")["chat_template"]
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
    assert digest == ref["chat_template_sha256"], f"{model_dir}: chat_template changed"
    source = TEMPLATES / ref["chat_template_file"]
    if not source.exists():
        pytest.skip(f"{source} not in this checkout")
    assert source.read_text(encoding="utf-8") == template, f"{model_dir}: template differs"


def test_reference_consistent_with_logits(model_dir):
    ref = load_json(model_dir / "reference.json")
    path = model_dir / "reference_logits.safetensors"
    header, start = read_safetensors_header(path)
    vocab, tok_size = ref["vocab_size"], ref["tokenizer_size"]
    assert len(ref["prompts"]) >= 5
    assert set(header) == {p["logits_tensor"] for p in ref["prompts"]}
    for p in ref["prompts"]:
        ids, greedy = p["ids"], p["greedy_ids"]
        where = f"{model_dir.name}/{p['name']}"
        assert ids and all(0 <= i < tok_size for i in ids), f"{where}: prompt ids"
        assert len(greedy) == GREEDY_TOKENS and all(0 <= i < tok_size for i in greedy), where
        assert len(p["greedy_margins"]) == GREEDY_TOKENS and min(p["greedy_margins"]) >= 0
        assert header[p["logits_tensor"]]["shape"] == [len(ids), vocab], f"{where}: logits shape"
        row = read_f32_row(path, header, start, p["logits_tensor"], len(ids) - 1)
        assert all(math.isfinite(x) for x in row), f"{where}: non-finite logits"
        best = max(range(vocab), key=lambda i: (row[i], -i))  # first index among equal maxima
        assert best == greedy[0], f"{where}: argmax {best} != first greedy id {greedy[0]}"
        second = max(x for i, x in enumerate(row) if i != best)
        assert abs((row[best] - second) - p["greedy_margins"][0]) < 1e-5, f"{where}: margin"
        if "chunk_split" in p:
            assert 0 < p["chunk_split"] < len(ids), f"{where}: chunk_split"


def test_tokenizer_cases(model_dir):
    ref = load_json(model_dir / "reference.json")
    normalizes = load_json(model_dir / "tokenizer.json")["normalizer"] is not None
    assert len(ref["tokenizer_cases"]) >= 10
    for case in ref["tokenizer_cases"]:
        ids = case["ids"] + case["ids_with_special"]
        assert all(0 <= i < ref["tokenizer_size"] for i in ids), f"{model_dir}: {case['text']!r}"
        assert bool(case["ids"]) == bool(case["text"]), f"{model_dir}: empty iff empty text"
        if not normalizes:  # byte-level BPE without a normalizer round-trips exactly
            assert case["decoded"] == case["text"], f"{model_dir}: {case['text']!r} round trip"


def test_every_family_present():
    assert sorted(p.name for p in MODELS.iterdir() if p.is_dir()) == sorted(NAMES)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
