"""The API server double, a test kubelet on it, and a kubernetes launcher pointed at it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from integrations.launchers.kubernetes import KubernetesLauncher, api_client, pod_config
from integrations.launchers.select import close_shared
from tests.conftest import Optio, cancel_open_workflows
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.kubelet import Kubelet
from tests.k8s.workers import PodWorker
from tests.runner.helpers import IngestServer, make_origin

NAMESPACE = "optio-runs"


@pytest.fixture
def apiserver() -> Iterator[ApiServerDouble]:
    server = ApiServerDouble()
    server.start()
    yield server
    server.stop()


def k8s_settings(apiserver: ApiServerDouble, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "launcher": "kubernetes",
        "k8s_kubeconfig": apiserver.kubeconfig(tmp_path / "kubeconfig"),
        "k8s_namespace": NAMESPACE,
        "k8s_image": "optio-agent:test",
        # The test kubelet's "image" is this checkout and its virtualenv.
        "k8s_runner_command": [sys.executable, "-m", "runner.pod"],
        "k8s_termination_grace_seconds": 3,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path)


@pytest.fixture
def kubelet(apiserver: ApiServerDouble, tmp_path: Path, origin: Path) -> Iterator[Kubelet]:
    settings = k8s_settings(apiserver, tmp_path)
    node = Kubelet(
        api=api_client(settings),
        root=tmp_path / "kubelet",
        namespace=NAMESPACE,
        # The origin stands for a git server the pods reach over the network.
        network_paths=[origin],
    )
    apiserver.log_source = node.log_path
    node.start()
    yield node
    node.stop()


@pytest.fixture
def launcher(apiserver: ApiServerDouble, tmp_path: Path) -> Iterator[KubernetesLauncher]:
    settings = k8s_settings(apiserver, tmp_path)
    launcher = KubernetesLauncher(
        api=api_client(settings), config=pod_config(settings), pending_timeout=60.0
    )
    yield launcher
    launcher.close()


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    server = IngestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, apiserver: ApiServerDouble, tmp_path: Path) -> Iterator[Settings]:
    """The whole stack's settings (tests/conftest.py) with the kubernetes launcher."""
    k8s = k8s_settings(apiserver, tmp_path)
    fields = {f: getattr(k8s, f) for f in Settings.model_fields if f.startswith("k8s_")}
    yield settings.model_copy(update={"launcher": "kubernetes", **fields})
    close_shared()


@pytest.fixture
def node(apiserver: ApiServerDouble, settings: Settings, tmp_path: Path) -> Iterator[Kubelet]:
    """A node for the whole stack's pods; the test's directory stands for the network
    (its bare repositories are the git server)."""
    kubelet = Kubelet(
        api=api_client(settings),
        root=tmp_path / "kubelet",
        namespace=NAMESPACE,
        network_paths=[tmp_path],
    )
    apiserver.log_source = kubelet.log_path
    kubelet.start()
    yield kubelet
    kubelet.stop()


@pytest.fixture
async def pod_worker(api_only: Optio, node: Kubelet, tmp_path: Path) -> AsyncIterator[PodWorker]:
    """`optio worker` on the kubernetes launcher, started, to be killed by the test."""
    process = PodWorker(api_only.settings, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await cancel_open_workflows(api_only)
