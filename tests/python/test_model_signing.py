"""Model signing end to end (issue 8, BAD_INPUTS row 29): `autoglm keygen`, `sign` and `verify`,
keys made by the openssl CLI, the signature checked independently by `openssl pkeyutl` over the
documented canonical form, and `autoglm serve --require-signed-models true`, which becomes ready
on the signed fixture and stays not ready, never serving, on a tampered copy."""

import base64
import json
import pathlib
import shutil
import stat
import subprocess
import time

import httpx
import pytest

from server_process import BIN, ServerProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "models" / "glm4-tiny"
SIGNING = ROOT / "tests" / "fixtures" / "signing"
TEST_KEY = SIGNING / "TEST-ONLY-signing.key"
TEST_PUB = SIGNING / "TEST-ONLY-signing.pub"


def autoglm(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=120)


def copy_model(destination):
    shutil.copytree(TINY, destination)
    return destination


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_keygen_sign_verify_and_every_refusal(tmp_path):
    done = autoglm("keygen", "--out", tmp_path / "k")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "k.pub").read_text()
    assert autoglm("keygen", "--out", tmp_path / "k").returncode != 0  # never overwrites a key

    model = copy_model(tmp_path / "model")
    done = autoglm("sign", "--model", model, "--key", tmp_path / "k.key", "--model-id", "tiny",
                   "--version", "3")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((model / "autoglm-manifest.json").read_text())
    assert manifest["model_id"] == "tiny" and manifest["version"] == "3"
    assert [f["path"] for f in manifest["files"]] == sorted(p.name for p in TINY.iterdir())
    done = autoglm("verify", "--model", model, "--trusted-key", tmp_path / "k.pub")
    assert done.returncode == 0 and "verified" in done.stdout, done.stderr

    flip_last_byte(model / "model.safetensors")
    (model / "planted.py").write_text("import os\n")
    (model / "tokenizer.json").unlink()
    done = autoglm("verify", "--model", model, "--trusted-key", tmp_path / "k.pub")
    assert done.returncode == 1
    assert "error: hash_mismatch: hash mismatch: model.safetensors" in done.stderr
    assert "error: extra_file: extra file: planted.py" in done.stderr
    assert "error: missing_file: missing file: tokenizer.json" in done.stderr

    done = autoglm("verify", "--model", model, "--trusted-key", TEST_PUB)
    assert done.returncode == 1 and "error: untrusted_key" in done.stderr
    (model / "autoglm-manifest.json").unlink()
    done = autoglm("verify", "--model", model, "--trusted-key", tmp_path / "k.pub")
    assert done.returncode == 1 and "error: missing_manifest" in done.stderr


def openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def test_openssl_keys_and_an_independent_signature_check(tmp_path):
    openssl("genpkey", "-algorithm", "ed25519", "-out", tmp_path / "o.key")
    openssl("pkey", "-in", tmp_path / "o.key", "-pubout", "-out", tmp_path / "o.pub")
    model = copy_model(tmp_path / "model")
    done = autoglm("sign", "--model", model, "--key", tmp_path / "o.key")
    assert done.returncode == 0, done.stderr
    done = autoglm("verify", "--model", model, "--trusted-key", tmp_path / "o.pub")
    assert done.returncode == 0, done.stderr

    # The documented signed bytes: the context line, then RFC 8785 JSON of all but "signature".
    document = json.loads((model / "autoglm-manifest.json").read_text())
    signature = document.pop("signature")
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    (tmp_path / "msg").write_bytes(b"autoglm-model-manifest-v1\n" + canonical.encode())
    (tmp_path / "sig").write_bytes(base64.b64decode(signature["value"]))
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "o.pub", "-rawin",
            "-in", tmp_path / "msg", "-sigfile", tmp_path / "sig")

    # An edit to the manifest, re-signed by nobody, fails the signature.
    document["signature"] = signature
    document["version"] = "2"
    (model / "autoglm-manifest.json").write_text(json.dumps(document))
    done = autoglm("verify", "--model", model, "--trusted-key", tmp_path / "o.pub")
    assert done.returncode == 1 and "error: bad_signature" in done.stderr


def test_committed_fixture_proves_a_tampered_weight_is_refused():
    done = autoglm("verify", "--model", TINY, "--trusted-key", TEST_PUB,
                   "--manifest", SIGNING / "glm4-tiny.manifest.json")
    assert done.returncode == 0, done.stderr
    done = autoglm("verify", "--model", TINY, "--trusted-key", TEST_PUB,
                   "--manifest", SIGNING / "glm4-tiny-tampered.manifest.json")
    assert done.returncode == 1
    assert "error: hash_mismatch: hash mismatch: model.safetensors" in done.stderr


def signed_copy(directory, tamper):
    model = copy_model(directory)
    shutil.copy(SIGNING / "glm4-tiny.manifest.json", model / "autoglm-manifest.json")
    if tamper:
        flip_last_byte(model / "model.safetensors")
    return model


def wait_for_line(server, message, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server.lines):
            if line.get("msg") == message:
                return line
        time.sleep(0.02)
    raise AssertionError(f"no log line {message!r}")


def require_signed(model):
    return ServerProcess("--require-signed-models", "true", "--trusted-keys", str(TEST_PUB),
                         "--warmup", "false", model=model)


def test_server_serves_a_signed_model(tmp_path):
    with require_signed(signed_copy(tmp_path / "signed", tamper=False)) as server:
        server.wait_ready()
        assert wait_for_line(server, "model integrity verified")["bytes"] > 1_000_000
        response = httpx.post(server.url + "/v1/completions", timeout=30,
                              json={"model": "signed", "prompt": "hi", "max_tokens": 2})
        assert response.status_code == 200, response.text
        assert server.terminate() == 0


def test_server_refuses_a_tampered_model(tmp_path):
    with require_signed(signed_copy(tmp_path / "tampered", tamper=True)) as server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = httpx.get(server.url + "/ready", timeout=5)
            if ready.json()["status"] == "failed":
                break
            assert ready.status_code == 503
            time.sleep(0.05)
        assert ready.status_code == 503
        assert "model integrity" in ready.json()["error"]
        assert "model.safetensors" in ready.json()["error"]
        refusal = wait_for_line(server, "model integrity check failed: refusing to serve")
        assert refusal["problems"][0]["kind"] == "hash_mismatch"
        response = httpx.post(server.url + "/v1/completions", timeout=30,
                              json={"model": "tampered", "prompt": "hi", "max_tokens": 2})
        assert response.status_code == 503
        server.terminate()


def test_server_requires_trusted_keys_when_signing_is_required():
    done = subprocess.run([BIN, "serve", "--port", "0", "--model", str(TINY),
                           "--require-signed-models", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "require_signed_models is on but trusted_keys names no public key" in done.stderr
