"""KubernetesLauncher through the real client, against the API server double and the test
kubelet: pods run the real runner (prepare, agent, runner containers) in bubblewrap."""

from __future__ import annotations

import time
from pathlib import Path

from integrations.launchers.base import sandbox_name
from integrations.launchers.kubernetes import KubernetesLauncher, api_client, pod_config
from schemas import pod
from schemas.runner import RunStatus
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.conftest import NAMESPACE, k8s_settings
from tests.k8s.kubelet import Kubelet
from tests.runner.helpers import IngestServer, git, make_spec, wait_for


def pods(apiserver: ApiServerDouble) -> list[dict]:
    return [
        o for (k, ns, _), o in list(apiserver.objects.items()) if k == "pods" and ns == NAMESPACE
    ]


def test_a_run_goes_through_its_pod(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    spec = make_spec(
        tmp_path, origin=origin, server=ingest, prompt="echo x > x.txt\necho agent says hi\n"
    )
    launcher.launch(spec)
    assert launcher.attach(spec.run_id)
    status = wait_for(
        lambda: (s := launcher.poll(spec.run_id)).state == "finished" and s,
        timeout=60,
        what="the run's result",
    )
    assert status.result.success, status.result
    assert status.result.pushed
    assert git("show", "optio/task-x:x.txt", cwd=origin) == "x"
    wait_for(
        lambda: [e["content"] for e in ingest.events()] == ["agent says hi"], what="log delivery"
    )
    (created,) = pods(apiserver)
    assert created["metadata"]["labels"][pod.RUN_LABEL] == spec.run_id
    spec_ = created["spec"]
    assert spec_["automountServiceAccountToken"] is False
    for c in spec_["containers"] + spec_["initContainers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    agent = next(c for c in spec_["containers"] if c["name"] == pod.AGENT)
    assert "env" not in agent  # no run token, no forge credential, no spec
    # The token travelled only in the run's Secret, owned by the pod.
    assert "tok-123" not in str(created)


def _finished(launcher: KubernetesLauncher, run_id: str, timeout: float = 60) -> RunStatus:
    status: RunStatus = wait_for(
        lambda: (s := launcher.poll(run_id)).state == "finished" and s,
        timeout=timeout,
        what="the run's result",
    )
    return status


def test_a_second_launcher_reattaches_to_the_pod_instead_of_creating_one(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    kubelet.network_paths.append(gate)
    prompt = f"echo started\nwhile [ ! -e {gate}/open ]; do sleep 0.05; done\necho y > y.txt\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    launcher.launch(spec)
    wait_for(lambda: "started" in [e["content"] for e in ingest.events()], timeout=60)
    # The worker that launched it is gone; another worker's launcher comes up.
    launcher.close()
    settings = k8s_settings(apiserver, tmp_path)
    other = KubernetesLauncher(api=api_client(settings), config=pod_config(settings))
    try:
        assert other.attach(spec.run_id)
        assert other.poll(spec.run_id).state == "running"
        other.launch(spec)  # a retried activity launching again: still one pod
        (gate / "open").touch()
        status = _finished(other, spec.run_id)
        assert status.result is not None and status.result.success
        assert len(pods(apiserver)) == 1
        creates = [
            k for k, n in apiserver.requests.items() if k[1] == "POST" and k[2].endswith("/pods")
        ]
        assert sum(apiserver.requests[k] for k in creates) == 1
    finally:
        other.close()


def test_stop_deletes_the_pod_within_its_grace_period(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo started\nsleep 600\n")
    launcher.launch(spec)
    wait_for(lambda: "started" in [e["content"] for e in ingest.events()], timeout=60)
    started = time.monotonic()
    launcher.stop(spec.run_id, grace=3)
    assert time.monotonic() - started < 3 + 5
    assert pods(apiserver) == []
    assert secrets(apiserver) == []  # garbage-collected with its owner
    status = launcher.poll(spec.run_id)
    assert status.state == "finished" and status.result is not None
    assert status.result.error == "Run stopped"


def test_an_image_that_cannot_be_pulled_fails_the_run_and_frees_the_pod(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    kubelet.unpullable.add("optio-agent:test")
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo never\n")
    launcher.launch(spec)
    status = _finished(launcher, spec.run_id, timeout=20)
    assert status.result is not None and not status.result.prepared
    assert status.result.error is not None
    assert status.result.error.startswith("image optio-agent:test could not be pulled: ")
    assert "OPTIO_K8S_IMAGE_PULL_SECRETS" in status.result.error
    wait_for(lambda: pods(apiserver) == [], what="the stuck pod deleted")


def test_an_unschedulable_pod_fails_after_the_pending_timeout(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
) -> None:
    settings = k8s_settings(apiserver, tmp_path, k8s_node_selector={"gpu": "yes"})
    launcher = KubernetesLauncher(
        api=api_client(settings), config=pod_config(settings), pending_timeout=1.0
    )
    try:
        spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo never\n")
        launcher.launch(spec)
        status = _finished(launcher, spec.run_id, timeout=20)
        assert status.result is not None and status.result.error is not None
        assert "did not start within 1 s" in status.result.error
        assert "didn't match Pod's node affinity/selector" in status.result.error
    finally:
        launcher.close()


def test_an_evicted_pod_fails_the_run_with_the_reason(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo started\nsleep 600\n")
    launcher.launch(spec)
    wait_for(lambda: "started" in [e["content"] for e in ingest.events()], timeout=60)
    kubelet.evict(sandbox_name(spec.run_id))
    status = _finished(launcher, spec.run_id, timeout=20)
    assert status.result is not None and status.result.error is not None
    assert (
        "was evicted from node node-1: The node was low on resource: memory" in status.result.error
    )


def test_an_oom_killed_agent_fails_the_run_with_the_limit(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
) -> None:
    settings = k8s_settings(apiserver, tmp_path, k8s_resources={"limits": {"memory": "512Mi"}})
    launcher = KubernetesLauncher(api=api_client(settings), config=pod_config(settings))
    try:
        spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo started\nsleep 600\n")
        launcher.launch(spec)
        wait_for(lambda: "started" in [e["content"] for e in ingest.events()], timeout=60)
        kubelet.oom_kill(sandbox_name(spec.run_id), pod.AGENT)
        status = _finished(launcher, spec.run_id, timeout=20)
        assert status.result is not None and status.result.error == (
            "the agent container ran out of memory (limit 512Mi): raise limits.memory in "
            "OPTIO_K8S_RESOURCES"
        )
    finally:
        launcher.close()


def test_the_watch_lists_again_after_410_gone(tmp_path: Path, apiserver: ApiServerDouble) -> None:
    settings = k8s_settings(apiserver, tmp_path)
    launcher = KubernetesLauncher(
        api=api_client(settings), config=pod_config(settings), watch_seconds=1
    )
    try:
        launcher.warm()

        def change_then_compact() -> None:
            # A pod appears and the server forgets the history before the watch resumes.
            apiserver._create("pods", NAMESPACE, _bare_pod("optio-run-r9", "r9"))
            apiserver.history.clear()

        apiserver.call(change_then_compact)
        wait_for(lambda: launcher.attach("r9"), what="the pod seen after a new list")
        assert apiserver.expired_watches >= 1
    finally:
        launcher.close()


def test_sweep_removes_finished_pods_and_orphaned_secrets(
    tmp_path: Path,
    origin: Path,
    ingest: IngestServer,
    apiserver: ApiServerDouble,
    kubelet: Kubelet,
    launcher: KubernetesLauncher,
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo done\n")
    launcher.launch(spec)
    _finished(launcher, spec.run_id)
    orphan = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "optio-run-gone", "labels": {pod.MANAGED_BY: pod.MANAGER}},
        "data": {},
    }
    apiserver.call(lambda: apiserver._create("secrets", NAMESPACE, orphan))
    assert launcher.sweep(older_than_seconds=3600) == 1  # the orphan; the pod is recent
    assert len(pods(apiserver)) == 1
    assert launcher.sweep(older_than_seconds=0) == 1
    wait_for(lambda: pods(apiserver) == [] and secrets(apiserver) == [], what="all gone")


def _bare_pod(name: str, run_id: str) -> dict:
    labels = {pod.MANAGED_BY: pod.MANAGER, pod.RUN_LABEL: run_id}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "none"}], "nodeSelector": {"x": "y"}},
    }


def secrets(apiserver: ApiServerDouble) -> list[dict]:
    return [
        o for (k, ns, _), o in list(apiserver.objects.items()) if k == "secrets" and ns == NAMESPACE
    ]
