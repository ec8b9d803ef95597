"""What the cluster endpoints show: the Kubernetes cluster's nodes and Optio's pods, or,
on the local launcher, this machine and its local runs in the same shapes.

Blocking calls (the kubernetes client, /proc, files): the API runs them in a thread.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.settings import Settings
from integrations.launchers.base import sandbox_name
from integrations.launchers.local import runner_alive
from schemas import pod as pod_layout
from schemas.cluster import ClusterContainer, ClusterNode, ClusterPod, NodeCondition
from schemas.run_dir import RUNNER_LOG, read_pid, read_result

Json = dict[str, Any]
FOLLOW_STEP = 0.2


class PodNotFoundError(LookupError):
    pass


class ClusterApiError(RuntimeError):
    """The Kubernetes API server failed a call: its HTTP status and reason."""

    def __init__(self, status: int | None, reason: str | None) -> None:
        super().__init__(f"{status} {reason or ''}".strip())
        self.status = status
        self.reason = reason


class ClusterView(Protocol):
    name: str

    def nodes(self) -> list[ClusterNode]: ...

    def pods(self) -> list[ClusterPod]: ...

    def logs(self, name: str, *, container: str | None, tail_lines: int | None) -> str: ...

    def follow(self, name: str, *, container: str | None, tail_lines: int | None) -> Iterator[str]:
        """The log's lines until the container ends (or the caller stops reading)."""
        ...


def json_of(response: Any) -> Json:
    body: Json = json.loads(response.data)
    return body


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _container(cs: Json) -> ClusterContainer:
    state = cs.get("state") or {}
    kind = next(iter(state), "waiting")
    detail = state.get(kind) or {}
    return ClusterContainer(
        name=cs["name"],
        state=kind,
        reason=detail.get("reason"),
        ready=bool(cs.get("ready")),
        restart_count=int(cs.get("restartCount") or 0),
        exit_code=detail.get("exitCode"),
    )


def pod_summary(p: Json, *, now: datetime) -> ClusterPod:
    meta, status = p["metadata"], p.get("status") or {}
    labels = meta.get("labels") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    created = _time(meta.get("creationTimestamp"))
    return ClusterPod(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        phase=status.get("phase", "Pending"),
        reason=status.get("reason"),
        node_name=(p.get("spec") or {}).get("nodeName"),
        run_id=labels.get(pod_layout.RUN_LABEL, ""),
        task_id=labels.get(pod_layout.TASK_LABEL),
        workspace_id=labels.get(pod_layout.WORKSPACE_LABEL),
        restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses),
        created_at=created,
        age_seconds=(now - created).total_seconds() if created else None,
        containers=[_container(cs) for cs in statuses],
    )


class LocalView:
    """This machine as the one node, its local runs as the pods."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.runs_root = settings.runs_dir

    def nodes(self) -> list[ClusterNode]:
        meminfo = _meminfo()
        cpus = str(os.cpu_count() or 1)
        total, available = meminfo.get("MemTotal", 0), meminfo.get("MemAvailable", 0)
        load = os.getloadavg()[0]
        return [
            ClusterNode(
                name=socket.gethostname(),
                ready=True,
                capacity={"cpu": cpus, "memory": f"{total}Ki"},
                allocatable={"cpu": cpus, "memory": f"{available}Ki"},
                conditions=[
                    NodeCondition(type="Ready", status="True", reason="LocalLauncher"),
                    NodeCondition(
                        type="MemoryPressure",
                        status="True" if total and available < total // 10 else "False",
                    ),
                ],
                usage={"cpu": f"{int(load * 1000)}m", "memory": f"{total - available}Ki"},
            )
        ]

    def _run_dir(self, name: str) -> Path:
        run_id = name.removeprefix(sandbox_name(""))
        run_dir = (self.runs_root / run_id).resolve()
        if not name.startswith(sandbox_name("")) or run_dir.parent != self.runs_root.resolve():
            raise PodNotFoundError(name)
        if not run_dir.is_dir():
            raise PodNotFoundError(name)
        return run_dir

    def pods(self) -> list[ClusterPod]:
        if not self.runs_root.is_dir():
            return []
        now = datetime.now(UTC)
        pods = []
        for run_dir in sorted(p for p in self.runs_root.iterdir() if p.is_dir()):
            pid = read_pid(run_dir)
            alive = pid is not None and runner_alive(pid, run_dir)
            result = None if alive else read_result(run_dir)
            phase = (
                "Running"
                if alive
                else (
                    "Succeeded" if result and result.success else "Failed" if result else "Unknown"
                )
            )
            created = datetime.fromtimestamp(run_dir.stat().st_ctime, UTC)
            pods.append(
                ClusterPod(
                    name=sandbox_name(run_dir.name),
                    namespace="local",
                    phase=phase,
                    node_name=socket.gethostname(),
                    run_id=run_dir.name,
                    created_at=created,
                    age_seconds=(now - created).total_seconds(),
                    containers=[
                        ClusterContainer(
                            name="runner",
                            state="running" if alive else "terminated",
                            ready=alive,
                            exit_code=None if alive or result is None else result.exit_code,
                        )
                    ],
                )
            )
        return pods

    def logs(self, name: str, *, container: str | None, tail_lines: int | None) -> str:
        path = self._run_dir(name) / RUNNER_LOG
        lines = path.read_text(errors="replace").splitlines(keepends=True) if path.exists() else []
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        return "".join(lines)

    def follow(self, name: str, *, container: str | None, tail_lines: int | None) -> Iterator[str]:
        run_dir = self._run_dir(name)
        path = run_dir / RUNNER_LOG
        yield from self.logs(name, container=container, tail_lines=tail_lines).splitlines()
        offset = path.stat().st_size if path.exists() else 0
        buf = ""
        while True:
            size = path.stat().st_size if path.exists() else 0
            if size > offset:
                with open(path, errors="replace") as fh:
                    fh.seek(offset)
                    buf += fh.read()
                offset = size
                *lines, buf = buf.split("\n")
                yield from lines
                continue
            pid = read_pid(run_dir)
            if pid is None or not runner_alive(pid, run_dir):
                if buf:
                    yield buf
                return
            time.sleep(FOLLOW_STEP)


def _meminfo() -> dict[str, int]:
    values = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


_views: dict[str, ClusterView] = {}


def cluster_view(settings: Settings) -> ClusterView:
    if settings.launcher != "kubernetes":
        return LocalView(settings)
    # Imported here: the kubernetes client is some 35 MiB of memory in every API process,
    # and only the kubernetes launcher needs it.
    from integrations.cluster_view_k8s import KubernetesView
    from integrations.launchers.kubernetes import api_client

    key = f"{settings.k8s_kubeconfig}|{settings.k8s_namespace}"
    if key not in _views:
        _views[key] = KubernetesView(api_client(settings), settings.k8s_namespace)
    return _views[key]
