"""OpenTelemetry traces (OPTIO_OTEL_EXPORTER): a task is one trace, from the API request
that created it through its workflows to its agent run's activities, every span of it
tagged with the task id. Spans go to the SDK's in-memory exporter in place of a collector."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.service import RPCError

from core.settings import Settings
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from temporal.client import connect_client
from temporal.tracing import TASK_ID, WORKFLOW_RUN_ID, client_interceptors, ids_of, tracer_provider
from tests.conftest import ApiServer, stop_sandboxes
from tests.lifecycle_helpers import create_task, wait_for_state
from worker.main import build_host_worker, build_worker

pytestmark = pytest.mark.timeout(180)
MESSAGES = ("QueryWorkflow:", "HandleQuery:", "SignalWorkflow:", "HandleSignal:")


def test_workflow_ids_name_the_task_they_belong_to() -> None:
    assert ids_of("task-abc-123") == {TASK_ID: "abc-123"}
    assert ids_of("task-abc-123-pr") == {TASK_ID: "abc-123"}  # the task's PR phase
    assert ids_of("review-r1") == {TASK_ID: "r1"}
    assert ids_of("run-x9") == {WORKFLOW_RUN_ID: "x9"}
    assert ids_of("limiter-global-optio") == {}
    assert ids_of("task-") == {}


def test_traces_are_off_by_default(settings: Settings) -> None:
    assert settings.otel_exporter == "none"
    assert tracer_provider(settings, service="optio-api") is None
    assert client_interceptors(None) == []


async def test_a_task_is_one_trace_from_its_request_to_its_activities(
    settings: Settings, make_repo: Callable[..., Path]
) -> None:
    exporter = InMemorySpanExporter()
    tracing = tracer_provider(settings, service="optio-test", exporter=exporter)
    assert tracing is not None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        admin = await bootstrap_local_admin(session)
    server = ApiServer(settings, tracing=tracing)
    await server.start()
    temporal = await connect_client(settings, interceptors=client_interceptors(tracing))
    base = f"http://127.0.0.1:{settings.api_port}"
    headers = {"Authorization": f"Bearer {admin.token}"}
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            sessions = session_factory(engine)
            common = {"client": temporal, "settings": settings, "sessions": sessions}
            worker = build_worker(**common, executor=executor, task_queue=settings.task_queue)
            own = build_host_worker(**common, executor=executor)
            async with (
                worker,
                own,
                httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client,
            ):
                task = await create_task(client, make_repo(), "echo traced > traced.txt")
                await wait_for_state(client, task["id"], "pr_opened", timeout=120)
                await terminate_open_workflows(temporal, settings.task_queue)
    finally:
        await server.stop()
        await engine.dispose()
        stop_sandboxes(settings)
    assert tracing.force_flush()
    spans = exporter.get_finished_spans()

    (request,) = [s for s in spans if s.name == "POST /api/tasks"]
    assert request.kind == SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    assert request.attributes["http.route"] == "/api/tasks"

    # A query or signal belongs to the trace of whoever sent it (a GET of the task, the
    # limiter): everything else of the task is the request's trace.
    ours = [
        s
        for s in spans
        if (s.attributes or {}).get(TASK_ID) == task["id"] and not s.name.startswith(MESSAGES)
    ]
    names = {s.name for s in ours}
    for expected in (
        "StartWorkflow:RepoTaskWorkflow",
        "RunWorkflow:RepoTaskWorkflow",
        "StartActivity:prepare_worktree",
        "RunActivity:prepare_worktree",
        "RunActivity:run_agent",
    ):
        assert expected in names, sorted(names)
    # One trace, under the request: the workflow start is its child, and every span of
    # the task descends from that start.
    assert request.context is not None
    assert {s.context.trace_id for s in ours if s.context} == {request.context.trace_id}
    (start,) = [s for s in ours if s.name == "StartWorkflow:RepoTaskWorkflow"]
    assert start.parent is not None and start.parent.span_id == request.context.span_id
    by_id = {s.context.span_id: s for s in spans if s.context}
    run_agent = next(s for s in ours if s.name == "RunActivity:run_agent")
    chain = []
    span = run_agent
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.name)
    assert chain[-2:] == ["StartWorkflow:RepoTaskWorkflow", "POST /api/tasks"], chain


async def terminate_open_workflows(temporal: Client, task_queue: str) -> None:
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in temporal.list_workflows(query):
        with contextlib.suppress(RPCError):  # it finished on its own meanwhile
            await temporal.get_workflow_handle(execution.id).terminate("test finished")
