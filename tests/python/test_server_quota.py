"""Per-caller rate limits and hot reload of `autoglm serve`, against ONE live server (auth off,
so the limits apply per client IP; `rate_limit_rpm: 3` from a --config file): the x-ratelimit-*
headers on answers, 429 with Retry-After in OpenAI's error shape, and SIGHUP / POST
/admin/reload re-reading the config file (new limits, new log level) while a streaming request
stays in flight and ends normally (BAD_INPUTS row 23's reload half; the auth rows belong to the
auth tests)."""

import json
import signal
import threading
import time

import httpx
import pytest

from server_process import ServerProcess

MODEL_NAME = "autoglm-tiny"
SMALL = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = tmp_path_factory.mktemp("quota") / "serve.yaml"
    config.write_text("rate_limit_rpm: 3\nlog_level: info\n")
    with ServerProcess("--config", str(config), "--watchdog-stall", "60") as proc:
        proc.config = config
        proc.wait_ready()
        yield proc
        assert proc.terminate() == 0


def complete(server, body=SMALL):
    return httpx.post(server.url + "/v1/completions", json=body, timeout=60)


def access_logged(server, request_id):
    return any(line.get("msg") == "request" and line.get("request_id") == request_id
               for line in server.lines)


def test_requests_over_the_limit_get_429_with_retry_after(server):
    for remaining in ("2", "1", "0"):
        answer = complete(server)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        assert answer.headers["x-ratelimit-remaining-requests"] == remaining
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
        assert "x-ratelimit-limit-tokens" not in answer.headers  # no token limit configured
    refused = complete(server)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 20  # one request per 20 s
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert error["param"] is None and "Limit 3" in error["message"]
    # Operational routes are not rate limited.
    assert httpx.get(server.url + "/health").status_code == 200


def test_admin_reload_applies_new_limits(server):
    server.config.write_text("rate_limit_rpm: 1000\nlog_level: info\n")
    answer = httpx.post(server.url + "/admin/reload", timeout=30)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome["ok"] is True
    assert {c["component"] for c in outcome["components"]} >= {"rate_limits", "log_level"}
    allowed = complete(server)
    assert allowed.status_code == 200  # the 3 used of the old limit, 997 left of the new one
    assert allowed.headers["x-ratelimit-limit-requests"] == "1000"
    # 996 left, plus what refilled (1000 per minute) since the reload.
    assert 990 <= int(allowed.headers["x-ratelimit-remaining-requests"]) <= 999
    chat = httpx.post(server.url + "/v1/chat/completions", timeout=60, json={
        "model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
    assert chat.status_code == 200, chat.text
    assert 0 < int(chat.headers["x-ratelimit-remaining-requests"]) <= 999
    assert "x-ratelimit-reset-requests" in chat.headers
    time.sleep(0.3)
    assert access_logged(server, allowed.headers["x-request-id"])  # info level: logged
    assert any(line.get("msg") == "reload" and line.get("trigger") == "POST /admin/reload"
               and line.get("ok") is True for line in server.lines)


def test_broken_config_fails_reload_and_keeps_the_old_values(server):
    server.config.write_text("rate_limit_rpm: lots\n")
    answer = httpx.post(server.url + "/admin/reload", timeout=30)
    assert answer.status_code == 500
    body = answer.json()
    assert body["error"]["code"] == "reload_failed"
    assert "rate_limits" in body["error"]["message"]
    assert any(not c["ok"] and "rate_limit_rpm" in c["error"] for c in body["components"])
    assert complete(server).headers["x-ratelimit-limit-requests"] == "1000"


def test_sighup_reloads_without_dropping_a_stream_in_flight(server):
    events = []
    first_chunk = threading.Event()
    ended_at = []

    def stream():
        body = {"model": MODEL_NAME, "prompt": "go", "max_tokens": 1000, "stream": True,
                "ignore_eos": True}
        with httpx.stream("POST", server.url + "/v1/completions", json=body,
                          timeout=120) as answer:
            events.append(("status", answer.status_code))
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    events.append(("data", line[6:]))
                    first_chunk.set()
        ended_at.append(time.monotonic())

    reader = threading.Thread(target=stream)
    reader.start()
    assert first_chunk.wait(timeout=30)
    server.config.write_text("rate_limit_rpm: 500\nlog_level: warn\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while True:
        probe = complete(server)
        assert probe.status_code == 200, probe.text
        if probe.headers["x-ratelimit-limit-requests"] == "500":
            break
        assert time.monotonic() < deadline, "SIGHUP never applied the new limit"
        time.sleep(0.02)
    reloaded_at = time.monotonic()
    reader.join(timeout=120)
    assert not reader.is_alive()
    assert ended_at and ended_at[0] > reloaded_at  # the stream was still running at the reload
    assert events[0] == ("status", 200)
    data = [payload for kind, payload in events if kind == "data"]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in data[:-1]]
    assert all("error" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert server.proc.poll() is None  # SIGHUP did not end the process
    # The log level came first: the request that saw the new limit left no info access line.
    time.sleep(0.3)
    assert not access_logged(server, probe.headers["x-request-id"])


def test_tokens_per_minute_charge_what_a_generation_used(server):
    server.config.write_text("rate_limit_rpm: 500\nrate_limit_tpm: 50\nlog_level: warn\n")
    assert httpx.post(server.url + "/admin/reload", timeout=30).status_code == 200
    body = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 60, "ignore_eos": True}
    first = complete(server, body)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-limit-tokens"] == "50"
    assert first.headers["x-ratelimit-remaining-tokens"] == "50"  # charged after the answer
    used = first.json()["usage"]["total_tokens"]
    assert used > 60
    refused = complete(server, body)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    # Back to one token at 50 per minute: (used - 50 + 1) tokens at 5/6 token per second.
    expected = (used - 50 + 1) * 60 / 50
    assert abs(int(refused.headers["retry-after"]) - expected) <= 2
