from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.helpers import IngestServer, make_origin


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path)


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    server = IngestServer()
    server.start()
    yield server
    server.stop()
