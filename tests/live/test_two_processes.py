"""Events reach the clients of every API process, whichever process (or worker) wrote them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Optio, free_port
from tests.live.helpers import frames, post_lines, running_task, seq_of, transition, ws


@pytest.fixture
async def second_api(api_only: Optio) -> AsyncIterator[str]:
    """`optio api` in a process of its own, on the same database."""
    port = free_port()
    s = api_only.settings
    env = {
        **os.environ,
        "OPTIO_DATABASE_URL": s.database_url_resolved,
        "OPTIO_DATA_DIR": str(s.data_dir),
        "OPTIO_API_PORT": str(port),
        "OPTIO_TEMPORAL_ADDRESS": s.temporal_target,
        "OPTIO_TASK_QUEUE": s.task_queue,
        "OPTIO_ENCRYPTION_KEY": "0" * 64,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--no-migrate"], env=env, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(300):
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
                try:
                    if (await client.get("/api/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_a_second_api_process_serves_the_same_events(
    api_only: Optio, second_api: str
) -> None:
    first, url = str(api_only.client.base_url).rstrip("/"), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    async with (
        ws(second_api, f"/ws/logs/{run.task_id}", api_only.token) as logs,
        ws(second_api, "/ws/events", api_only.token) as events,
    ):
        # The runner posts to the first process; the worker writes from a third.
        await post_lines(first, run, range(1, 101))
        await transition(url, run, seq=1, to_state="needs_attention")
        got = await frames(logs, 101)
        (changed,) = await frames(events, 1)
    assert [seq_of(f) for f in got[:100]] == list(range(1, 101))
    assert got[100]["type"] == "task:state_changed"
    assert changed == got[100]
