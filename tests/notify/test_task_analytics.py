"""GET /api/analytics/performance, agents, failures and prs: computed over the
workspace's tasks of the window, from real rows on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from store.db import create_engine, session_factory, transaction
from store.models import Task, TaskEvent, Workspace
from store.types import utcnow
from tests.conftest import Optio

REPO = "https://github.com/acme/webapp"
OTHER_REPO = "https://github.com/acme/api"


async def seed(optio: Optio) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    engine = create_engine(optio.settings.database_url_resolved)

    def task(ws: str, title: str, **fields: Any) -> Task:
        created = now - fields.pop("age", 2 * hour)
        took = fields.pop("took", 100)
        finished = None if fields.pop("active", False) else created + timedelta(seconds=took)
        return Task(
            id=str(uuid.uuid4()),
            workspace_id=ws,
            title=title,
            prompt="p",
            repo_url=fields.pop("repo_url", REPO),
            agent_type=fields.pop("agent_type", "claude-code"),
            state=fields.pop("state", "completed"),
            created_at=created,
            started_at=created + timedelta(seconds=fields.pop("wait", 10)),
            completed_at=finished,
            **fields,
        )

    def event(t: Task, to_state: str, trigger: str, *, after: int) -> TaskEvent:
        return TaskEvent(
            task_id=t.id,
            workspace_id=t.workspace_id,
            seq=after,
            to_state=to_state,
            trigger=trigger,
            created_at=t.created_at + timedelta(seconds=after),
        )

    ws = optio.workspace_id
    async with transaction(session_factory(engine)) as session:
        other = Workspace(name="Other", slug=f"other-{uuid.uuid4().hex[:6]}")
        session.add(other)
        await session.flush()
        merged_auto = task(
            ws,
            "auto merged",
            pr_number=1,
            pr_url=f"{REPO}/pull/1",
            pr_state="merged",
            pr_checks_status="passing",
            pr_review_status="approved",
            model_used="claude-sonnet-4",
            cost_usd="0.30",
            took=400,
        )
        merged_by_hand = task(
            ws,
            "merged by a person",
            pr_number=2,
            pr_url=f"{REPO}/pull/2",
            pr_state="merged",
            pr_checks_status="passing",
            pr_review_status="changes_requested",
            model_used="claude-opus-4",
            cost_usd="0.10",
            retry_count=1,
            took=600,
        )
        open_pr = task(
            ws,
            "open",
            state="pr_opened",
            pr_number=3,
            pr_url=f"{REPO}/pull/3",
            pr_state="open",
            pr_checks_status="failing",
            active=True,
        )
        failed = [
            task(
                ws,
                f"failed {n}",
                state="failed",
                agent_type="codex",
                repo_url=OTHER_REPO,
                model_used="gpt-5",
                error_message=f"Agent exited with code 1\ndetails {n}",
                retry_count=2,
                took=50,
            )
            for n in range(2)
        ]
        stalled = task(
            ws, "stalled then done", agent_type="codex", repo_url=OTHER_REPO, retry_count=1
        )
        cancelled = task(ws, "cancelled", state="cancelled")
        last_month = task(ws, "old failure", state="failed", age=timedelta(days=40))
        foreign = task(other.id, "not ours", state="failed", error_message="secret repo broke")
        session.add_all(
            [merged_auto, merged_by_hand, open_pr, *failed, stalled, cancelled, last_month]
        )
        session.add(foreign)
        await session.flush()
        session.add_all(
            [
                event(merged_auto, "pr_opened", "pr_created", after=100),
                event(merged_auto, "completed", "auto_merged", after=400),
                event(merged_by_hand, "pr_opened", "pr_created", after=200),
                event(merged_by_hand, "completed", "pr_merged", after=600),
                event(open_pr, "pr_opened", "pr_created", after=50),
                event(stalled, "failed", "stall_detected", after=40),
                event(foreign, "failed", "stall_detected", after=40),
            ]
        )
    await engine.dispose()


async def test_performance_agents_failures_and_prs(api_only: Optio) -> None:
    await seed(api_only)
    get = api_only.client.get

    perf = (await get("/api/analytics/performance", params={"days": 30})).json()
    # Finished: 2 merged + 2 failed + the stalled one (cancelled and open PRs are not).
    assert perf["durations"]["taskCount"] == 5
    assert perf["durations"]["p50WallClock"] == 100.0
    assert perf["durations"]["p95WallClock"] == 600.0
    assert perf["durations"]["avgWallClock"] == 240.0  # (400 + 600 + 50 + 50 + 100) / 5
    assert perf["durations"]["avgExecution"] == 230.0
    assert perf["durations"]["avgQueueWait"] == 10.0
    # 4 succeeded (3 completed + 1 with its PR open) of 6 settled.
    assert perf["successRate"] == 66.7
    assert perf["successRateTrend"] == 66.7  # the 30 days before: one failure, 0 %
    assert len(perf["tasksPerDay"]) == 30
    today = perf["tasksPerDay"][-1]
    assert sum(d["total"] for d in perf["tasksPerDay"]) == 7
    assert today["total"] in (0, 7)  # the tasks are two hours old: today or yesterday

    only_codex = (
        await get("/api/analytics/performance", params={"days": 7, "agentType": "codex"})
    ).json()
    assert only_codex["durations"]["taskCount"] == 3 and only_codex["successRate"] == 33.3
    bad_agent = await get("/api/analytics/performance", params={"agentType": "rm -rf"})
    assert bad_agent.status_code in (400, 422), bad_agent.text

    agents = (await get("/api/analytics/agents", params={"days": 7})).json()["agents"]
    by_agent = {a["agentType"]: a for a in agents}
    assert set(by_agent) == {"claude-code", "codex"}
    assert by_agent["claude-code"]["taskCount"] == 4
    assert by_agent["claude-code"]["successRate"] == 100.0
    assert by_agent["claude-code"]["avgCost"] == "0.10"  # 0.40 over 4 tasks
    assert by_agent["claude-code"]["models"] == ["claude-opus-4", "claude-sonnet-4"]
    assert by_agent["codex"]["avgRetries"] == 1.67

    failures = (await get("/api/analytics/failures", params={"days": 7})).json()
    assert failures["errorMessages"] == [{"message": "Agent exited with code 1", "count": 2}]
    assert failures["failureByRepo"] == [{"repoUrl": OTHER_REPO, "count": 2}]
    assert failures["failureByAgent"] == [{"agentType": "codex", "count": 2}]
    assert failures["failureByModel"] == [{"model": "gpt-5", "count": 2}]
    assert failures["retriedCount"] == 4 and failures["retrySucceededCount"] == 2
    assert failures["retrySuccessRate"] == 50.0
    assert failures["stallCount"] == 1 and failures["stallRecoveryRate"] == 100.0
    assert "secret repo broke" not in str(failures)

    prs = (await get("/api/analytics/prs", params={"days": 7})).json()
    assert (prs["totalPrs"], prs["open"], prs["merged"], prs["closed"]) == (3, 1, 2, 0)
    assert prs["ciPassRate"] == 66.7
    assert prs["reviewApprovalRate"] == 50.0
    assert prs["autoMergeRate"] == 50.0
    assert prs["avgMergeTime"] == 350.0  # (400 - 100 + 600 - 200) / 2
    assert prs["funnel"] == {"prOpened": 3, "ciPassed": 2, "reviewApproved": 1, "merged": 2}

    repo_prs = (await get("/api/analytics/prs", params={"repoUrl": OTHER_REPO})).json()
    assert repo_prs["totalPrs"] == 0


async def test_analytics_need_a_member(api_only: Optio) -> None:
    for name in ("performance", "agents", "failures", "prs"):
        response = await api_only.anon.get(f"/api/analytics/{name}")
        assert response.status_code == 401, (name, response.text)
