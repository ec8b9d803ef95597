"""The API server double, a test kubelet on it, and a kubernetes launcher pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from integrations.launchers.kubernetes import KubernetesLauncher, api_client, pod_config
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.kubelet import Kubelet
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
        api=api_client(settings), config=pod_config(settings), pending_timeout=5.0
    )
    yield launcher
    launcher.close()


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    server = IngestServer()
    server.start()
    yield server
    server.stop()
