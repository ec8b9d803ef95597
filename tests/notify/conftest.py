"""Notification tests deliver to receivers on 127.0.0.1, with short retry intervals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.settings import Settings
from tests.notify.receiver import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.webhook_private_allowlist = ["127.0.0.1"]
    settings.webhook_retry_initial_seconds = 0.3
    settings.webhook_retry_max_interval_seconds = 2.0
    settings.webhook_max_attempts = 5
    settings.webhook_timeout_seconds = 5.0
    return settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()
