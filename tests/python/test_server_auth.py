"""Authentication and RBAC of `autoglm serve` (BAD_INPUTS.md cases 20-25) against ONE live
server with auth on, an API keys file and a JWT config (HS256, RS256 and EdDSA keys). Tokens
are minted by PyJWT, independently of the server's verifier. Each test that fails
authentication on purpose connects from its own loopback source address (127.0.0.N), so the
per-IP brute-force limiter only ever sees the failures of the test that provokes it."""

import functools
import hashlib
import hmac
import itertools
import json
import secrets
import signal
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from server_process import ServerProcess

MODEL_NAME = "autoglm-tiny"
ISSUER = "https://issuer.test"
AUDIENCE = "autoglm"
HS_SECRET = secrets.token_bytes(48)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
KEYS = {name: "sk-" + secrets.token_urlsafe(32)
        for name in ("admin", "user", "metrics", "restricted", "rotating", "rotated")}
_source_addresses = (f"127.0.{n // 250}.{n % 250 + 2}" for n in itertools.count(1))


def pem(public_key):
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_entry(key_id, role, models=None):
    entry = {"id": key_id, "hash": "sha256:" + hashlib.sha256(KEYS[key_id].encode()).hexdigest(),
             "role": role}
    if models is not None:
        entry["models"] = models
    return entry


def write_keys(path, *rotation):
    entries = [key_entry("admin", "admin"), key_entry("user", "user"),
               key_entry("metrics", "metrics"),
               key_entry("restricted", "user", ["some-other-model"])]
    entries += [key_entry(name, "user") for name in rotation]
    path.write_text(json.dumps({"keys": entries}))  # JSON is YAML


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    write_keys(d / "keys.yaml", "rotating")
    (d / "hs.secret").write_bytes(HS_SECRET)
    (d / "rs.pem").write_bytes(pem(RSA_KEY.public_key()))
    (d / "ed.pem").write_bytes(pem(ED_KEY.public_key()))
    (d / "jwt.yaml").write_text(json.dumps({
        "issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 60,
        "keys": [{"kid": "hs", "alg": "HS256", "secret_file": "hs.secret"},
                 {"kid": "rs", "alg": "RS256", "public_key_file": "rs.pem"},
                 {"kid": "ed", "alg": "EdDSA", "public_key_file": "ed.pem"}]}))
    with ServerProcess("--auth", "on", "--api-keys-file", str(d / "keys.yaml"),
                       "--jwt-config-file", str(d / "jwt.yaml"),
                       "--auth-failures-per-minute", "10") as proc:
        proc.keys_path = d / "keys.yaml"
        proc.wait_ready(headers=bearer(KEYS["metrics"]))
        yield proc


def bearer(credential):
    return {"Authorization": "Bearer " + credential}


def client(server, source=None):
    """A client from a fresh loopback source address unless one is given."""
    transport = httpx.HTTPTransport(local_address=source or next(_source_addresses))
    return httpx.Client(base_url=server.url, transport=transport, timeout=60)


def call(http, route, credential=None):
    headers = bearer(credential) if credential else {}
    if route in ("/metrics", "/v1/models", "/ready"):
        return http.get(route, headers=headers)
    body = {"model": MODEL_NAME, "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}
    return http.post(route, headers=headers, json=body)


def claims(**overrides):
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
            "role": "user"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(alg="HS256", **overrides):
    key, kid = {"HS256": (HS_SECRET, "hs"), "RS256": (RSA_KEY, "rs"),
                "EdDSA": (ED_KEY, "ed")}[alg]
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


ROUTES = ["/metrics", "/tokenize", "/v1/models", "/v1/chat/completions", "/admin/reload"]


@pytest.mark.parametrize("route", ROUTES)
def test_missing_or_wrong_credential_is_401(server, route):
    with client(server) as http:
        for credential in (None, "sk-wrong-" + secrets.token_urlsafe(16)):
            response = call(http, route, credential)
            assert response.status_code == 401, (route, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"]["type"] == "authentication_error"
            if credential:
                assert credential not in response.text


def test_health_needs_nothing_and_ready_needs_a_credential(server):
    with client(server) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 401
        assert http.get("/ready", headers=bearer(KEYS["user"])).status_code == 200


def test_roles(server):
    with client(server) as http:
        assert call(http, "/metrics", KEYS["metrics"]).status_code == 200
        assert call(http, "/metrics", KEYS["admin"]).status_code == 200
        for route in ("/tokenize", "/v1/models", "/v1/chat/completions"):
            assert call(http, route, KEYS["user"]).status_code == 200, route
            forbidden = call(http, route, KEYS["metrics"])
            assert forbidden.status_code == 403, route
            assert forbidden.json()["error"]["type"] == "permission_error"
        assert call(http, "/metrics", KEYS["user"]).status_code == 403
        # A user may not call admin routes: refused by the policy whether or not the route
        # exists on this build (the admin routes come from another component).
        assert call(http, "/admin/reload", KEYS["user"]).status_code == 403


def test_model_not_allowed_is_403(server):
    with client(server) as http:
        for route in ("/v1/chat/completions", "/tokenize"):
            response = call(http, route, KEYS["restricted"])
            assert response.status_code == 403, (route, response.text)
            assert response.json()["error"]["code"] == "model_not_allowed"
        assert call(http, "/v1/models", KEYS["restricted"]).json()["data"] == []
        token = mint(models=["some-other-model"])
        assert call(http, "/v1/chat/completions", token).status_code == 403
        assert call(http, "/v1/chat/completions", mint(models=[MODEL_NAME])).status_code == 200


@pytest.mark.parametrize("alg", ["HS256", "RS256", "EdDSA"])
def test_valid_jwt_is_accepted(server, alg):
    with client(server) as http:
        assert call(http, "/v1/chat/completions", mint(alg)).status_code == 200
        assert call(http, "/metrics", mint(alg, role="metrics")).status_code == 200
        assert call(http, "/v1/models", mint(alg, role="metrics")).status_code == 403
        assert call(http, "/v1/models", mint(alg, role=None)).status_code == 403  # no role


@functools.lru_cache(maxsize=1)
def forged_tokens():
    now = int(time.time())
    good = mint("RS256")
    head, payload, signature = good.split(".")
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "hs"})
    rsa_public_pem = pem(RSA_KEY.public_key())
    # HS256 keyed with the RSA public key's PEM text, aimed at the RS256 key.
    confused = ".".join(jwt.api_jws.base64url_encode(part).decode() for part in (
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rs"}).encode(),
        json.dumps(claims()).encode()))
    confused += "." + jwt.api_jws.base64url_encode(
        hmac.new(rsa_public_pem, confused.encode(), hashlib.sha256).digest()).decode()
    tampered = jwt.api_jws.base64url_encode(json.dumps(claims(role="admin")).encode()).decode()
    return {
        "forged signature": jwt.encode(claims(), other_rsa, algorithm="RS256",
                                       headers={"kid": "rs"}),
        "payload edited": f"{head}.{tampered}.{signature}",
        "expired": mint("HS256", exp=now - 120, iat=now - 700),
        "future nbf": mint("EdDSA", nbf=now + 300),
        "wrong iss": mint("HS256", iss="https://evil.test"),
        "wrong aud": mint("RS256", aud="someone-else"),
        "alg none": unsigned,
        "HS256 with the RSA public key": confused,
        "wrong secret": jwt.encode(claims(), secrets.token_bytes(48), algorithm="HS256",
                                   headers={"kid": "hs"}),
    }


@pytest.mark.parametrize("case", list(forged_tokens()))
def test_bad_jwt_is_401(server, case):
    token = forged_tokens()[case]
    with client(server) as http:
        response = call(http, "/v1/chat/completions", token)
        assert response.status_code == 401, (case, response.text)
        assert token not in response.text


def test_expired_within_leeway_is_accepted(server):
    now = int(time.time())
    with client(server) as http:
        assert call(http, "/v1/models", mint(exp=now - 20, iat=now - 600)).status_code == 200


def test_brute_force_is_429_and_audit_log_has_no_secret(server):
    with client(server) as http:
        guesses = ["sk-guess-" + secrets.token_urlsafe(16) for _ in range(10)]
        for guess in guesses:
            assert call(http, "/v1/models", guess).status_code == 401
        blocked = call(http, "/v1/models", KEYS["user"])  # even the right key, now
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        assert blocked.json()["error"]["type"] == "rate_limit_error"
        assert http.get("/health").status_code == 200
    with client(server) as elsewhere:  # another address is unaffected
        assert call(elsewhere, "/v1/models", KEYS["user"]).status_code == 200
    log = "".join(server.raw_lines)
    assert "authentication failed" in log
    for guess in guesses:
        assert guess not in log


def test_key_rotation_with_a_stream_in_flight(server):
    body = {"model": MODEL_NAME, "prompt": "word " * 50, "max_tokens": 600, "stream": True,
            "ignore_eos": True}
    with client(server) as http, http.stream("POST", "/v1/completions", json=body,
                                             headers=bearer(KEYS["rotating"])) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert "choices" in first
        # Rotate: the old key goes, a new one comes; SIGHUP reloads.
        write_keys(server.keys_path, "rotated")
        reloads = sum("API keys reloaded" in line for line in server.raw_lines)
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while sum("API keys reloaded" in line for line in server.raw_lines) == reloads:
            assert time.monotonic() < deadline, "no reload logged"
            time.sleep(0.02)
        with client(server) as other:
            assert call(other, "/v1/models", KEYS["rotating"]).status_code == 401
            assert call(other, "/v1/models", KEYS["rotated"]).status_code == 200
            assert call(other, "/v1/models", KEYS["user"]).status_code == 200
        rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        finish = json.loads(rest[-2][len("data: "):])["choices"][0]["finish_reason"]
        assert finish == "length"
