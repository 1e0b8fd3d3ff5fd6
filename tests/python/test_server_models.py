"""Model management of `autoglm serve` (docs/OPERATIONS.md "Model management") against ONE live
server with three models: `main` (models/autoglm-tiny, preloaded and pinned), `lazy` and
`third` (tiny fixture models, loaded on first use), auth on with an admin and a user key, an
audit log, and a memory budget that holds two models: /ready and /v1/models states, a request
that loads a lazy model, an eviction, the admin API (list, load, unload, pin, unpin; 403 for a
user key) and the audit records of all of it."""

import hashlib
import json
import pathlib
import secrets

import httpx
import pytest

from server_process import MODEL, ROOT, ServerProcess

FIXTURES = ROOT / "tests" / "fixtures" / "models"
DIRS = {"main": MODEL, "lazy": FIXTURES / "glm4-tiny", "third": FIXTURES / "llama-tiny"}
KV_BYTES = 1 << 20
KEYS = {"admin": "sk-" + secrets.token_urlsafe(32), "user": "sk-" + secrets.token_urlsafe(32)}


def estimate(directory):
    """The server's estimate of a model (models/model_spec.h): weights plus the KV pool."""
    return KV_BYTES + sum(p.stat().st_size for p in pathlib.Path(directory).glob("*.safetensors"))


def auth(key):
    return {"Authorization": "Bearer " + KEYS[key]}


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("models-audit") / "audit.log"


@pytest.fixture(scope="module")
def server(tmp_path_factory, audit_path):
    d = tmp_path_factory.mktemp("models")
    keys = [{"id": name, "role": name,
             "hash": "sha256:" + hashlib.sha256(KEYS[name].encode()).hexdigest()}
            for name in KEYS]
    (d / "keys.yaml").write_text(json.dumps({"keys": keys}))
    sizes = sorted(estimate(p) for p in DIRS.values())
    budget = sizes[1] + sizes[2] + 1000  # any two fit, never three
    args = ["--auth", "on", "--api-keys-file", str(d / "keys.yaml"),
            "--audit-log", str(audit_path), "--kv-cache-bytes", str(KV_BYTES),
            "--model-memory-budget", str(budget), "--preload-models", "main",
            "--pinned-models", "main", "--device", "cpu"]
    for name, directory in DIRS.items():
        args += ["--model", f"{name}={directory}"]
    with ServerProcess(*args, model=None) as proc:
        proc.wait_ready(headers=auth("admin"))
        yield proc


def client(server, key="admin"):
    return httpx.Client(base_url=server.url, headers=auth(key), timeout=60)


def states(http):
    models = http.get("/v1/models").json()["data"]
    return {m["id"]: m["status"] for m in models}


def complete(http, model):
    return http.post("/v1/completions", json={"model": model, "prompt": "hi", "max_tokens": 2})


def records(audit_path):
    return [json.loads(line) for line in audit_path.read_text().splitlines()]


def test_ready_and_models_list_show_the_preloaded_model_only(server):
    with client(server) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        listed = http.get("/v1/models").json()["data"]
        assert [m["id"] for m in listed] == ["main", "lazy", "third"]
        assert {m["id"]: m["status"] for m in listed} == {
            "main": "ready", "lazy": "unloaded", "third": "unloaded"}
        assert listed[0]["object"] == "model" and listed[0]["max_model_len"] > 0
        assert "max_model_len" not in listed[1]


def test_unknown_models_are_404_and_load_nothing(server):
    with client(server) as http:
        for name in ("nope", "../main", "/etc/passwd"):
            response = complete(http, name)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "model_not_found"
        assert http.post("/tokenize", json={"model": "nope", "prompt": "hi"}).status_code == 404


def test_a_request_loads_a_lazy_model_and_a_third_evicts_the_idle_one(server, audit_path):
    with client(server) as http:
        response = complete(http, "lazy")
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "lazy"
        assert states(http)["lazy"] == "ready"
        # /tokenize routes by model too (default: the first model).
        assert http.post("/tokenize", json={"model": "lazy", "prompt": "hi"}).json()["count"] > 0
        assert http.post("/tokenize", json={"prompt": "hi"}).status_code == 200
        # main is pinned, lazy idle: loading third must evict lazy.
        assert complete(http, "third").status_code == 200
        now = states(http)
        assert now["third"] == "ready" and now["main"] == "ready"
        assert now["lazy"] in ("unloaded", "unloading")
        metrics = http.get("/metrics").text
        assert 'autoglm:model_evictions_total{model_name="lazy"} 1' in metrics
        assert 'autoglm:model_state{model_name="third",state="ready"} 1' in metrics
        assert metrics.count("# TYPE autoglm:num_requests_running gauge") == 1
        assert 'autoglm:num_requests_running{model_name="third"}' in metrics
        assert http.get("/ready").status_code == 200  # only main is preloaded
    actions = [(r["action"], r["resource"]) for r in records(audit_path)]
    assert actions[0] == ("model_load", "main")
    assert ("model_load", "lazy") in actions and ("model_evict", "lazy") in actions


def test_admin_api(server, audit_path):
    with client(server) as admin, client(server, "user") as user:
        listed = admin.get("/admin/models").json()
        assert [m["name"] for m in listed["data"]] == ["main", "lazy", "third"]
        assert listed["data"][0]["pinned"] is True and listed["memory_budget_bytes"] > 0
        assert user.get("/admin/models").status_code == 403
        assert user.post("/admin/models/lazy/load").status_code == 403

        loaded = admin.post("/admin/models/lazy/load")
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["state"] == "ready" and loaded.json()["leases"] == 0
        refused = admin.post("/admin/models/main/unload")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "model_conflict"
        unloaded = admin.post("/admin/models/lazy/unload")
        assert unloaded.status_code == 200 and unloaded.json()["state"] in ("unloaded", "unloading")
        assert admin.post("/admin/models/third/pin").json()["pinned"] is True
        assert admin.post("/admin/models/third/unpin").json()["pinned"] is False
        assert admin.post("/admin/models/nope/load").status_code == 404
    audited = records(audit_path)
    admin_paths = {r["resource"] for r in audited if r["action"] == "admin"}
    assert {"POST /admin/models/lazy/load", "POST /admin/models/main/unload",
            "POST /admin/models/lazy/unload", "GET /admin/models"} <= admin_paths
    assert any(r["action"] == "model_unload" and r["resource"] == "lazy" for r in audited)
    refusal = [r for r in audited if r["action"] == "admin" and r.get("http_status") == 409]
    assert refusal and refusal[0]["status"] == "error"


def test_drain_unloads_every_model(server, audit_path):
    assert server.terminate() == 0
    unloads = {r["resource"] for r in records(audit_path)
               if r["action"] == "model_unload" and r["detail"] == "drained"}
    assert "main" in unloads
