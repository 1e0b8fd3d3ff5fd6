"""The audit log of `autoglm serve` (docs/SECURITY.md "Audit log") against live servers: one
module-scoped server writing to a file in tmp (inference records with the right fields and no
prompt text, model load and unload records, `autoglm audit verify` passing and then failing
after an edit), and servers whose audit log is /dev/full (writes fail with ENOSPC): policy
closed answers 503 to inference, policy open serves."""

import json
import resource
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from server_process import BIN, ServerProcess

MODEL_NAME = "autoglm-tiny"
SECRET_PROMPT = "zebra-quartz-4711 is my account password"


def read_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.log"


@pytest.fixture(scope="module")
def server(audit_path):
    with ServerProcess("--audit-log", str(audit_path), "--watchdog-stall", "60") as proc:
        proc.wait_ready()
        yield proc


def chat(server, stream=False, model=MODEL_NAME):
    body = {"model": model, "messages": [{"role": "user", "content": SECRET_PROMPT}],
            "max_tokens": 4, "temperature": 0, "stream": stream}
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)


def test_inference_records_have_the_audit_fields_and_no_prompt_text(server, audit_path):
    response = chat(server)
    assert response.status_code == 200
    trace_id = response.headers["traceparent"].split("-")[1]
    streamed = httpx.post(server.url + "/v1/completions",
                          json={"model": MODEL_NAME, "prompt": SECRET_PROMPT, "max_tokens": 3,
                                "stream": True}, timeout=60)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    assert chat(server, model="no-such-model").status_code == 404

    text = audit_path.read_text()
    assert "zebra" not in text and "password" not in text
    records = read_records(audit_path)
    assert records[0]["action"] == "model_load" and records[0]["status"] == "ok"
    inference = [r for r in records if r["action"] == "inference"]
    assert len(inference) == 3
    first = inference[0]
    assert list(first) == ["timestamp", "seq", "user_id", "action", "resource", "client_ip",
                           "status", "http_status", "prompt_tokens", "completion_tokens",
                           "trace_id", "detail", "prev_hash"]
    assert first["user_id"] == "anonymous"
    assert first["resource"] == MODEL_NAME
    assert first["client_ip"] == "127.0.0.1"
    assert (first["status"], first["http_status"]) == ("ok", 200)
    assert first["prompt_tokens"] == response.json()["usage"]["prompt_tokens"]
    assert first["completion_tokens"] == response.json()["usage"]["completion_tokens"]
    assert first["trace_id"] == trace_id
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == 24
    assert inference[1]["status"] == "ok" and inference[1]["completion_tokens"] > 0
    assert (inference[2]["status"], inference[2]["http_status"]) == ("error", 404)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


def test_verify_passes_then_fails_after_an_edit(server, audit_path, tmp_path):
    assert chat(server).status_code == 200
    ok = subprocess.run([BIN, "audit", "verify", str(audit_path)], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "chain: intact" in ok.stdout and "records: " in ok.stdout

    copy = tmp_path / "audit.log"
    shutil.copy(audit_path, copy)
    lines = copy.read_text().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = lines[1].replace('"status":"ok"', '"status":"OK"', 1)
    copy.write_text("".join(lines))
    bad = subprocess.run([BIN, "audit", "verify", str(copy)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"{copy}:2: edited" in bad.stdout


def test_a_client_that_leaves_mid_stream_still_leaves_one_record(server, audit_path):
    context = httpx.get(server.url + "/v1/models").json()["data"][0]["max_model_len"]
    body = {"model": MODEL_NAME, "prompt": "count", "max_tokens": context - 16, "stream": True,
            "ignore_eos": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        trace_id = response.headers["traceparent"].split("-")[1]
        next(response.iter_lines())  # one event, then hang up
    deadline = time.monotonic() + 20
    mine = []
    while time.monotonic() < deadline and not mine:
        mine = [r for r in read_records(audit_path) if r["trace_id"] == trace_id]
        time.sleep(0.05)
    assert len(mine) == 1
    assert (mine[0]["status"], mine[0]["detail"]) == ("error", "client_gone")


def test_drain_records_the_model_unload(server, audit_path):
    assert server.terminate() == 0
    records = read_records(audit_path)
    assert records[-1]["action"] == "model_unload"
    verify = subprocess.run([BIN, "audit", "verify", str(audit_path)], capture_output=True)
    assert verify.returncode == 0


@pytest.mark.parametrize("policy, expected", [("closed", 503), ("open", 200)])
def test_a_full_audit_disk_follows_the_failure_policy(policy, expected):
    with ServerProcess("--audit-log", "/dev/full", "--audit-failure-policy", policy,
                       "--watchdog-stall", "60") as proc:
        proc.wait_ready()
        assert chat(proc).status_code == expected
        streamed = chat(proc, stream=True)
        assert streamed.status_code == expected
        if policy == "closed":
            assert streamed.json()["error"]["code"] == "audit_unavailable"
        assert httpx.get(proc.url + "/health").status_code == 200
        lost = [line for line in proc.lines if line.get("msg") == "audit record lost"]
        assert lost  # every lost record is logged
        assert proc.terminate() == 0


@pytest.fixture
def file_size_limit():
    """Starts servers whose files may not grow past `limit` bytes (RLIMIT_FSIZE, inherited by
    the child; SIGXFSZ ignored so that a write past it fails with EFBIG instead of killing)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def start(limit, *args):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            return ServerProcess(*args)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    yield start
    signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize("stream", [False, True])
def test_closed_policy_when_the_record_fails_at_completion(file_size_limit, tmp_path, stream):
    # Room for the model_load record (~270 bytes), not for an inference record after it: the
    # first request's record is the first write that fails, after its generation ran.
    audit = tmp_path / "audit.log"
    with file_size_limit(400, "--audit-log", str(audit), "--audit-failure-policy", "closed",
                         "--watchdog-stall", "60") as proc:
        proc.wait_ready()
        response = chat(proc, stream=stream)
        if stream:
            # The 200 and the tokens are out; the stream ends with the error before [DONE].
            assert response.status_code == 200
            events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
            assert events[-1] == "[DONE]"
            assert json.loads(events[-2])["error"]["code"] == "audit_unavailable"
        else:
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "audit_unavailable"
        # The log is known to be failing now: the next request is refused before it runs.
        assert chat(proc).status_code == 503
        assert proc.terminate() == 0
    # The failed (short) writes were cut back: the file still verifies.
    assert [r["action"] for r in read_records(audit)] == ["model_load"]
    verify = subprocess.run([BIN, "audit", "verify", str(audit)], capture_output=True)
    assert verify.returncode == 0
