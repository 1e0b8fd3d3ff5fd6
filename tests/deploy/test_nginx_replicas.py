"""deploy/nginx/autoglm.conf with Debian's nginx in front of two `autoglm serve` replicas of the
tiny model, all on loopback: concurrent streaming requests through nginx reach both replicas
(their request logs, audit logs and /metrics show it), then one replica is killed in the middle of a
streaming round and new requests keep succeeding through the other. Owned by the deploy
thread."""

import concurrent.futures
import json
import re
import shutil
import subprocess
import time

import httpx
import pytest

from deploy_common import ROOT, free_port
from server_process import ServerProcess

NGINX_CONF = ROOT / "deploy" / "nginx" / "autoglm.conf"
MODEL_NAME = "autoglm-tiny"

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and
                                not (shutil.which("/usr/sbin/nginx")),
                                reason="nginx missing: scripts/install_deps.sh installs it")


def nginx_config(prefix, listen_port, replica_ports):
    """deploy/nginx/autoglm.conf with the test's ports, inside a main config whose pid file,
    logs and temp directories live under `prefix`."""
    site = NGINX_CONF.read_text()
    for example, port in zip(("127.0.0.1:8081", "127.0.0.1:8082"), replica_ports):
        assert example in site
        site = site.replace(example, f"127.0.0.1:{port}")
    assert "listen 8080;" in site
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    (prefix / "autoglm.conf").write_text(site)
    (prefix / "logs").mkdir()
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(f"""daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 512; }}
http {{
{temp}
    include {prefix}/autoglm.conf;
}}
""")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    audit_dir = tmp_path_factory.mktemp("audit")
    replicas = [ServerProcess("--warmup", "false", "--audit-log", str(audit_dir / f"audit-{i}.jsonl"))
                for i in range(2)]
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    nginx_config(prefix, port, [r.port for r in replicas])
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    check = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                            "-e", str(prefix / "logs" / "error.log")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                             "-e", str(prefix / "logs" / "error.log")],
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for replica in replicas:
            replica.wait_ready()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/nginx-health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield {"url": url, "replicas": replicas, "prefix": prefix,
               "audit_logs": [audit_dir / f"audit-{i}.jsonl" for i in range(2)]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for replica in replicas:
            replica.__exit__(None, None, None)


def stream_completion(url, index):
    """One streamed completion through nginx: (x-request-id, ok)."""
    body = {"model": MODEL_NAME, "prompt": f"Replica test {index}", "max_tokens": 16,
            "temperature": 0, "stream": True}
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as response:
        lines = [line for line in response.iter_lines() if line]
        ok = (response.status_code == 200 and
              response.headers["content-type"].startswith("text/event-stream") and
              lines[-1] == "data: [DONE]" and
              all(json.loads(line[6:])["object"] == "text_completion" for line in lines[:-1]))
        return response.headers.get("x-request-id"), ok


def completions_metric(replica):
    text = httpx.get(replica.url + "/metrics", timeout=10).text
    m = re.search(r'^autoglm:http_requests_total\{route="/v1/completions",method="POST",'
                  r'status="200"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def logged_request_ids(replica):
    return {line.get("request_id") for line in list(replica.lines) if line.get("msg") == "request"}


def wait_for_logs(replicas, request_ids, timeout=10):
    """Each replica's request ids once every id in `request_ids` is in some replica's log (the
    log line is written after the last byte is sent, so it can trail the client a little)."""
    deadline = time.monotonic() + timeout
    while True:
        per_replica = [logged_request_ids(r) for r in replicas]
        if set(request_ids) <= set().union(*per_replica) or time.monotonic() > deadline:
            return per_replica
        time.sleep(0.02)


def audited_completions(path, want, timeout=10):
    """The inference records of one replica's audit log, once there are at least `want` (each is
    written when its request ends, a little after the client's last byte)."""
    deadline = time.monotonic() + timeout
    while True:
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        done = [r for r in records if r["action"] == "inference" and r["resource"] == MODEL_NAME]
        if len(done) >= want or time.monotonic() > deadline:
            return done
        time.sleep(0.02)


def run_round(url, count, first_index=0):
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(stream_completion, url, first_index + i) for i in range(count)]
        return [f.result() for f in futures]


def test_traffic_reaches_both_replicas(cluster):
    results = run_round(cluster["url"], 12)
    assert all(ok for _, ok in results), results
    per_replica = wait_for_logs(cluster["replicas"], [rid for rid, _ in results])
    for request_id, _ in results:
        assert sum(request_id in ids for ids in per_replica) == 1, request_id
    served = [len({rid for rid, _ in results} & ids) for ids in per_replica]
    assert all(n > 0 for n in served), f"one replica got no traffic: {served}"
    assert all(completions_metric(r) > 0 for r in cluster["replicas"])
    for path, n in zip(cluster["audit_logs"], served):
        audited = audited_completions(path, n)
        assert len(audited) >= n and all(r["status"] == "ok" for r in audited), (path, audited)
    access = (cluster["prefix"] / "logs" / "autoglm_access.log").read_text()
    for replica in cluster["replicas"]:
        assert f"upstream=127.0.0.1:{replica.port}" in access


def test_dashboard_shows_every_metric_a_live_replica_exports(cluster):
    text = httpx.get(cluster["replicas"][0].url + "/metrics", timeout=10).text
    live = {m for m in re.findall(r"^# TYPE (\S+) ", text, re.M)}
    assert "autoglm:num_requests_waiting" in live
    dashboard = (ROOT / "deploy" / "grafana" / "autoglm-dashboard.json").read_text()
    assert {name for name in live if name not in dashboard} == set()


def test_requests_keep_succeeding_after_a_replica_dies(cluster):
    survivor, victim = cluster["replicas"]
    before = completions_metric(survivor)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        in_flight = [pool.submit(stream_completion, cluster["url"], 100 + i) for i in range(8)]
        victim.proc.kill()  # mid-round: some of these streams were on it and may break
        victim.proc.wait()
        for future in in_flight:
            try:
                future.result()
            except httpx.HTTPError:
                pass
    # Every new request, sequential and concurrent, succeeds through the survivor.
    for i in range(4):
        request_id, ok = stream_completion(cluster["url"], 200 + i)
        assert ok and request_id in wait_for_logs([survivor], [request_id])[0]
    results = run_round(cluster["url"], 8, first_index=300)
    assert all(ok for _, ok in results), results
    wait_for_logs([survivor], [rid for rid, _ in results])
    assert completions_metric(survivor) >= before + 12
    errors = (cluster["prefix"] / "logs" / "error.log").read_text()
    assert f"127.0.0.1:{victim.port}" in errors  # nginx saw the dead replica and moved on
