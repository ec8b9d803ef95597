"""Standalone tasks: runs in a scratch sandbox, output kept, concurrency and budget enforced."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.client import WorkflowExecutionStatus

from core.tokens import hash_token
from store.blueprints import StandaloneRun
from store.db import create_engine, session_factory, transaction
from tests.blueprints.conftest import create_standalone, eventually
from tests.conftest import Optio


async def run_state(optio: Optio, task_id: str, run_id: str, *states: str) -> dict:
    async def probe() -> dict | None:
        response = await optio.client.get(f"/api/tasks/{task_id}/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict = response.json()["run"]
        return run if run["state"] in states else None

    result: dict = await eventually(probe, timeout=60)
    return result


async def start(optio: Optio, task_id: str, **params: object) -> str:
    response = await optio.client.post(f"/api/tasks/{task_id}/runs", json={"params": params})
    assert response.status_code == 202, response.text
    assert response.json()["type"] == "workflow-run"
    run_id: str = response.json()["runId"]
    return run_id


async def test_a_standalone_run_keeps_its_output(bp: Optio) -> None:
    job = await create_standalone(
        bp.client,
        prompt='echo "working in $(basename $PWD)"\necho hello {{who}}',
        paramsSchema={
            "type": "object",
            "required": ["who"],
            "properties": {"who": {"type": "string"}},
        },
    )
    assert job["type"] == "standalone" and job["agentType"] == "script"
    run_id = await start(bp, job["id"], who="world")
    run = await run_state(bp, job["id"], run_id, "completed", "failed")
    assert run["state"] == "completed", run
    assert run["output"] == {"summary": "hello world"}
    assert run["params"] == {"who": "world"} and run["startedAt"] and run["finishedAt"]
    described = await bp.temporal.get_workflow_handle(f"run-{run_id}").describe()
    assert described.workflow_type == "StandaloneRunWorkflow"

    async def logs() -> list[str]:
        response = await bp.client.get(f"/api/tasks/{job['id']}/runs/{run_id}/logs")
        contents = [entry["content"] for entry in response.json()["logs"]]
        return contents if "hello world" in contents else []

    assert (await eventually(logs))[-1] == "hello world"
    runs = (await bp.client.get(f"/api/tasks/{job['id']}/runs")).json()["runs"]
    assert [r["id"] for r in runs] == [run_id]

    bad = await bp.client.post(f"/api/tasks/{job['id']}/runs", json={"params": {"who": 7}})
    assert bad.status_code == 400 and "params.who must be string" in bad.json()["error"]


async def test_max_concurrent_holds_the_second_run_queued(bp: Optio) -> None:
    job = await create_standalone(
        bp.client, prompt="sleep 3\necho done", maxConcurrent=1, maxRetries=0
    )
    first = await start(bp, job["id"])
    await run_state(bp, job["id"], first, "running")
    second = await start(bp, job["id"])
    await asyncio.sleep(1.5)
    held = (await bp.client.get(f"/api/tasks/{job['id']}/runs/{second}")).json()["run"]
    assert held["state"] == "queued"
    done_first = await run_state(bp, job["id"], first, "completed")
    done_second = await run_state(bp, job["id"], second, "completed")
    # The second started only once the first had finished.
    assert done_second["startedAt"] >= done_first["finishedAt"]


async def test_a_run_over_budget_is_stopped_and_fails_with_the_reason(bp: Optio) -> None:
    job = await create_standalone(
        bp.client, prompt="echo thinking\nsleep 60\necho never", budgetUsd="0.01", maxRetries=2
    )
    assert job["budgetUsd"] == "0.01"
    run_id = await start(bp, job["id"])
    await run_state(bp, job["id"], run_id, "running")
    # Play the runner's part as an agent adapter would: report usage with its cost
    # through the run's real ingest endpoint. The run's token lives only in its runner's
    # memory, so the test gives the run a token of its own.
    spec_file = bp.settings.runs_dir / f"{run_id}.0" / "spec.json"
    spec = json.loads(await eventually(lambda: _read(spec_file)))
    assert "runToken" not in spec
    spec["runToken"] = await replace_run_token(bp, run_id)
    event = {
        "seq": 10_000,
        "timestamp": datetime.now(UTC).isoformat(),
        "logType": "info",
        "content": "1 turn · $0.05",
        "metadata": {"outcome": {"costUsd": "0.05"}},
    }
    async with httpx.AsyncClient() as client:
        sent = await client.post(
            spec["ingestUrl"],
            json={"events": [event]},
            headers={"Authorization": f"Bearer {spec['runToken']}"},
        )
    assert sent.status_code == 200, sent.text
    started = asyncio.get_running_loop().time()
    run = await run_state(bp, job["id"], run_id, "failed", "completed")
    assert asyncio.get_running_loop().time() - started < 15  # stopped, not waited out
    assert run["state"] == "failed"
    assert run["errorMessage"] == "Budget exceeded: spent $0.05 of a $0.01 budget"
    assert run["costUsd"] == "0.05" and run["retryCount"] == 0  # never retried
    async with httpx.AsyncClient() as client:
        wrong = await client.post(
            spec["ingestUrl"], json={"events": [event]}, headers={"Authorization": "Bearer x"}
        )
    assert wrong.status_code == 401


async def replace_run_token(optio: Optio, run_id: str) -> str:
    token = "optio_run_test_" + run_id
    engine = create_engine(optio.settings.database_url_resolved)
    try:
        async with transaction(session_factory(engine)) as session:
            run = await session.get(StandaloneRun, run_id)
            assert run is not None
            run.token_hash = hash_token(token)
    finally:
        await engine.dispose()
    return token


async def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


async def test_deleting_a_standalone_task_cancels_its_live_run(bp: Optio) -> None:
    job = await create_standalone(bp.client, prompt="echo up\nsleep 60", maxRetries=0)
    run_id = await start(bp, job["id"])
    await run_state(bp, job["id"], run_id, "running")
    run_dir = bp.settings.runs_dir / f"{run_id}.0"

    async def sandbox_started() -> bool:
        # The row says running before the attempt has made its sandbox; a delete before
        # that ends the run with no sandbox to stop (tests/workflows/test_kinds.py).
        return run_dir.exists()

    await eventually(sandbox_started, timeout=20)
    assert (await bp.client.delete(f"/api/tasks/{job['id']}")).status_code == 204
    handle = bp.temporal.get_workflow_handle(f"run-{run_id}")

    async def closed() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(closed, timeout=20)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    # The workflow waited for its activity to stop the sandbox before it ended.
    result = json.loads((run_dir / "result.json").read_text())
    assert result["error"] == "Run stopped"
