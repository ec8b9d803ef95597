"""Forge doubles served on loopback, and settings that point Optio at them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from core.settings import Settings
from tests.conftest import free_port
from tests.forges.github_double import GitHubDouble

OPTIO_TOKEN = "optio-token"
ALICE_TOKEN = "alice-token"
HOOK_SECRET = "hook-secret"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.github_token = SecretStr(OPTIO_TOKEN)
    settings.gitlab_token = SecretStr(OPTIO_TOKEN)
    settings.github_webhook_secret = SecretStr(HOOK_SECRET)
    settings.gitlab_webhook_secret = SecretStr(HOOK_SECRET)
    return settings


async def serve(app: object, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture
async def github(tmp_path: Path) -> AsyncIterator[GitHubDouble]:
    double = GitHubDouble(
        tmp_path / "github", users={OPTIO_TOKEN: "optio-bot", ALICE_TOKEN: "alice"}
    )
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    double.webhook_secret = HOOK_SECRET
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task
