"""Forge requests and rate-limit headroom reach /metrics (core/metrics.py), from the
GitHub double's real X-RateLimit-* headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.metrics import FORGE_RATE_LIMIT_REMAINING, FORGE_RATE_LIMIT_RESET, FORGE_REQUESTS
from integrations.forges.base import RateLimited
from tests.forges.conftest import OPTIO_TOKEN
from tests.forges.github_double import GitHubDouble
from tests.forges.test_github_client import client
from tests.forges.test_github_client import double as double  # noqa: F401 (fixture)

MakeRepo = Callable[..., Path]


def count(status: str) -> float:
    return FORGE_REQUESTS.labels(forge="github", status=status)._value.get()


async def test_requests_and_headroom_are_counted(double: GitHubDouble) -> None:  # noqa: F811
    gh = client(double)
    ok_before, limited_before = count("2xx"), count("4xx")
    double.remaining[OPTIO_TOKEN] = 42
    assert await gh.branch_sha("main")
    assert count("2xx") == ok_before + 1
    remaining = FORGE_RATE_LIMIT_REMAINING.labels(forge="github")._value.get()
    assert remaining == 41  # what the answer to that request said was left
    assert FORGE_RATE_LIMIT_RESET.labels(forge="github")._value.get() == double.reset_at
    double.remaining[OPTIO_TOKEN] = 0
    with pytest.raises(RateLimited):
        await gh.branch_sha("main")
    assert count("4xx") == limited_before + 1
    assert FORGE_RATE_LIMIT_REMAINING.labels(forge="github")._value.get() == 0
