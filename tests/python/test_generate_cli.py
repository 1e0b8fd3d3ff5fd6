"""End to end: `autoglm generate` (tokenizer, chat template, CPU backend, sampler, streaming
detokenizer) reproduces transformers' 32-token greedy continuation for every fixture model,
for a raw prompt and for a chat-templated prompt."""

import json
import os
import pathlib
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
