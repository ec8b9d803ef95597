"""A Claude Code run stopped at its budget mid-run: the real CLI, the scripted endpoint.

The CLI states its cost only in its final result line; the adapter's running estimate
(integrations/agents/running_cost.py) is what lets the budget stop it while it works.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from core.budget import cost_in
from tests.agents.conftest import need_cli
from tests.agents.model_endpoint import Endpoint
from tests.agents.test_real_agents import connect, create, settled_logs
from tests.conftest import Optio
from tests.lifecycle_helpers import triggers, wait_for_state

pytestmark = [pytest.mark.engines("sqlite"), pytest.mark.usefixtures("settled")]
MAX_TURNS = 40
# claude-sonnet-4-5 at $3 / $15 per million: one scripted request (100 in, 20 out) costs
# $0.0006, so the second one passes this budget.
PER_REQUEST = Decimal("0.0006")
BUDGET = "0.001"


async def test_a_claude_run_is_stopped_at_its_budget_mid_run(
    optio: Optio, make_repo: Callable[..., Path], model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    repo = make_repo()
    await connect(optio, repo, maxTurnsCoding=MAX_TURNS)
    started = time.monotonic()
    task_id = await create(
        optio,
        repo,
        "Read the docs, then loop forever",
        "claude-code",
        model="claude-sonnet-4-5",
        maxCostUsd=BUDGET,
        maxRetries=2,
    )
    failed = (await wait_for_state(optio.client, task_id, "failed", timeout=120))["task"]
    elapsed = time.monotonic() - started
    steps = await triggers(optio.client, task_id)
    assert ("failed", "budget_exceeded") in steps, (failed, steps)
    assert [s for s in steps if s[1] == "auto_retry"] == []  # never retried
    # Stopped well before the turn limit the model would otherwise have run into.
    requests = len(model_endpoint.api_requests("anthropic"))
    assert 2 <= requests < MAX_TURNS // 2, requests
    spent = Decimal(failed["costUsd"])
    assert spent > Decimal(BUDGET) and spent % PER_REQUEST == 0, failed["costUsd"]
    assert failed["errorMessage"].startswith("Budget exceeded: spent $"), failed["errorMessage"]
    # The task's cost is the adapter's estimate (the CLI never reached its result line).
    entries = await settled_logs(optio, task_id)
    estimates = [e for e in entries if (e.get("metadata") or {}).get("costEstimated")]
    assert estimates, [e["content"] for e in entries]
    assert cost_in(estimates[-1]["metadata"]) == spent
    assert not any("outcome" in (e.get("metadata") or {}) for e in entries)
    print(f"\nclaude-code stopped at ${spent} after {requests} requests, {elapsed:.1f} s")  # noqa: T201
