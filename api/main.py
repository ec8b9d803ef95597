"""The FastAPI application factory; the lifespan owns the engine and the Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from api.contract import declare_router_errors, install_contract
from api.dashboard import mount_dashboard
from api.errors import install_error_handlers
from api.live import chat, sse, terminal, ws
from api.nul_bytes import RefuseNulBytes
from api.request_spans import RequestSpans
from api.route_table import add_flat, index_routes
from api.routes import ROUTERS, reviews
from api.state import AppState
from core.settings import Settings
from store.db import create_engine, session_factory
from temporal.tracing import tracer, tracer_provider


def create_app(
    settings: Settings | None = None, *, tracing: TracerProvider | None = None
) -> FastAPI:
    """`tracing` replaces the tracer provider the settings call for (a test's)."""
    settings = settings or Settings()
    own_tracing = tracing is None
    tracing = tracing or tracer_provider(settings, service="optio-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url_resolved)
        state = app.state.optio = AppState(
            settings=settings, engine=engine, sessions=session_factory(engine), tracing=tracing
        )
        state.starts.run_sweeps()
        await state.live.start()
        try:
            yield
        finally:
            await state.live.close()
            await state.starts.close()
            await engine.dispose()
            if own_tracing and tracing is not None:
                tracing.shutdown()  # what is still batched goes out

    app = FastAPI(
        title="Optio",
        version="0.1.0",
        description="Workflow orchestration for AI coding agents, on Temporal.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RefuseNulBytes)
    if (request_tracer := tracer(tracing)) is not None:
        app.add_middleware(RequestSpans, tracer=request_tracer)  # outermost of ours
    for router in [*ROUTERS, reviews.router, sse.router, ws.router, terminal.router, chat.router]:
        declare_router_errors(router)
        add_flat(app, router)  # include_router, matched at a fraction of its cost
    install_contract(app)
    # Last: the dashboard claims only `/`, `/login` and `/dashboard/...`.
    mount_dashboard(app)
    index_routes(app)
    return app
