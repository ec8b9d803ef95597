from __future__ import annotations

import pytest

from core.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A task's stream closes soon after it ended, so a test sees the close.
    settings.live_end_grace_seconds = 0.3
    # A small queue per client, so that a client that stops reading is dropped soon.
    settings.live_client_buffer = 100
    return settings
