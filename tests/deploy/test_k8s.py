"""deploy/k8s and deploy/helm/autoglm: schema validation offline (PyPI kubernetes-validate,
pinned, --strict) and the cross-field rules the schemas cannot see: grace period > preStop +
drain_timeout, probe paths, GPU and CPU/memory requests and limits, the read-only model
volume, the HPA's queue metric (and the adapter rule that feeds it) naming a metric the server
exports, CPU fallback, NetworkPolicy peers, the Secret mounted read-only, ConfigMap keys that
are real settings. The Helm chart is rendered by `helm template` when helm is installed, else by
tests/deploy/helm_render.py (helm is in neither Debian 12 nor PyPI). Owned by the deploy thread."""

import shutil
import subprocess

import pytest
import yaml

from deploy_common import ROOT, VENV_BIN, exported_metric_names, serve_settings
import helm_render

K8S = ROOT / "deploy" / "k8s"
CHART = ROOT / "deploy" / "helm" / "autoglm"
KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
         "NetworkPolicy", "ConfigMap", "Secret", "PersistentVolumeClaim"}


def plain_documents():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def helm_documents(tmp_path):
    if shutil.which("helm"):
        text = subprocess.run(["helm", "template", "autoglm", str(CHART)], check=True,
                              capture_output=True, text=True).stdout
        return [d for d in yaml.safe_load_all(text) if d is not None]
    print("helm is not installed (not in Debian 12 or PyPI): rendering with helm_render.py")
    rendered, _ = helm_render.render_chart(CHART)
    return [d for docs in rendered.values() for d in docs]


@pytest.fixture(scope="module", params=["k8s", "helm"])
def documents(request, tmp_path_factory):
    docs = plain_documents() if request.param == "k8s" else helm_documents(tmp_path_factory)
    return {"source": request.param, "docs": docs,
            "dir": tmp_path_factory.mktemp(request.param)}


def of_kind(documents, kind, name_suffix=None):
    found = [d for d in documents["docs"] if d["kind"] == kind and
             (name_suffix is None or d["metadata"]["name"].endswith(name_suffix))]
    assert len(found) == 1, f"{documents['source']}: expected one {kind}, got {len(found)}"
    return found[0]


def kubernetes_validate(paths):
    return subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet",
                           *map(str, paths)], capture_output=True, text=True)


def test_schemas_validate(documents):
    path = documents["dir"] / "all.yaml"
    path.write_text(yaml.safe_dump_all(documents["docs"]))
    result = kubernetes_validate([path])
    assert result.returncode == 0, result.stdout + result.stderr
    assert KINDS <= {d["kind"] for d in documents["docs"]}


def test_validator_rejects_a_broken_manifest(tmp_path):
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "sixty"
    deployment["spec"]["replicaz"] = 2
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert kubernetes_validate([path]).returncode != 0


def container(documents):
    return of_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def server_config(documents):
    configmap = of_kind(documents, "ConfigMap", "-config")
    return yaml.safe_load(configmap["data"]["autoglm.yaml"])


def test_configmap_keys_are_settings(documents):
    assert set(server_config(documents)) <= serve_settings()


def test_grace_period_covers_prestop_and_drain(documents):
    pod = of_kind(documents, "Deployment")["spec"]["template"]["spec"]
    command = container(documents)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = float(server_config(documents)["drain_timeout"])
    assert pod["terminationGracePeriodSeconds"] > float(command[1]) + drain


def test_probes_and_resources(documents):
    c = container(documents)
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    port = c["ports"][0]
    assert port["name"] == "http" and port["containerPort"] == server_config(documents)["port"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    assert c["resources"]["limits"]["nvidia.com/gpu"] >= 1


def test_model_volume_read_only_and_secret_mounted(documents):
    c = container(documents)
    pod = of_kind(documents, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["model"]["readOnly"] is True
    assert mounts["model"]["mountPath"] == server_config(documents)["model"]
    assert volumes["model"]["persistentVolumeClaim"]["readOnly"] is True
    secret = of_kind(documents, "Secret")
    assert volumes["keys"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert mounts["keys"]["readOnly"] is True
    # Secret files belong to root and the pod's fsGroup: the server (not root) reads them
    # through the group bits.
    assert volumes["keys"]["secret"]["defaultMode"] & 0o040
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_hpa_scales_on_the_exported_queue_metric_with_cpu_fallback(documents):
    hpa = of_kind(documents, "HorizontalPodAutoscaler")
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    exposed = metrics["Pods"]["pods"]["metric"]["name"]
    adapter = yaml.safe_load((K8S / "prometheus-adapter-rules.yaml").read_text())
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    rule = next(r for r in rules if r["name"]["as"] == exposed)
    series = rule["seriesQuery"].split("{")[0].strip("'")
    assert series == "autoglm:num_requests_waiting"
    assert series in exported_metric_names()
    assert hpa["spec"]["scaleTargetRef"]["name"] == of_kind(documents, "Deployment")["metadata"][
        "name"]


def test_network_policy_peers(documents):
    policy = of_kind(documents, "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for rule in policy["ingress"] for p in rule["from"]]
    assert set(namespaces) == {"gateway", "monitoring"}
    for rule in policy["ingress"]:
        assert [p["port"] for p in rule["ports"]] == [server_config(documents)["port"]]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {6379, 53}
    redis = policy["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert redis == {"app.kubernetes.io/name": "redis"}


def test_pdb_and_service_select_the_pods(documents):
    labels = of_kind(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget",):
        selector = of_kind(documents, kind)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
    service = of_kind(documents, "Service")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
