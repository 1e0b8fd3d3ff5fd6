"""The engine circuit breaker and liveness of `autoglm serve` against the real engine, with the
test-only backend fault injection (--inject-fault, compiled into test builds): injected
backend errors open the breaker (/ready 503, inference 503 with Retry-After and without
touching the engine), the half-open probe re-opens it while the fault lasts and closes it once
the engine works; NaN logits fail the request and count toward the breaker; a wedged engine
makes /health fail within the watchdog's stall limit. One server per scenario."""

import re
import threading
import time

import httpx

from server_process import ServerProcess

MODEL_NAME = "autoglm-tiny"
COMPLETION = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 2, "temperature": 0}


def metric(server, name):
    text = httpx.get(server.url + "/metrics").text
    match = re.search("^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", text, re.M)
    assert match, name
    return float(match.group(2))


def complete(server):
    return httpx.post(server.url + "/v1/completions", json=COMPLETION, timeout=60)


def wait_for(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_backend_errors_open_the_breaker_and_a_good_probe_closes_it():
    # 4 throws: 3 requests open the breaker, the first probe fails (re-open, cool-down
    # doubled), the second probe succeeds.
    with ServerProcess("--inject-fault", "throw:4", "--breaker-failure-threshold", "3",
                       "--breaker-cooldown", "0.5", "--warmup", "false") as server:
        server.wait_ready()
        for _ in range(3):
            assert complete(server).status_code == 500
        ready = wait_for(lambda: (r := httpx.get(server.url + "/ready")).status_code == 503 and r)
        assert ready.json()["status"] in ("circuit_open", "circuit_half_open")
        assert "injected backend fault" in ready.json()["reason"]

        refused = complete(server)
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "service_unavailable_error"
        assert int(refused.headers["retry-after"]) >= 1

        wait_for(lambda: httpx.get(server.url + "/ready").status_code == 200)
        assert metric(server, "autoglm:circuit_breaker_state") == 0
        assert metric(server, "autoglm:circuit_breaker_openings_total") == 2
        # The refused request never reached the engine, or it would have taken the 4th throw
        # and the first probe would have closed the breaker: two openings prove it did not.
        assert metric(server, "autoglm:engine_failed_steps_total") == 4
        assert complete(server).status_code == 200
        messages = [line.get("msg") for line in server.lines]
        for msg in ("circuit breaker open: refusing inference",
                    "circuit breaker half-open: probing the engine",
                    "circuit breaker closed: the probe succeeded"):
            assert msg in messages, msg
        assert server.terminate() == 0


def test_nan_logits_fail_the_request_and_count_toward_the_breaker():
    # The fault counts backend steps: without overlapped scheduling each request's first step is
    # one of them, rather than one submitted ahead for a request the first fault already ended.
    with ServerProcess("--inject-fault", "nan:2", "--breaker-failure-threshold", "2",
                       "--breaker-cooldown", "60", "--warmup", "false",
                       "--overlap-scheduling", "false") as server:
        server.wait_ready()
        for _ in range(2):
            response = complete(server)
            assert response.status_code == 500
            assert response.json()["error"]["type"] == "server_error"
        wait_for(lambda: metric(server, "autoglm:nonfinite_logits_requests_total") == 2)
        ready = wait_for(lambda: (r := httpx.get(server.url + "/ready")).status_code == 503 and r)
        assert ready.json()["status"] == "circuit_open"
        assert "non-finite logits" in ready.json()["reason"]
        assert 0 < ready.json()["retry_after_s"] <= 60
        assert metric(server, "autoglm:circuit_breaker_state") == 1
        refused = complete(server)
        assert refused.status_code == 503 and 50 <= int(refused.headers["retry-after"]) <= 60
        assert httpx.get(server.url + "/v1/models").status_code == 200  # not inference
        assert httpx.get(server.url + "/health").status_code == 200  # alive, just failing
        assert server.terminate() == 0


def test_wedged_engine_fails_liveness_and_readiness():
    with ServerProcess("--inject-fault", "hang", "--watchdog-stall", "0.5", "--warmup", "false",
                       "--drain-timeout", "0.5") as server:
        server.wait_ready()
        assert httpx.get(server.url + "/health").status_code == 200
        # This request wedges the engine thread; it is answered only at shutdown.
        threading.Thread(target=lambda: httpx.post(server.url + "/v1/completions",
                                                   json=COMPLETION, timeout=60),
                         daemon=True).start()
        health = wait_for(lambda: (r := httpx.get(server.url + "/health")).status_code == 503
                          and r)
        assert health.json()["status"] == "unhealthy"
        assert "no engine step" in health.json()["reason"]
        ready = httpx.get(server.url + "/ready")
        assert ready.status_code == 503 and "watchdog" in ready.json()["reason"]
        assert complete(server).status_code == 503
        assert server.terminate(timeout=30) == 0  # the hang is released; shutdown is clean
