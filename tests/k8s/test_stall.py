"""Stall detection inside a pod: an agent that prints nothing for the stall timeout is
stopped by the pod's runner and its run fails as stalled, as on the local launcher."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import create_engine, session_factory
from store.models import AgentRun
from tests.conftest import Optio
from tests.k8s.kubelet import Kubelet
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

pytestmark = pytest.mark.timeout(300)


def running(pattern: str) -> bool:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
    return found.returncode == 0


async def test_a_silent_agent_in_a_pod_fails_its_run_as_stalled(
    optio: Optio, node: Kubelet, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo()
    response = await optio.client.post(
        "/api/repos", json={"repoUrl": str(repo), "stallThresholdMs": 3000}
    )
    assert response.status_code == 201, response.text
    # A sleep of a length no other test uses: its process is the agent's, found by it.
    silence = f"sleep {random.randint(100_000, 999_999)}"
    task = await create_task(
        optio.client, repo, f"echo started\n{silence}\necho never", maxRetries=0
    )
    await wait_for_logs(optio.client, task["id"], ["started"], timeout=120)
    assert running(silence)
    failed = (await wait_for_state(optio.client, task["id"], "failed", timeout=60))["task"]
    assert failed["errorMessage"].startswith("No agent output for 3 s"), failed
    assert (await triggers(optio.client, task["id"]))[-1] == ("failed", "stall_detected")
    engine = create_engine(optio.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        states = (
            await session.scalars(select(AgentRun.state).where(AgentRun.task_id == task["id"]))
        ).all()
    await engine.dispose()
    assert list(states) == ["stalled"]
    # The agent itself was stopped, not only its run recorded.
    for _ in range(50):
        if not running(silence):
            break
        await asyncio.sleep(0.2)
    assert not running(silence)
