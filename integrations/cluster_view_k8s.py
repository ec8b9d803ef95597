"""The cluster view of the kubernetes launcher: nodes and Optio's pods through the API
server. Its own module, imported only on that launcher (integrations/cluster_view.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from integrations.cluster_view import ClusterApiError, PodNotFoundError, json_of, pod_summary
from schemas import pod as pod_layout
from schemas.cluster import ClusterNode, ClusterPod, NodeCondition


@contextmanager
def _api_errors() -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        raise ClusterApiError(exc.status, exc.reason) from exc


class KubernetesView:
    name = "kubernetes"

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def _usage(self) -> dict[str, dict[str, str]]:
        """Node usage from metrics.k8s.io; {} where metrics-server is not installed."""
        try:
            body: Any = client.CustomObjectsApi(self.api).list_cluster_custom_object(
                "metrics.k8s.io", "v1beta1", "nodes"
            )
        except ApiException:
            return {}
        return {m["metadata"]["name"]: m.get("usage") or {} for m in body.get("items") or []}

    def nodes(self) -> list[ClusterNode]:
        with _api_errors():
            body = json_of(self.core.list_node(_preload_content=False))
        usage = self._usage()
        nodes = []
        for n in body.get("items") or []:
            status = n.get("status") or {}
            conditions = [NodeCondition.model_validate(c) for c in status.get("conditions") or []]
            nodes.append(
                ClusterNode(
                    name=n["metadata"]["name"],
                    ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
                    capacity=status.get("capacity") or {},
                    allocatable=status.get("allocatable") or {},
                    conditions=conditions,
                    usage=usage.get(n["metadata"]["name"]),
                    labels=n["metadata"].get("labels") or {},
                    kubelet_version=(status.get("nodeInfo") or {}).get("kubeletVersion"),
                )
            )
        return nodes

    def pods(self) -> list[ClusterPod]:
        with _api_errors():
            body = json_of(
                self.core.list_namespaced_pod(
                    self.namespace,
                    label_selector=f"{pod_layout.MANAGED_BY}={pod_layout.MANAGER}",
                    _preload_content=False,
                )
            )
        now = datetime.now(UTC)
        return [pod_summary(p, now=now) for p in body.get("items") or []]

    def _read(self, name: str, **kwargs: Any) -> Any:
        try:
            return self.core.read_namespaced_pod_log(
                name, self.namespace, _preload_content=False, **kwargs
            )
        except ApiException as exc:
            if exc.status == 404:
                raise PodNotFoundError(name) from exc
            raise ClusterApiError(exc.status, exc.reason) from exc

    def logs(self, name: str, *, container: str | None, tail_lines: int | None) -> str:
        args: dict[str, Any] = {"container": container or pod_layout.RUNNER}
        if tail_lines is not None:
            args["tail_lines"] = tail_lines
        return str(self._read(name, **args).data.decode("utf-8", errors="replace"))

    def follow(self, name: str, *, container: str | None, tail_lines: int | None) -> Iterator[str]:
        args: dict[str, Any] = {"container": container or pod_layout.RUNNER, "follow": True}
        if tail_lines is not None:
            args["tail_lines"] = tail_lines
        response = self._read(name, **args)
        buf = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
            if buf:
                yield buf.decode("utf-8", errors="replace")
        finally:
            response.release_conn()
