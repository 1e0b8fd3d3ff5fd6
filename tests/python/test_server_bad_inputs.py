"""The HTTP and API rows of ../shared/BAD_INPUTS.md, sent as raw requests to a live
`autoglm serve` on loopback: each gets the right status and the OpenAI error JSON (naming the
parameter where there is one), and the server keeps serving afterwards. Rows 1-5 (body and
header limits, chunked bodies, slowloris, stalled SSE readers) are in test_server_http.py and
test_server_openai.py; this file covers rows 6-19 over HTTP."""

import json

import httpx
import pytest

from server_process import ServerProcess

MODEL = "autoglm-tiny"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture(scope="module")
def server():
    with ServerProcess("--max-body-bytes", str(8 << 20)) as proc:
        proc.wait_ready()
        yield proc


def chat(**fields):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    body.update(fields)
    return json.dumps(body)


def completion(**fields):
    body = {"model": MODEL, "prompt": "hi", "max_tokens": 4}
    body.update(fields)
    return json.dumps(body)


def post(server, path, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    return httpx.post(server.url + path, content=data, timeout=60,
                      headers={"content-type": content_type})


def assert_error(response, status, param=None):
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if param is not None:
        assert err["param"] == param, err
    return err


CASES = [
    # 6. malformed JSON, trailing garbage, deep nesting
    ("malformed json", CHAT, '{"model": "autoglm-tiny", "messages": [', 400, None),
    ("trailing garbage", CHAT, chat() + " garbage", 400, None),
    ("nested 100000 deep", CHAT, "[" * 100000 + "]" * 100000, 400, None),
    ("nested object in a field", CHAT, chat()[:-1] + ', "user": ' + '{"a":' * 100000 + "1" +
     "}" * 100000 + "}", 400, None),
    # 7. invalid UTF-8 and lone surrogates
    ("invalid utf-8", CHAT, chat().encode().replace(b'"hi"', b'"h\xff\xfei"'), 400, None),
    ("lone surrogate", CHAT, chat().replace('"hi"', '"h\\ud800i"'), 400, None),
    # 8. wrong types and numbers out of range
    ("max_tokens string", CHAT, chat(max_tokens="4"), 400, "max_tokens"),
    ("temperature 1e309", CHAT, chat()[:-1] + ', "temperature": 1e309}', 400, None),
    ("max_tokens 2^64", CHAT, chat()[:-1].replace('"max_tokens": 4', '"max_tokens": 18446744073709551616') + "}", 400, "max_tokens"),
    ("n negative", CHAT, chat(n=-1), 400, "n"),
    # 9. max_tokens bounds, prompt + max_tokens over the context
    ("max_tokens 0", CHAT, chat(max_tokens=0), 400, "max_tokens"),
    ("max_tokens 2^31", CHAT, chat(max_tokens=2**31), 400, "max_tokens"),
    # 10. empty prompt or messages
    ("empty messages", CHAT, chat(messages=[]), 400, "messages"),
    ("empty prompt", COMPLETIONS, completion(prompt=""), 400, "prompt"),
    # 11. NaN/inf/out-of-range sampling parameters
    ("temperature NaN", CHAT, chat()[:-1] + ', "temperature": NaN}', 400, None),
    ("temperature 3", CHAT, chat(temperature=3), 400, "temperature"),
    ("top_p 1.5", CHAT, chat(top_p=1.5), 400, "top_p"),
    ("top_k -5", CHAT, chat(top_k=-5), 400, "top_k"),
    ("min_p 2", CHAT, chat(min_p=2), 400, "min_p"),
    ("presence_penalty 9", CHAT, chat(presence_penalty=9), 400, "presence_penalty"),
    ("frequency_penalty -9", CHAT, chat(frequency_penalty=-9), 400, "frequency_penalty"),
    ("repetition_penalty 0", CHAT, chat(repetition_penalty=0), 400, "repetition_penalty"),
    # 12. a huge n
    ("n 1000000", CHAT, chat(n=1000000), 400, "n"),
    # 13. logit_bias
    ("logit_bias 100000 keys", CHAT, chat(logit_bias={str(i): 1 for i in range(100000)}), 400,
     "logit_bias"),
    # A million keys do not fit the 8 MiB body limit: refused before parsing.
    ("logit_bias million keys", CHAT, chat(logit_bias={str(i): 1 for i in range(1000000)}), 413,
     None),
    ("logit_bias invalid id", CHAT, chat(logit_bias={"99999999": 1}), 400, "logit_bias"),
    ("logit_bias not an id", CHAT, chat(logit_bias={"abc": 1}), 400, "logit_bias"),
    ("logit_bias inf", CHAT, chat()[:-1] + ', "logit_bias": {"5": 1e999}}', 400, None),
    # 14. stop sequences
    ("too many stops", CHAT, chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("1 MB stop", CHAT, chat(stop="x" * (1 << 20)), 400, "stop"),
    # 15. top_logprobs over the cap
    ("top_logprobs 21", CHAT, chat(logprobs=True, top_logprobs=21), 400, "top_logprobs"),
    # 18. image parts to a text-only model (never fetched)
    ("image part", CHAT, chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]), 400, None),
]


@pytest.mark.parametrize("name,path,body,status,param", CASES, ids=[c[0] for c in CASES])
def test_bad_input_rows(server, name, path, body, status, param):
    assert_error(post(server, path, body), status, param)


def test_prompt_plus_max_tokens_over_context_gives_the_counts(server):
    err = assert_error(post(server, COMPLETIONS, completion(prompt="hello " * 50,
                                                            max_tokens=10**6)), 400)
    assert any(ch.isdigit() for ch in err["message"]), err


@pytest.mark.parametrize("model", ["nope", "../autoglm-tiny", "/etc/passwd", "a/../../b"])
def test_unknown_or_path_like_model_is_404(server, model):
    err = assert_error(post(server, CHAT, chat(model=model)), 404)
    assert err["code"] == "model_not_found"


def test_huge_prompt_is_413_before_tokenizing(server):
    # Over the body limit (8 MiB here): refused from the Content-Length, nothing tokenized.
    response = post(server, COMPLETIONS, completion(prompt="x" * (9 << 20)))
    assert_error(response, 413)


def test_unknown_extra_fields_are_ignored(server):
    response = post(server, CHAT, chat(temperature=0, some_future_field={"x": 1},
                                       extra_body_field=[1, 2, 3]))
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"


def test_server_keeps_serving_after_every_bad_input(server):
    for _, path, body, _, _ in CASES:
        post(server, path, body)
    response = post(server, CHAT, chat(temperature=0))
    assert response.status_code == 200, response.text
    assert httpx.get(server.url + "/health").status_code == 200
