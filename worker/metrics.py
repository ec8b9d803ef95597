"""A worker's /metrics: Optio's own metrics of this process plus the Temporal SDK's
(workflow and activity task latencies, slots, polls, sticky cache), served on
OPTIO_WORKER_METRICS_ADDRESS behind OPTIO_METRICS_TOKEN (docs/deployment.md#metrics).

The SDK serves its metrics itself, through its runtime's Prometheus exporter: that one
listens on a loopback port of its own, and each scrape of ours reads it and appends it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.metrics_text import CONTENT_TYPE, exposition, token_matches
from core.settings import Settings

log = logging.getLogger(__name__)


class MetricsSettingsError(RuntimeError):
    pass


@dataclass
class WorkerMetrics:
    runtime: Runtime
    sdk_url: str
    host: str
    port: int
    token: str


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MetricsSettingsError(
            f"OPTIO_WORKER_METRICS_ADDRESS must be host:port (e.g. 0.0.0.0:9464), not {address!r}"
        )
    return host.strip("[]"), int(port)


def worker_metrics(settings: Settings) -> WorkerMetrics | None:
    """The SDK runtime exporting to a loopback port, when the worker serves metrics."""
    if settings.worker_metrics_address is None:
        return None
    host, port = parse_address(settings.worker_metrics_address)
    if settings.metrics_token is None:
        raise MetricsSettingsError(
            "OPTIO_WORKER_METRICS_ADDRESS is set but OPTIO_METRICS_TOKEN is not: "
            "the worker's /metrics needs the token scrapers send"
        )
    sdk_port = free_loopback_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{sdk_port}", durations_as_seconds=True
            ),
            global_tags={"service": "optio-worker"},
        )
    )
    return WorkerMetrics(
        runtime=runtime,
        sdk_url=f"http://127.0.0.1:{sdk_port}/metrics",
        host=host,
        port=port,
        token=settings.metrics_token.get_secret_value(),
    )


def metrics_app(metrics: WorkerMetrics) -> Starlette:
    async def scrape(request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else None
        if not token_matches(given, metrics.token):
            return PlainTextResponse(
                "Send 'Authorization: Bearer <OPTIO_METRICS_TOKEN>'\n", status_code=401
            )
        ours = exposition()
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                sdk = (await http.get(metrics.sdk_url)).content
        except httpx.HTTPError as exc:
            # Ours still count; the gap in the SDK's series shows in Prometheus.
            log.warning("could not read the Temporal SDK's metrics: %s", exc)
            sdk = b""
        return Response(ours + sdk, media_type=CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", scrape)])


async def serve_metrics(metrics: WorkerMetrics) -> None:
    """Serve /metrics until cancelled."""
    config = uvicorn.Config(
        metrics_app(metrics),
        host=metrics.host,
        port=metrics.port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    log.info("worker metrics on %s:%d/metrics", metrics.host, metrics.port)
    try:
        await server.serve()
    except asyncio.CancelledError:
        server.should_exit = True
        raise
