"""KubernetesLauncher through the real client, against the API server double and the test
kubelet: pods run the real runner (prepare, agent, runner containers) in bubblewrap."""

from __future__ import annotations

from pathlib import Path

from integrations.launchers.kubernetes import KubernetesLauncher
from schemas import pod
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.conftest import NAMESPACE
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
