"""`autoglm bench serve` against a live `autoglm serve` on loopback (glm4-tiny, CPU): every
request succeeds and the reported counts agree with what was asked; chat and completions;
Poisson arrivals and the concurrency cap; model discovery through /v1/models; TLS with a
self-signed certificate; and a non-zero exit when every request fails.

Needs the `serve` command (branches wip/http + wip/openai). Without it these tests FAIL with
a message saying so: they are never skipped."""

import json
import os
import pathlib
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "fixtures" / "models" / "glm4-tiny"
BIN = os.environ.get("AUTOGLM_BIN", str(ROOT / "build" / "tools" / "autoglm" / "autoglm"))
VOCAB = json.loads((MODEL / "config.json").read_text())["vocab_size"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, url, context=None, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"autoglm serve exited with {proc.returncode}: "
                        f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("autoglm serve did not become ready in time")


def start_server(*extra):
    # Without the command, CLI11 prints the top-level help (exit 0): look for serve's --port.
    serve_help = subprocess.run([BIN, "serve", "--help"], capture_output=True, check=False)
    if serve_help.returncode != 0 or b"--port" not in serve_help.stdout:
        pytest.fail("`autoglm serve` is missing from this build: merge wip/http and wip/openai "
                    "(this test must run against a live server, it is not skipped)")
    port = free_port()
    proc = subprocess.Popen(
        [BIN, "serve", "--model", str(MODEL), "--host", "127.0.0.1", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, port


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server():
    proc, port = start_server()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        yield url
    finally:
        stop_server(proc)


def bench(url, *args, expect_rc=0):
    out = subprocess.run([BIN, "bench", "serve", "--base-url", url, "--json", "-", *args],
                         capture_output=True, timeout=600, check=False)
    stderr = out.stderr.decode(errors="replace")
    assert out.returncode == expect_rc, stderr
    assert "Serving Benchmark Result" in stderr  # with --json - the table goes to stderr
    return json.loads(out.stdout), stderr


def check_successful_run(result, num_prompts):
    assert result["failed"] == 0, result["errors"]
    assert result["completed"] == num_prompts
    requests = result["requests"]
    assert len(requests) == num_prompts
    for r in requests:
        assert r["success"]
        assert 0 < r["ttft_ms"] <= r["e2e_ms"]
        assert r["itl_samples"] <= r["output_tokens"] - 1
    assert result["total_output_tokens"] == sum(r["output_tokens"] for r in requests)
    assert result["total_input_tokens"] == sum(r["input_tokens"] for r in requests)
    assert result["duration_s"] > 0
    assert result["output_throughput"] == pytest.approx(
        result["total_output_tokens"] / result["duration_s"], rel=1e-9)
    for metric in ("ttft", "e2el"):
        s = result[metric]
        assert s["samples"] == num_prompts
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"]


def test_completions_with_token_id_prompts(server):
    result, _ = bench(server, "--vocab-size", str(VOCAB), "--num-prompts", "12",
                      "--input-len", "24", "--output-len", "10", "--range-ratio", "0.5",
                      "--max-concurrency", "4", "--ignore-eos", "--seed", "3")
    check_successful_run(result, 12)
    assert result["peak_concurrency"] <= 4
    for r in result["requests"]:
        # Token-id prompts reach the engine unchanged, and ignore_eos runs to max_tokens.
        assert r["input_tokens"] == r["planned_input_tokens"]
        assert r["output_tokens"] == r["max_tokens"]
        assert 5 <= r["max_tokens"] <= 15
    assert result["tpot"]["samples"] == 12
    assert result["parameters"]["prompt_format"] == "token_ids"


def test_chat_with_text_prompts_and_poisson_arrivals(server):
    result, _ = bench(server, "--endpoint", "/v1/chat/completions", "--tokenizer", str(MODEL),
                      "--num-prompts", "8", "--input-len", "16", "--output-len", "6",
                      "--request-rate", "20", "--ignore-eos", "--seed", "4")
    check_successful_run(result, 8)
    starts = [r["start_s"] for r in result["requests"]]
    assert starts == sorted(starts) and starts[-1] > 0  # sent over time, not all at once
    for r in result["requests"]:
        assert r["input_tokens"] > r["planned_input_tokens"]  # the chat template adds tokens
    assert result["parameters"]["prompt_format"] == "text"


def test_model_is_discovered_from_v1_models(server):
    with urllib.request.urlopen(server + "/v1/models", timeout=10) as r:
        first_id = json.load(r)["data"][0]["id"]
    result, _ = bench(server, "--vocab-size", str(VOCAB), "--num-prompts", "2",
                      "--input-len", "8", "--output-len", "4")
    assert result["parameters"]["model"] == first_id
    assert result["completed"] == 2


def test_every_request_failing_exits_non_zero(server):
    result, stderr = bench(server, "--model", "no-such-model", "--vocab-size", str(VOCAB),
                           "--num-prompts", "3", "--input-len", "8", "--output-len", "4",
                           expect_rc=1)
    assert result["completed"] == 0 and result["failed"] == 3
    assert "HTTP 404" in result["errors"][0]
    assert "HTTP 404" in stderr


def test_unreachable_server_exits_non_zero():
    url = f"http://127.0.0.1:{free_port()}"
    result, _ = bench(url, "--model", "m", "--vocab-size", "10", "--num-prompts", "2",
                      "--input-len", "4", "--output-len", "2", expect_rc=1)
    assert result["failed"] == 2
    assert "connect" in result["errors"][0]


def test_https_with_self_signed_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    proc, port = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    url = f"https://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, context=ssl._create_unverified_context())
        args = ["--vocab-size", str(VOCAB), "--num-prompts", "3", "--input-len", "8",
                "--output-len", "4", "--ignore-eos"]
        # Verification is on by default, so the self-signed certificate is refused...
        refused, _ = bench(url, "--model", "m", *args, expect_rc=1)
        assert "TLS handshake" in refused["errors"][0]
        # ...and --insecure accepts it (model discovery included).
        result, _ = bench(url, "--insecure", *args)
        check_successful_run(result, 3)
    finally:
        stop_server(proc)
