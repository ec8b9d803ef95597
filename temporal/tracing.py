"""OpenTelemetry traces by setting (OPTIO_OTEL_EXPORTER; docs/deployment.md#traces).

Off by default. On, each process (API, worker) has a tracer provider of its own, and its
Temporal client carries temporalio's TracingInterceptor: starting a workflow, the
workflow's steps and every activity become spans, the trace context travelling in
Temporal's headers, so a task from the API request that created it down to its agent
run's activities is one trace. Every span of a task's workflows is tagged with the task
id, derived from the workflow id, so a trace backend finds a task's traces by it.
"""

from __future__ import annotations

import logging

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Tracer
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.settings import Settings

log = logging.getLogger(__name__)

TRACER = "optio"
WORKFLOW_ID = "temporalWorkflowID"  # the attribute TracingInterceptor sets
TASK_ID = "optio.task_id"
WORKFLOW_RUN_ID = "optio.workflow_run_id"
SESSION_ID = "optio.session_id"

# Workflow id prefixes (core/names.py) and the attribute the rest of the id is.
_ID_PREFIXES = (
    ("task-", TASK_ID),
    ("review-", TASK_ID),
    ("pipeline-", TASK_ID),
    ("run-", WORKFLOW_RUN_ID),
    ("session-", SESSION_ID),
)
_PR_PHASE_SUFFIX = "-pr"


def ids_of(workflow_id: str) -> dict[str, str]:
    """The Optio ids a workflow id names: `task-<id>` and its PR phase `task-<id>-pr`
    are the task's, a standalone run's `run-<id>` is that run's, and so on."""
    for prefix, attribute in _ID_PREFIXES:
        if workflow_id.startswith(prefix) and len(workflow_id) > len(prefix):
            rest = workflow_id[len(prefix) :]
            if prefix == "task-":
                rest = rest.removesuffix(_PR_PHASE_SUFFIX)
            return {attribute: rest}
    return {}


class OptioIds(SpanProcessor):
    """Tags each span of a workflow (or of its activities) with the ids of ours it names."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        workflow_id = (span.attributes or {}).get(WORKFLOW_ID)
        if isinstance(workflow_id, str):
            for key, value in ids_of(workflow_id).items():
                span.set_attribute(key, value)

    def on_end(self, span: ReadableSpan) -> None:
        pass


def exporter_for(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        # Imported only when chosen: it pulls in protobuf messages and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otel_endpoint)
    return None


def tracer_provider(
    settings: Settings, *, service: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """This process's tracer provider, or None when traces are off. `exporter` replaces
    the one the settings name (a test's in-memory exporter)."""
    exporter = exporter or exporter_for(settings)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(OptioIds())
    # In batches, off the request path and the workflow's activation.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("traces on: %s exporter, service %s", settings.otel_exporter, service)
    return provider


def tracer(provider: TracerProvider | None) -> Tracer | None:
    return provider.get_tracer(TRACER) if provider is not None else None


def client_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """For Client.connect: the client's calls and, through it, every worker built on it.
    Workflow spans are made however the workflow started (a schedule's too, with no span
    of ours above it)."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer(TRACER), always_create_workflow_spans=True)]
