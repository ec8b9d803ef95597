"""`python -m bench.forge`: watching many open PRs on GitHub, in compressed simulated time.

500 PRs are watched for one simulated hour against the GitHub REST double (tests/forges)
by the product's own code: the repository feed and each PR's kept watch
(integrations/forges/feed.py: `RepoFeed.poll`, `PrWatch.begin_round` / `needs_look` /
`look`), which decide which requests are made and when. What the workflow does around
them is replayed here: rounds of WATCH_ROUND_SECONDS that end when the snapshot changes
or time is up, and with webhooks a fresh round (`known=None`, the deliveries as events)
per `pr_event` signal. Requests are real HTTP exchanges with the double (in process, over
ASGI); only the clock is simulated, so an hour takes seconds.

During the measured hour a share of the PRs get a push whose GitHub Actions run takes a
few minutes and then fails or passes (with webhooks, each a second later: `push`,
`pull_request` (`synchronize`) and `check_run` (`created`, in progress) for the push,
`check_run` (`completed`, with its conclusion) and `check_suite` (`completed`) for the
result, carrying what the webhook route takes from real payloads:
`api/routes/webhooks.pr_event`). Reported: forge requests in the hour (all, and those
charged to the rate limit: a 304 is free on GitHub), and the delay from a CI failure to
the watch seeing it, which is when the workflow resumes the agent (the reaction itself,
fetching the failing logs and recording two transitions, adds about a second: see
docs/forges.md).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.routes.webhooks import pr_event
from integrations.forges.base import EtagCache, RepoRef
from integrations.forges.feed import RepoFeed
from integrations.forges.github import GitHubForge
from integrations.forges.watch import PollPolicy
from schemas.workflow import PrEvent, PrSnapshotData
from tests.forges import git_http as g
from tests.forges.github_double import GhRepo, GitHubDouble, Pull
from workflows.repo_task import WATCH_ROUND_SECONDS

TOKEN = "bench-token"
WARM_UP = 600.0  # every watcher's first look happens here, before the measured hour
WEBHOOK_DELAY = 1.0  # delivery + signal + a fresh watch round


@dataclass
class Mode:
    name: str
    webhooks: bool


@dataclass
class Result:
    mode: str
    requests: int
    charged: int
    delays: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        if not self.delays:
            return float("nan")
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _setup(root: Path, prs: int) -> tuple[GitHubDouble, list[int]]:
    double = GitHubDouble(root / "gh", users={TOKEN: "optio-bot"})
    double.base_url = "http://forge.test"
    double.rate_limit = 10**9
    source = root / "src"
    source.mkdir()
    g.git(source, "init", "-q", "-b", "main")
    (source / "README.md").write_text("bench\n")
    g.git(source, "add", "-A")
    g.git(source, "commit", "-q", "-m", "init")
    repo = double.add_repo("acme", "app", source)
    base = g.sha_of(repo.path, "main")
    tree = g.git(repo.path, "rev-parse", "main^{tree}").stdout.strip()
    numbers = []
    for i in range(prs):
        sha = g.git(repo.path, "commit-tree", tree, "-p", str(base), "-m", f"pr {i}").stdout
        g.git(repo.path, "update-ref", f"refs/heads/optio/task-{i}", sha.strip())
        number = next(repo.numbers)
        repo.pulls[number] = Pull(number, f"PR {i}", "", f"optio/task-{i}", "main", "optio-bot")
        # Each PR's head passed CI earlier, as GitHub Actions would have run it.
        double.complete_check(repo, _start_run(double, repo, sha.strip()), "success")
        numbers.append(number)
    return double, numbers


def _start_run(double: GitHubDouble, repo: GhRepo, sha: str) -> dict[str, Any]:
    """What the double's CI registers on a push (`start_ci`), without running a command."""
    run: dict[str, Any] = {
        "id": next(double.ids),
        "name": "test",
        "head_sha": sha,
        "status": "in_progress",
        "conclusion": None,
        "started_at": None,
        "completed_at": None,
        "output": {"title": None, "summary": None, "text": None},
        "app": {"slug": "github-actions"},
        "pull_requests": [],
    }
    repo.check_runs.setdefault(sha, []).append(run)
    return run


def _suite_completed(run: dict[str, Any]) -> PrEvent:
    """The `check_suite` `completed` delivery that follows the suite's last run."""
    suite = {key: run[key] for key in ("head_sha", "status", "conclusion", "app")}
    return pr_event("github", "check_suite", None, {"action": "completed", "check_suite": suite})


def _check_run_event(run: dict[str, Any], action: str) -> PrEvent:
    """The signal a `check_run` delivery becomes (`api/routes/webhooks.pr_event`)."""
    payload = {"action": action, "check_run": dict(run)}
    return pr_event("github", "check_run", None, payload)


async def simulate(mode: Mode, *, prs: int, active: float, fail: float, seed: int) -> Result:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        double, numbers = await asyncio.to_thread(_setup, Path(tmp), prs)
        repo = double.repos["acme/app"]
        forge = GitHubForge(
            ref=RepoRef.parse("http://forge.test/acme/app.git"),
            token=TOKEN,
            cache=EtagCache(),
            api_url="http://forge.test/api/v3",
            transport=httpx.ASGITransport(app=double.app),
        )
        clock = 0.0
        epoch = datetime.now(UTC) + timedelta(minutes=1)
        feed = RepoFeed(forge, PollPolicy(), clock=lambda: clock)
        feed.webhooks = mode.webhooks
        watches = {n: feed.watch(n) for n in numbers}
        known: dict[int, PrSnapshotData | None] = dict.fromkeys(numbers)
        round_end: dict[int, float] = {}
        inbox: dict[int, list[PrEvent]] = {n: [] for n in numbers}
        failed_at: dict[int, float] = {}
        result = Result(mode.name, 0, 0)
        # (time, order, kind, pr): kinds are feed, due, round, push, ci_done, hook
        events: list[tuple[float, int, str, int]] = []
        order = 0

        def at(when: float, kind: str, number: int = 0) -> None:
            nonlocal order
            order += 1
            heapq.heappush(events, (when, order, kind, number))

        def saw(n: int, snapshot: PrSnapshotData, now: float) -> None:
            if snapshot.checks_status == "failing" and n in failed_at:
                result.delays.append(now - failed_at.pop(n))

        async def round_(n: int, now: float, *, fresh: list[PrEvent] | None = None) -> None:
            """A watch round from its start until it waits (the activity, minus the waiting)."""
            watch = watches[n]
            watch.begin_round(now, known=known[n], events=fresh or [])
            watch.waiting = 1
            while True:
                if watch.needs_look(now):
                    await watch.look(now)
                snapshot = watch.snapshot
                assert snapshot is not None
                saw(n, snapshot, now)  # with or without a look: deliveries may have told
                if known[n] is not None and snapshot == known[n]:
                    break
                known[n] = snapshot  # returned: the workflow reacts, the next round starts
                watch.begin_round(now, known=snapshot, events=[])
            if (
                n not in round_end
                and math.isfinite(watch.due)
                and watch.due - now >= feed.policy.safety_seconds / 2
            ):
                # Steady state: PRs opened at different times poll at different phases.
                watch.due = now + rng.uniform(0, watch.due - now)
            round_end[n] = now + WATCH_ROUND_SECONDS
            at(round_end[n], "round", n)
            at(watch.due, "due", n)  # never, when the PR needs no poll of its own

        async def wake(n: int, now: float) -> None:
            """A waiting round wakes (a feed mark, or its own poll is due) and looks if it
            needs to; a changed snapshot ends the round and the next one starts with it."""
            watch = watches[n]
            if watch.needs_look(now):
                snapshot = await watch.look(now)
                saw(n, snapshot, now)
                if snapshot != known[n]:
                    known[n] = snapshot
                    round_end[n] = now + WATCH_ROUND_SECONDS
                    at(round_end[n], "round", n)
                at(watch.due, "due", n)

        def iso(now: float) -> str:
            return (epoch + timedelta(seconds=now)).strftime("%Y-%m-%dT%H:%M:%SZ")

        await feed.poll(clock)  # the feed's baseline comes before the first watch looks
        at(feed.next_poll, "feed")
        for n in numbers:
            at(rng.uniform(0, 30), "round", n)
            if rng.random() < active:
                at(WARM_UP + rng.uniform(0, 3300), "push", n)
        end = WARM_UP + 3600
        measured_from = (0, 0)
        started = False
        while events:
            now, _, kind, n = heapq.heappop(events)
            if now >= end:
                break
            clock = now
            if not started and now >= WARM_UP:
                started = True
                measured_from = (forge.http.counters.requests, forge.http.counters.charged)
            if kind == "feed":
                if now >= feed.next_poll:
                    for woken in await feed.poll(now):
                        await wake(woken, now)
                at(feed.next_poll, "feed")
            elif kind == "due":
                await wake(n, now)
            elif kind == "round":
                if now >= round_end.get(n, 0.0):
                    await round_(n, now)
            elif kind == "push":
                pr = repo.pulls[n]
                head = g.sha_of(repo.path, f"refs/heads/{pr.head}")
                tree = g.git(repo.path, "rev-parse", f"{head}^{{tree}}").stdout.strip()
                sha = g.git(repo.path, "commit-tree", tree, "-p", str(head), "-m", "fix").stdout
                sha = sha.strip()
                g.git(repo.path, "update-ref", f"refs/heads/{pr.head}", sha)
                pr.updated_at = iso(now)
                run = _start_run(double, repo, sha)  # registered before the push answers
                at(now + rng.uniform(120, 480), "ci_done", n)
                if mode.webhooks:
                    inbox[n] += [
                        PrEvent("push", head_sha=sha),
                        PrEvent("pull_request", head_sha=sha, action="synchronize"),
                        _check_run_event(run, "created"),
                    ]
                    at(now + WEBHOOK_DELAY, "hook", n)
            elif kind == "ci_done":
                tip = g.sha_of(repo.path, f"refs/heads/{repo.pulls[n].head}")
                run = repo.check_runs[str(tip)][-1]
                failing = rng.random() < fail
                double.complete_check(repo, run, "failure" if failing else "success")
                if failing:
                    failed_at[n] = now
                if mode.webhooks:
                    inbox[n] += [_check_run_event(run, "completed"), _suite_completed(run)]
                    at(now + WEBHOOK_DELAY, "hook", n)
            elif kind == "hook" and inbox[n]:
                # The signal cancels the round; a fresh one starts with nothing known.
                fresh, inbox[n] = inbox[n], []
                known[n] = None
                await round_(n, now, fresh=fresh)
        result.requests = forge.http.counters.requests - measured_from[0]
        result.charged = forge.http.counters.charged - measured_from[1]
        await forge.aclose()
        return result


def table(results: list[Result], *, prs: int) -> str:
    lines = [
        f"| mode ({prs} open PRs, 1 simulated hour) | requests | charged to rate limit "
        "| CI failures | failure seen p50 | p95 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.requests} | {r.charged} | {len(r.delays)} | "
            f"{r.p(0.5):.1f} s | {r.p(0.95):.1f} s | {max(r.delays, default=0):.1f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--prs", type=int, default=500)
    parser.add_argument("--active", type=float, default=0.1, help="share of PRs pushed to")
    parser.add_argument("--fail", type=float, default=0.5, help="share of those whose CI fails")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = []
    for mode in (Mode("polling (ETags)", webhooks=False), Mode("webhooks", webhooks=True)):
        results.append(
            asyncio.run(
                simulate(mode, prs=args.prs, active=args.active, fail=args.fail, seed=args.seed)
            )
        )
    print(table(results, prs=args.prs))  # noqa: T201


if __name__ == "__main__":
    main()
