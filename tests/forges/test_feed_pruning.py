"""The worker drops a repository's change feed once nobody has watched through it a while."""

from __future__ import annotations

import asyncio
from pathlib import Path

from activities import remote_prs
from activities.remote_prs import RemotePullRequests, Target
from core.settings import Settings
from store.models import Repo, Task


def target(url: str) -> Target:
    repo = Repo(workspace_id="w", repo_url=url, git_platform="github")
    task = Task(workspace_id="w", title="t", prompt="p", repo_url=url, agent_type="script")
    return Target(task=task, repo=repo)


async def test_an_idle_feed_is_dropped_and_a_busy_one_kept(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    prs = RemotePullRequests(settings=Settings(data_dir=tmp_path), sessions=None)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(remote_prs.time, "monotonic", lambda: clock[0])
    idle = prs.feed(target("https://github.com/acme/idle.git"), "t")
    busy = prs.feed(target("https://github.com/acme/busy.git"), "t")
    busy.watch(1).waiting = 1  # a watch activity waits on it right now
    assert prs.feed(target("https://github.com/acme/idle.git"), "t") is idle  # reused

    clock[0] += remote_prs.FEED_IDLE_SECONDS + 1
    prs.feed(target("https://github.com/acme/other.git"), "t")
    await asyncio.sleep(0)  # the dropped feed's HTTP client closes
    kept = {key[1] for key in prs.feeds}
    assert kept == {"https://github.com/acme/busy.git", "https://github.com/acme/other.git"}
    assert idle.forge.http._http.is_closed  # type: ignore[attr-defined]
    assert prs.feed(target("https://github.com/acme/idle.git"), "t") is not idle
    for feed in prs.feeds.values():
        await feed.forge.aclose()
