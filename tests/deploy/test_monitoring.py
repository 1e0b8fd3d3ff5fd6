"""deploy/prometheus and deploy/grafana: promtool (Debian's prometheus package) checks the
scrape config and the alert rules and runs their unit tests; every metric an alert or a panel
reads is one the server exports; the dashboard shows every exported metric.
Owned by the deploy thread."""

import json
import shutil
import subprocess

import pytest
import yaml

from deploy_common import (PENDING_METRICS, ROOT, base_metric_name, exported_metric_names,
                           promql_metric_names)

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "autoglm-dashboard.json"
ALERTS = {"AutoglmHighTimeToFirstTokenP99", "AutoglmQueueGrowing", "AutoglmKVCacheNearlyFull",
          "AutoglmHighErrorRate", "AutoglmCircuitBreakerOpen", "AutoglmGpuThermalOrHardwareSlowdown"}

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool missing: scripts/install_deps.sh installs it")


def promtool(*args, cwd=PROMETHEUS):
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)


def test_scrape_config(tmp_path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    result = promtool("check", "config", "prometheus.yml")
    if "field kubernetes_sd_configs not found" in result.stderr + result.stdout:
        # Debian builds promtool without Kubernetes discovery: check those blocks' fields here
        # and the rest of the file with promtool, the discovery swapped for a static target.
        for job in config["scrape_configs"]:
            for sd in job.pop("kubernetes_sd_configs", []):
                assert sd["role"] == "pod" and sd["namespaces"]["names"] == ["autoglm"]
                job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
        result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "autoglm")
    assert job["metrics_path"] == "/metrics"
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod"} <= targets  # what the Prometheus adapter maps to pods (HPA)


def test_rules_check_and_unit_tests():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_can_fail(tmp_path):
    tests = (PROMETHEUS / "alerts_test.yml").read_text().replace("'0.97x20'", "'0.90x20'")
    (tmp_path / "alerts_test.yml").write_text(tests)
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    assert promtool("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode != 0


def alert_rules():
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_is_present_and_reads_exported_metrics():
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERTS
    known = exported_metric_names() | PENDING_METRICS
    for rule in rules:
        names = promql_metric_names(rule["expr"])
        assert names, rule["alert"]
        for name in names:
            assert base_metric_name(name, known), f"{rule['alert']} reads unknown {name}"


def dashboard_exprs():
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_shows_every_exported_metric():
    shown = set()
    for expr in dashboard_exprs():
        shown |= promql_metric_names(expr)
    known = exported_metric_names() | PENDING_METRICS
    shown_bases = {base_metric_name(n, known) for n in shown}
    missing = exported_metric_names() - shown_bases - PENDING_METRICS  # pending: not yet drawn
    assert missing == set(), f"metrics without a dashboard panel: {sorted(missing)}"
    unknown = {n for n in shown if base_metric_name(n, known) is None}
    assert unknown == set(), f"dashboard reads metrics the server does not export: {unknown}"


def test_dashboard_panels_are_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for expr in (t["expr"] for t in panel["targets"]):
            assert expr.count("(") == expr.count(")"), expr
