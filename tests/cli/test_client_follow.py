"""`logs -f` and `events -f` over real SSE, through a link the test cuts mid-stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.client_runner import Cli
from tests.cli.proxy import CuttableProxy
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task

MakeRepo = Callable[..., Path]
# Each command is a fresh Python process; on a loaded machine a dozen of them take minutes.
pytestmark = pytest.mark.timeout(480)
LINES = 80
# The agent prints slowly so that the cut falls in the middle of its output.
SCRIPT = f"for i in $(seq 1 {LINES}); do echo line-$i; sleep 0.1; done; echo ok > out.txt"


@pytest.fixture
async def proxy(optio: Optio) -> AsyncIterator[CuttableProxy]:
    relay = CuttableProxy(optio.settings.api_port)
    await relay.start()
    yield relay
    await relay.stop()


async def read_until(stream: asyncio.StreamReader, wanted: str, seen: list[str]) -> None:
    while wanted not in seen:
        line = await asyncio.wait_for(stream.readline(), 90)
        assert line, f"the stream ended before {wanted!r}; saw {seen}"
        seen.append(line.decode().rstrip("\n"))


async def test_logs_follow_reconnects_without_losing_a_line(
    optio: Optio, proxy: CuttableProxy, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    connected = await optio.client.post(
        "/api/repos", json={"repoUrl": str(repo), "autoMerge": True}
    )
    assert connected.status_code == 201
    task = await create_task(optio.client, repo, SCRIPT, maxRetries=0)
    cli = Cli(tmp_path, OPTIO_URL=f"http://127.0.0.1:{proxy.port}", OPTIO_TOKEN=optio.token)
    follower = await cli.start("task", "logs", task["id"], "-f")
    assert follower.stdout is not None
    seen: list[str] = []
    await read_until(follower.stdout, "line-5", seen)
    before = proxy.connections
    proxy.cut()  # the client's stream (and any pooled connection) dies mid-task
    rest, err = await asyncio.wait_for(follower.communicate(), 120)
    seen += rest.decode().splitlines()
    assert follower.returncode == 0, err.decode()
    # Every line once, in order, across the cut; and it did reconnect.
    assert [line for line in seen if line.startswith("line-")] == [
        f"line-{i}" for i in range(1, LINES + 1)
    ]
    assert proxy.connections > before
    # The follow ended by itself when the task did, and said how it went.
    assert "-> completed (auto_merged)" in err.decode()


async def test_events_follow_reconnects_without_a_gap(
    optio: Optio, proxy: CuttableProxy, make_repo: MakeRepo, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, OPTIO_URL=f"http://127.0.0.1:{proxy.port}", OPTIO_TOKEN=optio.token)
    follower = await cli.start("events", "-f", "--json")
    assert follower.stdout is not None
    task = await create_task(optio.client, make_repo(), SCRIPT, maxRetries=0)
    frames: list[dict[str, Any]] = []

    async def read_until_state(state: str) -> None:
        assert follower.stdout is not None
        while not any(f.get("toState") == state for f in frames):
            line = await asyncio.wait_for(follower.stdout.readline(), 90)
            assert line, f"events ended; saw {frames}"
            frames.append(json.loads(line))

    try:
        await read_until_state("running")
        before = proxy.connections
        proxy.cut()
        await read_until_state("pr_opened")  # no auto-merge: the task rests there
        assert proxy.connections > before
    finally:
        follower.kill()
        await follower.wait()
    ids = [f["eventId"] for f in frames]
    assert ids == sorted(set(ids))  # in order, none twice
    states = [
        f["toState"]
        for f in frames
        if f["type"] == "task:state_changed" and f["taskId"] == task["id"]
    ]
    assert states == ["queued", "provisioning", "running", "pr_opened"]

    # Without -f: the recent state changes, then the command ends by itself.
    recent = await cli.run("events", "--json")
    assert recent.code == 0, recent.err
    lines = [json.loads(line) for line in recent.out.splitlines()]
    assert [f["toState"] for f in lines if f["taskId"] == task["id"]] == states
    two = await cli.run("events", "--json", "--count", "2")
    assert len(two.out.splitlines()) == 2
