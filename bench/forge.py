"""`python -m bench.forge`: watching many open PRs on GitHub, in compressed simulated time.

500 PRs are watched for one simulated hour against the GitHub REST double (tests/forges),
through the product's own `PrObserver` (which requests a poll makes, with ETags) and
`PollPolicy` (when the next poll is). Requests are real HTTP exchanges with the double
(in process, over ASGI); only the clock is simulated, so an hour takes seconds.

During the measured hour a share of the PRs get a push whose CI runs a few minutes and
then fails or passes. Reported: forge requests in the hour (all, and those charged to
the rate limit: a 304 is free on GitHub), and the delay from a CI failure to the watcher
seeing it, which is when the workflow resumes the agent (the reaction itself, fetching
the failing logs and recording two transitions, adds about a second: see docs/forges.md).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from integrations.forges.base import EtagCache, RepoRef
from integrations.forges.github import GitHubForge
from integrations.forges.watch import PollPolicy, PrObserver
from schemas.workflow import PrSnapshotData
from tests.forges import git_http as g
from tests.forges.github_double import GitHubDouble, Pull

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
        numbers.append(number)
    return double, numbers


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
        policy = PollPolicy()
        observers = {n: PrObserver(forge, n) for n in numbers}
        unchanged = dict.fromkeys(numbers, 0)
        last: dict[int, PrSnapshotData] = {}
        failed_at: dict[int, float] = {}
        result = Result(mode.name, 0, 0)
        # (time, order, kind, pr): kinds are poll, push, ci_done, hook
        events: list[tuple[float, int, str, int]] = []
        order = 0

        def at(when: float, kind: str, number: int) -> None:
            nonlocal order
            order += 1
            heapq.heappush(events, (when, order, kind, number))

        for n in numbers:
            at(rng.uniform(0, 30), "poll", n)
            if rng.random() < active:
                at(WARM_UP + rng.uniform(0, 3300), "push", n)
        end = WARM_UP + 3600
        measured_from = (0, 0)
        started = False
        while events:
            now, _, kind, n = heapq.heappop(events)
            if now >= end:
                break
            if not started and now >= WARM_UP:
                started = True
                measured_from = (forge.http.counters.requests, forge.http.counters.charged)
            pr = repo.pulls[n]
            if kind == "push":
                head = g.sha_of(repo.path, f"refs/heads/{pr.head}")
                tree = g.git(repo.path, "rev-parse", f"{head}^{{tree}}").stdout.strip()
                sha = g.git(repo.path, "commit-tree", tree, "-p", str(head), "-m", "fix").stdout
                g.git(repo.path, "update-ref", f"refs/heads/{pr.head}", sha.strip())
                pr.updated_at = f"t{now:.0f}"
                double.start_ci(repo, sha.strip()) if repo.ci_command else _pending(repo, sha)
                at(now + rng.uniform(120, 480), "ci_done", n)
                if mode.webhooks:
                    at(now + WEBHOOK_DELAY, "hook", n)
            elif kind == "ci_done":
                tip = g.sha_of(repo.path, f"refs/heads/{pr.head}")
                run = repo.check_runs[str(tip)][-1]
                failing = rng.random() < fail
                double.complete_check(repo, run, "failure" if failing else "success")
                if failing:
                    failed_at[n] = now
                if mode.webhooks:
                    at(now + WEBHOOK_DELAY, "hook", n)
            else:
                if kind == "hook":
                    observers[n] = PrObserver(forge, n)  # a fresh watch round, as in the workflow
                snapshot = await observers[n].observe()
                if snapshot == last.get(n):
                    unchanged[n] += 1
                else:
                    unchanged[n] = 0
                last[n] = snapshot
                if snapshot.checks_status == "failing" and n in failed_at:
                    result.delays.append(now - failed_at.pop(n))
                if kind == "poll":
                    wait = policy.next_interval(
                        pending=observers[n].pending,
                        unchanged_polls=unchanged[n],
                        webhooks=mode.webhooks,
                    )
                    at(now + wait, "poll", n)
        result.requests = forge.http.counters.requests - measured_from[0]
        result.charged = forge.http.counters.charged - measured_from[1]
        await forge.aclose()
        return result


def _pending(repo: object, sha: str) -> None:
    from tests.forges.github_double import GhRepo

    assert isinstance(repo, GhRepo)
    repo.check_runs.setdefault(sha.strip(), []).append(
        {
            "id": len(repo.check_runs) + 10_000,
            "name": "test",
            "head_sha": sha.strip(),
            "status": "in_progress",
            "conclusion": None,
            "output": {},
        }
    )


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
