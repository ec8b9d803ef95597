"""The cluster endpoints (admin only): nodes, Optio's pods, a pod's own log.

Pods are scoped to the caller's workspace through the run they carry (the agent run row,
or a standalone run's row for its attempts' pods `<runId>.<attempt>`; never the pod's
labels): another workspace's pod is a 404 like any other row.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import iterate_in_threadpool

from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.errors import NotFoundError, ServiceUnavailableError
from integrations.cluster_view import ClusterApiError, PodNotFoundError, cluster_view
from integrations.launchers.base import sandbox_name
from schemas.cluster import NodeList, PodList, PodLogs
from store.run_owners import tasks_of_runs

router = APIRouter(tags=["Cluster"])
POD_NAME = re.compile(r"^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$")  # a DNS subdomain
Container = Literal["agent", "runner", "prepare"]


def _unavailable(exc: ClusterApiError) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"The Kubernetes API server answered {exc.status} {exc.reason or ''}".strip()
    )


@router.get("/api/cluster/nodes", response_model=NodeList)
async def cluster_nodes(state: StateDep) -> NodeList:
    """The cluster's nodes (on the local launcher: this machine)."""
    view = cluster_view(state.settings)
    try:
        nodes = await asyncio.to_thread(view.nodes)
    except ClusterApiError as exc:
        raise _unavailable(exc) from exc
    return NodeList(launcher=view.name, nodes=nodes)


@router.get("/api/cluster/pods", response_model=PodList)
async def cluster_pods(
    state: StateDep, principal: CurrentPrincipal, session: SessionDep
) -> PodList:
    """Optio's pods of this workspace's runs (on the local launcher: its local runs)."""
    view = cluster_view(state.settings)
    try:
        pods = await asyncio.to_thread(view.pods)
    except ClusterApiError as exc:
        raise _unavailable(exc) from exc
    tasks = await tasks_of_runs(
        session, workspace_id=principal.workspace_id, run_ids=[p.run_id for p in pods if p.run_id]
    )
    return PodList(
        launcher=view.name,
        pods=[
            p.model_copy(
                update={"task_id": tasks[p.run_id], "workspace_id": principal.workspace_id}
            )
            for p in pods
            if p.run_id in tasks
        ],
    )


@router.get(
    "/api/cluster/pods/{name}/logs",
    response_model=PodLogs,
    responses={
        200: {
            "content": {
                # With follow=true: each `log` event's data is one line; `end` closes.
                "text/event-stream": {
                    "schema": {"type": "string", "description": "one line of the log"}
                }
            }
        }
    },
)
async def cluster_pod_logs(
    name: str,
    state: StateDep,
    principal: CurrentPrincipal,
    session: SessionDep,
    tail_lines: Annotated[int | None, Query(alias="tailLines", ge=0, le=100_000)] = None,
    follow: bool = False,
    container: Container | None = None,
) -> PodLogs | Response:
    """The pod's own log through the API server (the runner's, masked; or `container`'s).
    With `follow=true`, server-sent `log` events until the container ends, then `end`."""
    prefix = sandbox_name("")
    run_id = name.removeprefix(prefix)
    if not POD_NAME.match(name) or not name.startswith(prefix):
        raise NotFoundError(f"Pod {name} not found")
    if not await tasks_of_runs(session, workspace_id=principal.workspace_id, run_ids=[run_id]):
        raise NotFoundError(f"Pod {name} not found")
    view = cluster_view(state.settings)
    if not follow:
        try:
            text = await asyncio.to_thread(
                view.logs, name, container=container, tail_lines=tail_lines
            )
        except PodNotFoundError as exc:
            raise NotFoundError(f"Pod {name} not found (finished pods are removed)") from exc
        except ClusterApiError as exc:
            raise _unavailable(exc) from exc
        return PodLogs(name=name, container=container or "runner", logs=text)
    try:
        lines = await asyncio.to_thread(
            lambda: iter(view.follow(name, container=container, tail_lines=tail_lines))
        )
    except PodNotFoundError as exc:
        raise NotFoundError(f"Pod {name} not found (finished pods are removed)") from exc

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for line in iterate_in_threadpool(lines):
            yield ServerSentEvent(data=line, event="log")
        yield ServerSentEvent(data="", event="end")

    return EventSourceResponse(events())
