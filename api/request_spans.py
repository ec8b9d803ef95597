"""A server span per HTTP request, when traces are on (temporal/tracing.py).

Plain ASGI over the OpenTelemetry API, no instrumentation package: the span is named after
the route's template (`POST /api/tasks`, never a path with ids in it), continues a caller's
`traceparent`, and is the parent of what the request does, the workflow start of a new
task included (its background start inherits the request's context). Only the method,
the route, the path and the status are recorded: a query string may carry a token.
WebSockets and lifespan events pass untouched.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestSpans:
    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                # The router put the matched route in the scope on the way in.
                template = getattr(scope.get("route"), "path", None)
                if isinstance(template, str):
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
