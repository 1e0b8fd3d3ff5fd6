"""The two-level response cache end to end (issue 9, BAD_INPUTS.md 36): a real Debian
redis-server on a free loopback port (started and stopped here), `autoglm serve` with auth on,
the cache on and Redis as L2. A repeated deterministic request hits L1, then L2 after the
server restarts; a streamed hit replays as SSE; tenants do not share entries; values in Redis
are encrypted; with Redis frozen (slow) and then stopped (down), requests still succeed and
the L2 error metric rises. Owner: the "cache" thread."""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server_process import ServerProcess

MODEL_NAME = "autoglm-tiny"
KEYS = {name: "sk-" + secrets.token_urlsafe(24) for name in ("alpha", "beta", "metrics")}
CACHE_KEYS = "old:" + "11" * 32 + "\nnew:" + secrets.token_hex(32) + "\n"
REDIS = shutil.which("redis-server")

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server (Debian) is not installed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(port, *args, timeout=1.0):
    """One RESP command over a fresh connection; returns the raw reply bytes."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += s.recv(65536)
        if reply.startswith(b"$") and not reply.startswith(b"$-1"):
            size = int(reply[1:reply.index(b"\r\n")])
            while len(reply) < reply.index(b"\r\n") + 2 + size + 2:
                reply += s.recv(65536)
        return reply


class Redis:
    def __init__(self, tmp):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_command(self.port, "PING").startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def keys(self):
        reply = redis_command(self.port, "KEYS", "autoglm:response-cache:*")
        return re.findall(rb"autoglm:response-cache:[0-9a-f]{64}", reply)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)


def key_entry(name, tenant=None):
    entry = {"id": name, "hash": "sha256:" + hashlib.sha256(KEYS[name].encode()).hexdigest(),
             "role": "metrics" if name == "metrics" else "user"}
    if tenant:
        entry["tenant"] = tenant
    return entry


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    (d / "keys.yaml").write_text(json.dumps({"keys": [
        key_entry("alpha", "tenant-a"), key_entry("beta", "tenant-b"), key_entry("metrics")]}))
    (d / "cache.keys").write_text(CACHE_KEYS)
    os.chmod(d / "cache.keys", 0o600)
    redis = Redis(d)
    holder = {"dir": d, "redis": redis, "server": None}
    holder["server"] = start_server(holder)
    yield holder
    holder["server"].__exit__(None, None, None)
    redis.stop()


def start_server(holder):
    d = holder["dir"]
    server = ServerProcess("--auth", "on", "--api-keys-file", str(d / "keys.yaml"),
                           "--cache", "true", "--cache-redis",
                           f"127.0.0.1:{holder['redis'].port}",
                           "--cache-key-file", str(d / "cache.keys"), "--cache-ttl", "600",
                           "--cache-redis-timeout-ms", "50", "--cache-l1-bytes", "1048576")
    server.wait_ready(headers=auth("metrics"))
    # The cache's worker connects to Redis beside the model load; L2 is used once it has.
    assert wait_for(lambda: metric(server, "autoglm:response_cache_l2_up") == 1)
    return server


def auth(name):
    return {"Authorization": "Bearer " + KEYS[name]}


def complete(server, who, prompt, **extra):
    body = {"model": MODEL_NAME, "prompt": prompt, "max_tokens": 8, "temperature": 0}
    body.update(extra)
    return httpx.post(server.url + "/v1/completions", json=body, headers=auth(who), timeout=30)


def metric(server, name, labels=""):
    text = httpx.get(server.url + "/metrics", headers=auth("metrics"), timeout=10).text
    pattern = re.escape(name) + r"\{[^}]*" + re.escape(labels) + r"[^}]*\} (\S+)"
    match = re.search(pattern, text)
    assert match, f"{name} {labels} not in /metrics"
    return float(match.group(1))


def wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_repeated_deterministic_request_hits_l1(env):
    server = env["server"]
    first = complete(server, "alpha", "The cache says")
    assert first.status_code == 200, first.text
    assert "x-autoglm-cache" not in first.headers
    second = complete(server, "alpha", "The cache says")
    assert second.status_code == 200
    assert second.headers["x-autoglm-cache"] == "hit-l1"
    a, b = first.json(), second.json()
    assert b["choices"][0]["text"] == a["choices"][0]["text"]
    assert b["choices"][0]["finish_reason"] == a["choices"][0]["finish_reason"]
    assert b["usage"]["completion_tokens"] == a["usage"]["completion_tokens"]
    assert b["id"] != a["id"]
    assert metric(server, "autoglm:response_cache_hits_total", 'level="l1"') >= 1
    # Sampled requests are never cached.
    sampled = [complete(server, "alpha", "The cache says", temperature=0.8) for _ in range(2)]
    assert all("x-autoglm-cache" not in r.headers for r in sampled)


def test_streamed_hit_replays_as_sse(env):
    server = env["server"]
    whole = complete(server, "alpha", "The cache says").json()
    body = {"model": MODEL_NAME, "prompt": "The cache says", "max_tokens": 8, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", server.url + "/v1/completions", json=body, headers=auth("alpha"),
                      timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-autoglm-cache"] == "hit-l1"
        events = [line[len("data: "):] for line in response.iter_lines()
                  if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == whole["choices"][0]["text"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]


def stream_text(server, path, body):
    with httpx.stream("POST", server.url + path, json=dict(body, stream=True),
                      headers=auth("alpha"), timeout=30) as response:
        assert response.status_code == 200
        cache = response.headers.get("x-autoglm-cache")
        events = [line[len("data: "):] for line in response.iter_lines()
                  if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    delta = (lambda c: c["delta"].get("content") or "") if path.endswith("chat/completions") \
        else (lambda c: c["text"])
    return cache, "".join(delta(c["choices"][0]) for c in chunks if c["choices"])


def test_streamed_miss_is_stored_and_chat_hits_too(env):
    server = env["server"]
    body = {"model": MODEL_NAME, "prompt": "Streamed first", "max_tokens": 8, "temperature": 0}
    cache, streamed = stream_text(server, "/v1/completions", body)
    assert cache is None
    again = complete(server, "alpha", "Streamed first")
    assert again.headers.get("x-autoglm-cache") == "hit-l1"
    assert again.json()["choices"][0]["text"] == streamed
    chat = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 6, "seed": 7, "temperature": 0.9}
    first = httpx.post(server.url + "/v1/chat/completions", json=chat, headers=auth("alpha"),
                       timeout=30)
    assert first.status_code == 200, first.text
    second = httpx.post(server.url + "/v1/chat/completions", json=chat, headers=auth("alpha"),
                        timeout=30)
    assert second.headers.get("x-autoglm-cache") == "hit-l1"  # a seed makes it deterministic
    content = first.json()["choices"][0]["message"]["content"]
    assert second.json()["choices"][0]["message"]["content"] == content
    cache, replayed = stream_text(server, "/v1/chat/completions", chat)
    assert cache == "hit-l1" and replayed == content


def test_tenants_do_not_share_entries(env):
    server = env["server"]
    assert complete(server, "alpha", "Tenant prompt").status_code == 200
    assert complete(server, "alpha", "Tenant prompt").headers.get("x-autoglm-cache") == "hit-l1"
    other = complete(server, "beta", "Tenant prompt")
    assert other.status_code == 200
    assert "x-autoglm-cache" not in other.headers
    assert complete(server, "beta", "Tenant prompt").headers.get("x-autoglm-cache") == "hit-l1"


def open_sealed(value, aad):
    """Opens an L2 value independently of the server: kid_len, kid, nonce, ciphertext||tag."""
    keys = dict(line.split(":") for line in CACHE_KEYS.split())
    kid = value[1:1 + value[0]].decode()
    nonce = value[1 + value[0]:13 + value[0]]
    return kid, AESGCM(bytes.fromhex(keys[kid])).decrypt(nonce, value[13 + value[0]:], aad)


def test_l2_hit_after_restart_and_values_are_encrypted(env):
    redis = env["redis"]
    first = complete(env["server"], "alpha", "Shared by replicas").json()
    text = first["choices"][0]["text"].encode()
    def stored():
        values = []
        for key in redis.keys():
            reply = redis_command(redis.port, "GET", key)
            values.append((key, reply[reply.index(b"\r\n") + 2:-2]))
        return values

    def holds_answer():
        return any(text in open_sealed(value, key.split(b":")[-1])[1] for key, value in stored())

    # The L2 write is queued off the engine thread: wait until Redis holds this answer.
    assert wait_for(holds_answer), "no L2 value holds the answer"
    for key, value in stored():
        kid, plaintext = open_sealed(value, key.split(b":")[-1])
        assert kid == "new"  # the newest key seals
        assert text not in value or not text  # encrypted
        ttl = int(redis_command(redis.port, "TTL", key)[1:].strip())
        assert 0 < ttl <= 600
    env["server"].terminate()
    env["server"] = start_server(env)  # a fresh process: L1 is empty
    again = complete(env["server"], "alpha", "Shared by replicas")
    assert again.headers.get("x-autoglm-cache") == "hit-l2"
    assert again.json()["choices"][0]["text"] == first["choices"][0]["text"]
    assert complete(env["server"], "alpha", "Shared by replicas").headers.get(
        "x-autoglm-cache") == "hit-l1"
    assert metric(env["server"], "autoglm:response_cache_hits_total", 'level="l2"') == 1
    assert metric(env["server"], "autoglm:response_cache_lookup_seconds_count",
                  'level="l2"') >= 1


def timed_request(server, prompt):
    started = time.monotonic()
    response = complete(server, "alpha", prompt)
    return response, time.monotonic() - started


def test_slow_then_stopped_redis_is_bypassed(env):
    server, redis = env["server"], env["redis"]
    _, baseline = timed_request(server, "Before the outage")  # a miss with a healthy Redis
    errors_before = metric(server, "autoglm:response_cache_l2_errors_total")
    # Slow: Redis frozen. Each lookup waits at most the 50 ms timeout, then serving goes on.
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        for i in range(3):
            response, elapsed = timed_request(server, f"While Redis is frozen {i}")
            assert response.status_code == 200, response.text
            assert elapsed < baseline + 2.0
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert metric(server, "autoglm:response_cache_l2_errors_total") > errors_before
    # Down: Redis stopped mid-test.
    redis.stop()
    errors_stopped = metric(server, "autoglm:response_cache_l2_errors_total")
    bypasses_stopped = metric(server, "autoglm:response_cache_l2_bypasses_total")
    for i in range(3):
        response, elapsed = timed_request(server, f"With Redis down {i}")
        assert response.status_code == 200, response.text
        assert elapsed < baseline + 2.0
    # L1 keeps answering what it holds.
    assert complete(server, "alpha", "With Redis down 0").headers.get(
        "x-autoglm-cache") == "hit-l1"
    after = (metric(server, "autoglm:response_cache_l2_errors_total") +
             metric(server, "autoglm:response_cache_l2_bypasses_total"))
    assert after > errors_stopped + bypasses_stopped
    assert metric(server, "autoglm:response_cache_l2_up") == 0
    assert any(line.get("msg", "").startswith("response cache: Redis unavailable")
               for line in server.lines)
