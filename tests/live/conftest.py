from __future__ import annotations

import pytest

from core.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A task's stream closes soon after it ended, so a test sees the close.
    settings.live_end_grace_seconds = 0.3
    # A small queue per client, so that clients falling behind read on from the database;
    # one that stops reading altogether is dropped soon.
    settings.live_client_buffer = 100
    settings.live_send_timeout_seconds = 2.0
    return settings
