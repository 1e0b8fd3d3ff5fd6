"""The OpenAI API of `autoglm serve` through the official `openai` SDK against a live server on
loopback: chat and completions (streamed and not), stop, n=2, logprobs, seed
reproducibility, usage, errors, 100 concurrent streams, a client that disconnects mid-stream
or while waiting for a non-streamed answer (its KV blocks return to the baseline shown by
/metrics), the access-log fields of the OpenAI routes, and SIGTERM drain with streams in
flight."""

import concurrent.futures
import re
import socket
import threading

import httpx
import openai
import pytest

from server_process import ServerProcess, wait_for

MODEL_NAME = "autoglm-tiny"
MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def server():
    with ServerProcess("--max-num-seqs", "32", "--watchdog-stall", "60") as proc:
        proc.wait_ready()
        yield proc


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def metric(server, name):
    text = httpx.get(server.url + "/metrics").text
    match = re.search("^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", text, re.M)
    assert match, name
    return float(match.group(2))


def test_chat_completion_not_streamed(client):
    response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES,
                                              max_tokens=8, temperature=0)
    assert response.object == "chat.completion"
    assert response.choices[0].message.role == "assistant"
    assert isinstance(response.choices[0].message.content, str)
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_chat_completion_streamed_matches_non_streamed(client):
    whole = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=12,
                                           temperature=0, seed=1)
    chunks = list(client.chat.completions.create(
        model=MODEL_NAME, messages=MESSAGES, max_tokens=12, temperature=0, seed=1, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_streamed_and_not(client):
    whole = client.completions.create(model=MODEL_NAME, prompt="Once upon a time", max_tokens=10,
                                      temperature=0)
    assert whole.object == "text_completion" and whole.usage.completion_tokens >= 1
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL_NAME, prompt="Once upon a time", max_tokens=10, temperature=0, stream=True)
        if c.choices)
    assert streamed == whole.choices[0].text


def test_n2_seed_reproducibility_and_logprobs(client):
    args = dict(model=MODEL_NAME, prompt="The weather", max_tokens=8, temperature=1.0, seed=1234)
    first = client.completions.create(n=2, **args)
    second = client.completions.create(n=2, **args)
    assert len(first.choices) == 2
    assert [c.text for c in first.choices] == [c.text for c in second.choices]
    chat = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=4,
                                          temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == chat.usage.completion_tokens
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)


def test_stop_string_ends_the_answer(client):
    base = client.completions.create(model=MODEL_NAME, prompt="abc", max_tokens=16,
                                     temperature=0, extra_body={"ignore_eos": True})
    text = base.choices[0].text
    if len(text) < 4:
        pytest.skip("the tiny model's greedy text is too short to pick a stop string from")
    stop = text[2:4]
    stopped = client.completions.create(model=MODEL_NAME, prompt="abc", max_tokens=16,
                                        temperature=0, stop=[stop],
                                        extra_body={"ignore_eos": True})
    assert stopped.choices[0].finish_reason == "stop"
    assert stop not in stopped.choices[0].text
    assert text.startswith(stopped.choices[0].text)


def test_errors_use_the_openai_shape(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=4)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, temperature=-1)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=[], max_tokens=4)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL_NAME, prompt="x", max_tokens=0)
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]


def test_hundred_concurrent_streams(client):
    def one(i):
        text = ""
        for chunk in client.chat.completions.create(
                model=MODEL_NAME, messages=[{"role": "user", "content": f"stream {i}"}],
                max_tokens=8, temperature=0, stream=True):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        return text

    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        texts = list(pool.map(one, range(100)))
    assert len(texts) == 100


def wait_until_idle(server):
    wait_for(lambda: metric(server, "autoglm:num_requests_running") == 0)


def freed(server, baseline):
    return (metric(server, "autoglm:kv_cache_blocks_used") <= baseline
            and metric(server, "autoglm:num_requests_running") == 0)


def test_disconnect_mid_stream_frees_kv(server):
    wait_until_idle(server)
    baseline = metric(server, "autoglm:kv_cache_blocks_used")
    body = (b'{"model":"autoglm-tiny","prompt":"' + b"word " * 200 +
            b'","max_tokens":3500,"stream":true,"ignore_eos":true}')
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert b"text/event-stream" in sock.recv(65536)
    # The headers go out before the request is scheduled: wait for it to hold KV blocks.
    wait_for(lambda: metric(server, "autoglm:kv_cache_blocks_used") > baseline)
    held = metric(server, "autoglm:kv_cache_blocks_used")
    assert held > baseline, f"blocks used {held}, baseline {baseline}"
    sock.close()
    wait_for(lambda: freed(server, baseline), timeout=30)
    left = metric(server, "autoglm:kv_cache_blocks_used")
    assert left <= baseline, f"blocks used {left} after the disconnect, baseline {baseline}"
    assert metric(server, "autoglm:num_requests_running") == 0


def access_line(server, request_id, timeout=10):
    line = wait_for(lambda: next((l for l in list(server.lines) if l.get("msg") == "request"
                                  and l.get("request_id") == request_id), None), timeout)
    if line is None:
        raise AssertionError("no access-log line for " + request_id)
    return line


def test_disconnect_while_waiting_for_a_non_streamed_answer_frees_kv(server):
    wait_until_idle(server)
    baseline = metric(server, "autoglm:kv_cache_blocks_used")
    seen = len(server.lines)
    body = (b'{"model":"autoglm-tiny","prompt":"' + b"word " * 200 +
            b'","max_tokens":3500,"ignore_eos":true}')
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert wait_for(lambda: metric(server, "autoglm:num_requests_running") >= 1)  # generating
    sock.close()
    wait_for(lambda: freed(server, baseline), timeout=30)
    assert metric(server, "autoglm:kv_cache_blocks_used") <= baseline
    assert metric(server, "autoglm:num_requests_running") == 0
    # It was cancelled because the client left, not finished: its access line says so.
    lines = wait_for(lambda: [l for l in server.lines[seen:] if l.get("msg") == "request"
                              and l.get("route") == "/v1/completions"], timeout=5)
    assert lines and lines[0]["status"] == 499 and lines[0]["finish_reason"] == "client_gone"


def test_access_log_has_model_tokens_and_finish_but_no_text(server):
    secret = "zebra-quartz-prompt"
    chat = httpx.post(server.url + "/v1/chat/completions", timeout=60, json={
        "model": MODEL_NAME, "messages": [{"role": "user", "content": secret}],
        "max_tokens": 5})
    assert chat.status_code == 200
    line = access_line(server, chat.headers["x-request-id"])
    usage = chat.json()["usage"]
    assert line["model"] == MODEL_NAME
    assert line["prompt_tokens"] == usage["prompt_tokens"]
    assert line["completion_tokens"] == usage["completion_tokens"]
    assert line["cached_tokens"] >= 0
    assert line["finish_reason"] == chat.json()["choices"][0]["finish_reason"]
    assert "ttft_ms" not in line  # not streamed
    with httpx.stream("POST", server.url + "/v1/completions", timeout=60, json={
            "model": MODEL_NAME, "prompt": secret, "max_tokens": 4, "stream": True,
            "ignore_eos": True}) as streamed:
        output = "".join(streamed.iter_text())
        request_id = streamed.headers["x-request-id"]
    line = access_line(server, request_id)
    assert line["stream"] is True and line["finish_reason"] == "length"
    assert line["completion_tokens"] == 4 and line["ttft_ms"] > 0
    assert "[DONE]" in output
    assert not any(secret in raw for raw in server.raw_lines)  # prompts are never logged


def test_sigterm_drain_with_streams_in_flight():
    with ServerProcess("--drain-timeout", "1") as proc:
        proc.wait_ready()
        sdk = openai.OpenAI(base_url=proc.url + "/v1", api_key="unused", max_retries=0)
        outcomes = []
        chunks = []

        def stream():
            try:
                for _ in sdk.completions.create(model=MODEL_NAME, prompt="go", max_tokens=4000,
                                                stream=True, extra_body={"ignore_eos": True}):
                    chunks.append(1)
                outcomes.append("ended")
            except Exception as error:  # the final error event or a closed stream
                outcomes.append(type(error).__name__)

        threads = [threading.Thread(target=stream) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(chunks) >= 8, timeout=20)
        assert len(chunks) >= 8  # the streams are really under way
        assert proc.terminate(timeout=30) == 0
        for thread in threads:
            thread.join(timeout=30)
        assert len(outcomes) == 4
        messages = [line.get("msg") for line in proc.lines]
        assert "draining" in messages and messages[-1] == "stopped"
