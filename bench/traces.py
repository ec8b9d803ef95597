"""What a request span costs the API (OPTIO_OTEL_EXPORTER; docs/deployment.md#traces).

`python -m bench.traces [--requests N]` sends N requests straight into an ASGI app (no
network, no server: only the app's own work is timed), bare and wrapped in
api/request_spans.py with the provider temporal/tracing.py builds for `otlp`, its
exporter aimed at a collector stand-in (a loopback process answering 200 to every
export) and at a closed loopback port (an unreachable collector: spans are still made,
batched and sent in the background, where the send fails). Printed: p50 and p99 per
request of each, and the span's p50 cost on the request path.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from api.request_spans import RequestSpans
from bench.stats import percentile
from core.settings import Settings
from temporal.tracing import tracer, tracer_provider


async def task(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["task_id"], "state": "running"})


def app() -> Starlette:
    return Starlette(routes=[Route("/api/tasks/{task_id}", task)])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


COLLECTOR = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


@contextmanager
def collector() -> Iterator[str]:
    """A loopback process that takes every OTLP export (and does nothing with it)."""
    port = closed_port()
    proc = subprocess.Popen([sys.executable, "-c", COLLECTOR, str(port)])
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1/traces"
    finally:
        proc.terminate()
        proc.wait()


async def timed(asgi: ASGIApp, n: int) -> list[float]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/tasks/0b7c",
        "raw_path": b"/api/tasks/0b7c",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    times = []
    for _ in range(n):
        start = time.perf_counter()
        await asgi(dict(scope), receive, send)
        times.append((time.perf_counter() - start) * 1e6)
    return times


async def traced_times(endpoint: str, n: int) -> list[float]:
    settings = Settings(otel_exporter="otlp", otel_endpoint=endpoint)
    provider = tracer_provider(settings, service="bench")
    request_tracer = tracer(provider)
    assert provider is not None and request_tracer is not None
    traced = RequestSpans(app(), request_tracer)
    await timed(traced, 200)  # warm up
    try:
        return await timed(traced, n)
    finally:
        provider.shutdown()


async def main(n: int) -> None:
    bare = app()
    await timed(bare, 200)  # warm up: imports, route compilation
    rows = [("bare", await timed(bare, n))]
    with collector() as endpoint:
        rows.append(("request spans, collector answering", await traced_times(endpoint, n)))
    unreachable = f"http://127.0.0.1:{closed_port()}/v1/traces"
    rows.append(("request spans, collector unreachable", await traced_times(unreachable, n)))
    print(f"{n} GET /api/tasks/{{task_id}} straight into the ASGI app; µs per request")
    print()
    print("| app | p50 (µs) | p99 (µs) |")
    print("|---|---:|---:|")
    for name, times in rows:
        print(f"| {name} | {percentile(times, 50):.0f} | {percentile(times, 99):.0f} |")
    print()
    base = percentile(rows[0][1], 50)
    print(f"request span p50 cost: {percentile(rows[1][1], 50) - base:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.traces", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    asyncio.run(main(parser.parse_args().requests))
