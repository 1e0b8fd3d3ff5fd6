"""End to end: `autoglm generate` (tokenizer, chat template, CPU backend, sampler, streaming
detokenizer) reproduces transformers' 32-token greedy continuation for every fixture model,
for a raw prompt and for a chat-templated prompt."""

import json
import math
import os
import pathlib
import struct
import subprocess

import pytest
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
BIN = os.environ.get("AUTOGLM_BIN", str(ROOT / "build" / "tools" / "autoglm" / "autoglm"))
FIXTURES = sorted(p for p in MODELS.iterdir() if (p / "reference.json").exists())


def run_generate(model_dir, *args):
    out = subprocess.run(
        [BIN, "generate", "--model", str(model_dir), "--max-tokens", "32", "--ignore-eos", *args],
        capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    text = out.stdout.decode("utf-8")  # must be valid UTF-8: the stream never splits a character
    assert text.endswith("\n")
    return text[:-1], out.stderr.decode()


def reference(model_dir, name):
    ref = json.loads((model_dir / "reference.json").read_text())
    return next(p for p in ref["prompts"] if p["name"] == name)


@pytest.mark.parametrize("model_dir", FIXTURES, ids=lambda p: p.name)
def test_raw_prompt_greedy_matches_transformers(model_dir):
    prompt = reference(model_dir, "english")
    assert prompt["add_special_tokens"] is True
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    expected = tok.decode(prompt["greedy_ids"], skip_special_tokens=True)
    text, stats = run_generate(model_dir, "--prompt", prompt["text"])
    assert text == expected
    assert f"{len(prompt['ids'])} prompt tokens, 32 generated" in stats


@pytest.mark.parametrize("model_dir", FIXTURES, ids=lambda p: p.name)
def test_chat_prompt_greedy_matches_transformers(model_dir):
    prompt = reference(model_dir, "chat")
    system, user = prompt["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    expected = tok.decode(prompt["greedy_ids"], skip_special_tokens=True)
    text, stats = run_generate(model_dir, "--chat", "--system", system["content"],
                               "--prompt", user["content"])
    assert f"{len(prompt['ids'])} prompt tokens" in stats
    assert text == expected


def test_bad_model_directory_is_one_clear_error(tmp_path):
    out = subprocess.run([BIN, "generate", "--model", str(tmp_path), "--prompt", "x"],
                         capture_output=True, timeout=60, check=False)
    assert out.returncode == 1
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "config.json" in lines[0]


# --- sampling, logprobs, stopping and --json (wip/sampling) ---

GLM4 = MODELS / "glm4-tiny"


def run_cli(*args, timeout=120):
    return subprocess.run([BIN, *args], capture_output=True, timeout=timeout, check=False)


def generate_json(model_dir, *args):
    out = run_cli("generate", "--model", str(model_dir), "--json", *args)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    text = out.stdout.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1  # one JSON object, one line
    return json.loads(text)


def reference_logits(model_dir, tensor):
    """Reads one fp32 tensor from reference_logits.safetensors without numpy."""
    data = (model_dir / "reference_logits.safetensors").read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_len])
    info = header[tensor]
    assert info["dtype"] == "F32"
    begin, end = info["data_offsets"]
    raw = data[8 + header_len + begin:8 + header_len + end]
    rows, cols = info["shape"]
    flat = struct.unpack(f"<{rows * cols}f", raw)
    return [flat[r * cols:(r + 1) * cols] for r in range(rows)]


def log_softmax(row):
    top = max(row)
    log_z = top + math.log(sum(math.exp(x - top) for x in row))
    return [x - log_z for x in row]


def test_json_shape_greedy_ids_and_logprobs():
    prompt = reference(GLM4, "english")
    out = generate_json(GLM4, "--prompt", prompt["text"], "--max-tokens", "8", "--ignore-eos",
                        "--top-logprobs", "3")
    assert set(out) == {"text", "tokens", "finish_reason", "stop", "usage", "timings"}
    assert out["finish_reason"] == "length" and out["stop"] is None
    assert out["usage"] == {"prompt_tokens": len(prompt["ids"]), "completion_tokens": 8,
                            "total_tokens": len(prompt["ids"]) + 8}
    assert set(out["timings"]) == {"prefill_ms", "decode_ms", "decode_tokens_per_s"}
    assert out["timings"]["prefill_ms"] > 0
    assert [t["id"] for t in out["tokens"]] == prompt["greedy_ids"][:8]
    tok = Tokenizer.from_file(str(GLM4 / "tokenizer.json"))
    assert out["text"] == tok.decode(prompt["greedy_ids"][:8], skip_special_tokens=True)
    for t in out["tokens"]:
        assert set(t) == {"id", "text", "logprob", "top_logprobs"}
        assert t["text"] == tok.decode([t["id"]], skip_special_tokens=False)
        assert len(t["top_logprobs"]) == 3
        assert t["top_logprobs"][0]["id"] == t["id"]  # greedy picks the most likely
        assert t["top_logprobs"][0]["logprob"] == t["logprob"] <= 0
        lps = [alt["logprob"] for alt in t["top_logprobs"]]
        assert lps == sorted(lps, reverse=True)
    # The first token's logprobs against transformers' logits at the last prompt position.
    expected = log_softmax(reference_logits(GLM4, prompt["logits_tensor"])[-1])
    first = out["tokens"][0]
    for alt in first["top_logprobs"]:
        assert abs(alt["logprob"] - expected[alt["id"]]) < 1e-3


def test_no_logprobs_unless_asked():
    out = generate_json(GLM4, "--prompt", "Hello", "--max-tokens", "2", "--ignore-eos")
    assert all(set(t) == {"id", "text"} for t in out["tokens"])


def test_seed_reproduces_sampled_output():
    args = ["--prompt", "Once upon a time", "--max-tokens", "16", "--ignore-eos",
            "--temperature", "1.0", "--top-p", "0.95", "--top-k", "50"]
    first = generate_json(GLM4, *args, "--seed", "1234")
    second = generate_json(GLM4, *args, "--seed", "1234")
    other = generate_json(GLM4, *args, "--seed", "4321")
    ids = [t["id"] for t in first["tokens"]]
    assert ids == [t["id"] for t in second["tokens"]]
    assert ids != [t["id"] for t in other["tokens"]]
    assert first["text"] == second["text"]


def test_stop_string_across_tokens_is_not_emitted():
    prompt = reference(GLM4, "english")
    full = generate_json(GLM4, "--prompt", prompt["text"], "--max-tokens", "32", "--ignore-eos")
    pieces = [t["text"] for t in full["tokens"]]
    # A stop string made of the end of token 3 and the start of token 4.
    assert len(pieces[3]) >= 1 and len(pieces[4]) >= 1
    stop = pieces[3][-1:] + pieces[4][:1]
    expected = full["text"][:full["text"].find(stop)]
    out = generate_json(GLM4, "--prompt", prompt["text"], "--max-tokens", "32", "--ignore-eos",
                        "--stop", stop, "--stop", "never-appears-xyz")
    assert out["finish_reason"] == "stop" and out["stop"] == stop
    assert out["text"] == expected
    streamed, stats = run_generate(GLM4, "--prompt", prompt["text"], "--stop", stop)
    assert streamed == expected and "finish_reason=stop" in stats


def test_stop_token_id_and_max_tokens():
    prompt = reference(GLM4, "english")
    third = prompt["greedy_ids"][2]
    out = generate_json(GLM4, "--prompt", prompt["text"], "--max-tokens", "32", "--ignore-eos",
                        "--stop-token-id", str(third))
    assert out["finish_reason"] == "stop" and out["stop"] == f"token:{third}"
    assert [t["id"] for t in out["tokens"]][-1] == third
    assert out["usage"]["completion_tokens"] <= 3


def test_logit_bias_forces_a_token():
    out = generate_json(GLM4, "--prompt", "Hello", "--max-tokens", "3", "--ignore-eos",
                        "--logit-bias", "42:100", "--logprobs")
    assert [t["id"] for t in out["tokens"]] == [42, 42, 42]
    assert all(t["logprob"] > -0.01 for t in out["tokens"])  # logprobs include the bias


@pytest.mark.parametrize("flag,value,name", [
    ("--temperature", "nan", "temperature"),
    ("--temperature", "-1", "temperature"),
    ("--top-p", "0", "top_p"),
    ("--top-p", "abc", "--top-p"),
    ("--top-k", "1.5", "--top-k"),
    ("--min-p", "2", "min_p"),
    ("--repetition-penalty", "0", "repetition_penalty"),
    ("--presence-penalty", "3", "presence_penalty"),
    ("--frequency-penalty", "inf", "frequency_penalty"),
    ("--logit-bias", "5:200", "logit_bias"),
    ("--logit-bias", "99999999:1", "logit_bias"),
    ("--logit-bias", "5", "--logit-bias"),
    ("--top-logprobs", "21", "top_logprobs"),
    ("--max-tokens", "0", "max_tokens"),
    ("--stop-token-id", "99999999", "stop_token_ids"),
    ("--kv-cache-mb", "0", "--kv-cache-mb"),
])
def test_bad_flag_value_is_one_clear_error(flag, value, name):
    out = run_cli("generate", "--model", str(GLM4), "--prompt", "x", flag, value)
    assert out.returncode == 1
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], lines


def test_kv_budget_too_small_gives_the_numbers():
    # glm4-tiny: 2 layers * 2 (K, V) * kv heads * head_dim * 4 bytes per token.
    config = json.loads((GLM4 / "config.json").read_text())
    head_dim = config.get("head_dim", config["hidden_size"] // config["num_attention_heads"])
    per_token = config["num_hidden_layers"] * 2 * config["num_key_value_heads"] * head_dim * 4
    budget_mb = 64 * per_token / (1 << 20)  # 64 tokens of KV
    out = run_cli("generate", "--model", str(GLM4), "--prompt", "Hello", "--max-tokens", "100",
                  "--kv-cache-mb", repr(budget_mb))
    assert out.returncode == 1
    line = out.stderr.decode().strip()
    assert "max_tokens (100)" in line and "KV cache holds 4 blocks (64 tokens)" in line, line
    ok = run_cli("generate", "--model", str(GLM4), "--prompt", "Hello", "--max-tokens", "40",
                 "--kv-cache-mb", repr(budget_mb))
    assert ok.returncode == 0, ok.stderr.decode()
