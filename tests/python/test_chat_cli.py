"""`autoglm chat` driven through a pipe on the glm4-tiny fixture (greedy): multi-turn history
in the re-rendered prompt, KV prefix reuse, /reset, /exit, flushing after each reply, and
one-line errors."""

import os
import pathlib
import re
import select
import subprocess
import time

import pytest
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
GLM4 = ROOT / "tests" / "fixtures" / "models" / "glm4-tiny"
BIN = os.environ.get("AUTOGLM_BIN", str(ROOT / "build" / "tools" / "autoglm" / "autoglm"))
COMMON = ["--model", str(GLM4), "--max-tokens", "6", "--ignore-eos"]
# The engine's prefix cache reuses whole KV blocks; the fixture's chat prompts are short, so the
# REPL tests use small blocks to see the reuse.
BLOCK = 4


def chat(stdin_text, *extra):
    out = subprocess.run([BIN, "chat", *COMMON, "--kv-block-size", str(BLOCK),
                          "--show-prompt-tokens", *extra],
                         input=stdin_text.encode(), capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    stderr = out.stderr.decode()
    prompts = [[int(x) for x in m.split()]
               for m in re.findall(r"^\[prompt token ids: ([\d ]+)\]$", stderr, re.M)]
    turns = re.findall(r"^\[turn (\d+): (\d+) prompt tokens \((\d+) cached\), (\d+) generated",
                       stderr, re.M)
    return out.stdout.decode("utf-8"), prompts, [tuple(map(int, t)) for t in turns]


def generate_chat_reply(message, *extra):
    out = subprocess.run([BIN, "generate", *COMMON, "--chat", "--prompt", message, *extra],
                         capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout.decode("utf-8")[:-1]


def test_second_turn_prompt_contains_the_first_exchange():
    first_reply = generate_chat_reply("Hello there")
    stdout, prompts, turns = chat("Hello there\nHow are you?\n/exit\nnever read\n")
    assert len(prompts) == 2 and len(turns) == 2  # /exit stopped reading
    assert stdout.startswith(first_reply + "\n")  # same loop and template as generate --chat
    first, second = prompts
    assert second[:len(first)] == first  # the history is a prefix of the next prompt
    tok = Tokenizer.from_file(str(GLM4 / "tokenizer.json"))
    text = tok.decode(second, skip_special_tokens=False)
    user1, reply1, user2 = (text.find("Hello there"), text.find(first_reply),
                            text.find("How are you?"))
    assert 0 <= user1 < reply1 < user2, text
    assert text.endswith("<|assistant|>")
    # Turn 2 reuses the KV of at least every full block of the first prompt (whole blocks
    # only, and never the last prompt token, whose logits must be computed).
    assert turns[1][0] == 2 and turns[1][1] == len(second)
    assert len(first) // BLOCK * BLOCK <= turns[1][2] < len(second) and turns[1][2] % BLOCK == 0
    assert len(first) >= BLOCK  # so the reuse above is not vacuous
    assert turns[0][2] == 0


def test_reset_forgets_the_conversation_but_keeps_the_system_message():
    stdout, prompts, turns = chat("Hi\nMore\n/reset\nHi\n", "--system", "Be brief.")
    assert len(prompts) == 3
    assert prompts[2] == prompts[0]
    tok = Tokenizer.from_file(str(GLM4 / "tokenizer.json"))
    assert "Be brief." in tok.decode(prompts[2], skip_special_tokens=False)
    first_reply = generate_chat_reply("Hi", "--system", "Be brief.")
    assert stdout.startswith(first_reply + "\n")
    assert stdout.endswith(first_reply + "\n")  # the third turn answers like the first
    assert turns[2][2] > 0  # and reuses the cached KV of the identical prompt


def test_eof_ends_the_session_and_blank_lines_are_skipped():
    stdout, prompts, turns = chat("\n\nHello\n")
    assert len(turns) == 1 and turns[0][0] == 1


def read_until(stream, predicate, timeout=60.0):
    """Reads from a pipe until predicate(bytes) holds; fails if nothing more arrives in time."""
    data = b""
    deadline = time.monotonic() + timeout
    while not predicate(data):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; got {data!r}"
        ready, _, _ = select.select([stream], [], [], remaining)
        assert ready, f"timed out; got {data!r}"
        chunk = os.read(stream.fileno(), 4096)
        assert chunk, f"stream closed; got {data!r}"
        data += chunk
    return data


def test_each_reply_is_flushed_before_the_next_line_is_read():
    first_reply = generate_chat_reply("Hello there").encode()
    proc = subprocess.Popen([BIN, "chat", *COMMON], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"Hello there\n")
        proc.stdin.flush()
        # The reply must arrive while stdin is still open (no buffering until EOF).
        got = read_until(proc.stdout, lambda d: d.endswith(b"\n") and len(d) > len(first_reply))
        assert got == first_reply + b"\n"
        proc.stdin.write(b"/exit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args,needle", [
    (["--model", "/nonexistent-model-dir"], "not a directory"),
    (["--model", str(GLM4), "--temperature", "-2"], "temperature"),
    (["--model", str(GLM4), "--top-k", "x"], "--top-k"),
])
def test_bad_model_or_flag_is_one_clear_error(args, needle):
    out = subprocess.run([BIN, "chat", *args], input=b"Hi\n", capture_output=True, timeout=60,
                         check=False)
    assert out.returncode == 1
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_a_turn_that_does_not_fit_is_reported_and_the_session_goes_on():
    out = subprocess.run([BIN, "chat", "--model", str(GLM4), "--max-tokens", "4",
                          "--ignore-eos", "--kv-cache-mb", "0.02"],
                         input=("word " * 400 + "\nHi\n").encode(), capture_output=True,
                         timeout=120, check=False)
    assert out.returncode == 0
    stderr = out.stderr.decode()
    assert re.search(r"^error: prompt \(\d+ tokens\) \+ max_tokens \(4\) needs", stderr, re.M)
    assert "[turn 2:" in stderr  # the failed turn was dropped; the next one ran
