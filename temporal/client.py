"""How Optio's processes reach an existing Temporal: plain, TLS, mutual TLS (a Temporal
cluster of your own, Temporal Cloud with certificates) or an API key (Temporal Cloud);
docs/deployment.md#temporal."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core.settings import Settings


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    files = (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca)
    if any(files):
        return TLSConfig(
            client_cert=_read(settings.temporal_tls_cert),
            client_private_key=_read(settings.temporal_tls_key),
            server_root_ca_cert=_read(settings.temporal_tls_ca),
        )
    # An API key travels only over TLS.
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect_client(
    settings: Settings,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """`interceptors` (temporal/tracing.py) apply to the client's calls and to every
    worker built on the client."""
    key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        api_key=key.get_secret_value() if key is not None else None,
        tls=tls_config(settings),
        runtime=runtime,
        interceptors=interceptors,
    )
