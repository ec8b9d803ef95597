"""Response models of the cluster endpoints (GET /api/cluster/nodes, /pods, /pods/:name/logs).

The same shapes on both launchers: on the local one the "node" is the machine the API
runs on and each "pod" is a local run (docs/api.md).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.runner import CamelModel


class NodeCondition(CamelModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class ClusterNode(CamelModel):
    name: str
    ready: bool
    # Kubernetes quantities as the API server gives them ("2", "500m", "24Gi").
    capacity: dict[str, str] = Field(default_factory=dict)
    allocatable: dict[str, str] = Field(default_factory=dict)
    conditions: list[NodeCondition] = Field(default_factory=list)
    # From metrics.k8s.io when installed (or the local machine's load); None otherwise.
    usage: dict[str, str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    kubelet_version: str | None = None


class NodeList(CamelModel):
    launcher: str
    nodes: list[ClusterNode]


class ClusterContainer(CamelModel):
    name: str
    state: str  # waiting | running | terminated
    reason: str | None = None
    ready: bool = False
    restart_count: int = 0
    exit_code: int | None = None


class ClusterPod(CamelModel):
    name: str
    namespace: str
    phase: str
    reason: str | None = None
    node_name: str | None = None
    run_id: str
    task_id: str | None = None
    workspace_id: str | None = None
    restarts: int = 0
    created_at: datetime | None = None
    age_seconds: float | None = None
    is_optio_managed: bool = True
    containers: list[ClusterContainer] = Field(default_factory=list)


class PodList(CamelModel):
    launcher: str
    pods: list[ClusterPod]


class PodLogs(CamelModel):
    name: str
    container: str
    logs: str
