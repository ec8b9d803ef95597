"""GET /api/analytics/costs: sums over every run (retries, reviews, standalone runs),
per repo, type and model, with trend, forecast, anomalies and model suggestions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from store.blueprints import StandaloneRun, StandaloneTask
from store.db import create_engine, session_factory, transaction
from store.models import AgentRun, Task, Workspace
from store.types import utcnow
from tests.conftest import Optio

REPO = "https://github.com/acme/webapp"


async def seed(optio: Optio) -> None:
    now = utcnow()
    engine = create_engine(optio.settings.database_url_resolved)

    def task(ws: str, title: str, **fields: Any) -> Task:
        return Task(
            id=str(uuid.uuid4()),
            workspace_id=ws,
            title=title,
            prompt="p",
            repo_url=fields.pop("repo_url", REPO),
            agent_type="claude-code",
            state=fields.pop("state", "completed"),
            **fields,
        )

    def run(t: Task, cost: str, model: str | None, *, ago: timedelta = timedelta()) -> AgentRun:
        rid = str(uuid.uuid4())
        return AgentRun(
            id=rid,
            task_id=t.id,
            workspace_id=t.workspace_id,
            agent_type="claude-code",
            sandbox_name=rid,
            token_hash=rid,
            state="succeeded",
            cost_usd=cost,
            input_tokens=1000,
            output_tokens=100,
            model_used=model,
            started_at=now - ago,
        )

    ws = optio.workspace_id
    async with transaction(session_factory(engine)) as session:
        other = Workspace(name="Other", slug=f"other-{uuid.uuid4().hex[:6]}")
        session.add(other)
        await session.flush()
        resumed = task(
            ws, "resumed twice", metadata_={"taskConfigId": "bp-1", "taskConfigName": "nightly"}
        )
        cheap = [task(ws, f"cheap {n}") for n in range(2)]
        pricey = task(ws, "pricey")
        review = task(ws, "review", task_type="review")
        old = task(ws, "old")
        foreign = task(other.id, "not ours")
        session.add_all([resumed, *cheap, pricey, review, old, foreign])
        await session.flush()
        session.add_all(
            [
                run(resumed, "0.04", "claude-sonnet-4"),
                run(resumed, "0.06", "claude-sonnet-4"),
                *(run(t, "0.10", "claude-sonnet-4") for t in cheap),
                run(pricey, "1.00", "claude-opus-4"),
                run(review, "0.05", None),
                run(old, "0.50", "claude-sonnet-4", ago=timedelta(days=40)),
                run(foreign, "9.99", "claude-opus-4"),
            ]
        )
        job = StandaloneTask(workspace_id=ws, name="digest", prompt_template="x")
        session.add(job)
        await session.flush()
        session.add(
            StandaloneRun(
                id=str(uuid.uuid4()),
                workflow_id=job.id,
                workspace_id=ws,
                state="completed",
                cost_usd="0.25",
                model_used="gpt-5",
            )
        )
    await engine.dispose()


async def test_costs_report_every_run_of_the_workspace(api_only: Optio) -> None:
    await seed(api_only)
    response = await api_only.client.get("/api/analytics/costs", params={"days": 30})
    assert response.status_code == 200, response.text
    report = response.json()
    summary = report["summary"]
    assert summary["totalCost"] == "1.60"  # 0.10 + 0.20 + 1.00 + 0.05 + 0.25
    assert summary["taskCount"] == 6 and summary["averageCost"] == "0.266667"
    assert summary["prevPeriodCost"] == "0.50" and summary["costTrend"] == 220.0
    by_type = {r["taskType"]: r["cost"] for r in report["costByType"]}
    assert by_type == {"coding": "1.30", "standalone": "0.25", "review": "0.05"}
    assert report["costByRepo"] == [
        {"repoUrl": REPO, "cost": "1.35", "totalCost": "1.35", "taskCount": 5}
    ]
    models = {r["model"]: r for r in report["costByModel"]}
    assert models["claude-sonnet-4"]["totalCost"] == "0.30"
    assert models["claude-sonnet-4"]["taskCount"] == 3
    assert models["claude-sonnet-4"]["totalInputTokens"] == 4000
    assert models["claude-opus-4"]["successRate"] == 100.0
    resumed = next(t for t in report["topTasks"] if t["title"] == "resumed twice")
    assert resumed["costUsd"] == "0.10"  # both runs, not the last one
    assert [a["title"] for a in report["anomalies"]] == ["pricey"]
    totals = {
        (r["name"], r["type"]): (r["totalCost"], r["runCount"]) for r in report["costByBlueprint"]
    }
    assert totals == {
        ("digest", "standalone"): ("0.25", 1),
        ("nightly", "repo-blueprint"): ("0.10", 1),
    }
    assert report["modelSuggestions"] == [
        {
            "repoUrl": REPO,
            "currentModel": "claude-opus-4",
            "taskCount": 1,
            "avgCost": "1.00",
            "cheaperModelAvgCost": "0.10",
        }
    ]
    assert len(report["dailyCosts"]) == 30
    assert report["dailyCosts"][-1]["cost"] == "1.60"
    assert report["forecast"]["monthCostSoFar"] == "1.60"  # the 40-day-old run is not
    assert "9.99" not in response.text

    only_repo = (await api_only.client.get("/api/analytics/costs", params={"repoUrl": REPO})).json()
    assert only_repo["summary"]["totalCost"] == "1.35"
    bad = await api_only.client.get("/api/analytics/costs", params={"days": 0})
    assert bad.status_code in (400, 422)
