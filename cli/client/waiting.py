"""`task wait` and `task create --wait`: follow a task's transitions until it settles.

Every transition is read from GET /api/tasks/:id/events, so a state passed through
between two looks is still shown. "Settled" is a state in which the task waits for a
person or has ended: completed, failed, cancelled, needs_attention, and pr_opened for a
repository without auto-merge (with auto-merge the task goes on to merge by itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from cli.client.exits import ClientError, Exit
from cli.client.http import Api, repo_task
from cli.client.output import STATE_STYLE, err, when
from schemas.repos import ReposPublic
from schemas.task_views import TaskDetailPublic, TaskEventsPublic
from schemas.tasks import TaskEventPublic, TaskPublic

TERMINAL = frozenset({"completed", "failed", "cancelled"})
SETTLED = TERMINAL | {"needs_attention"}
OUTCOME = {
    "failed": Exit.TASK_FAILED,
    "cancelled": Exit.TASK_CANCELLED,
    "needs_attention": Exit.TASK_NEEDS_ATTENTION,
}
STATES = (
    "pending", "waiting_on_deps", "queued", "provisioning", "running", "needs_attention",
    "pr_opened", "completed", "failed", "cancelled",
)  # fmt: skip


@dataclass
class Waited:
    detail: TaskDetailPublic
    raw: Any
    code: Exit


def stop_states(api: Api, task: TaskPublic, until: list[str] | None) -> frozenset[str]:
    if until:
        unknown = sorted(set(until) - set(STATES))
        if unknown:
            raise ClientError(
                f"--until {', '.join(unknown)}: not a task state ({', '.join(STATES)})",
                Exit.USAGE,
            )
        return frozenset(until) | TERMINAL
    repos, _ = api.get("/api/repos", ReposPublic)
    repo = next((r for r in repos.repos if r.repo_url == task.repo_url), None)
    return SETTLED if repo is not None and repo.auto_merge else SETTLED | {"pr_opened"}


def wait(
    api: Api,
    task_id: str,
    *,
    until: list[str] | None = None,
    timeout: float | None = None,
    interval: float = 1.0,
    show_progress: bool = True,
) -> Waited:
    detail, _ = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
    stops = stop_states(api, repo_task(detail.task), until)
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = 0
    status = err.status("", spinner="dots") if show_progress and err.is_terminal else None
    if status is not None:
        status.start()
    try:
        while True:
            events, _ = api.get(f"/api/tasks/{task_id}/events", TaskEventsPublic)
            for event in events.events[shown:]:
                if show_progress:
                    err.print(_transition(event))
            shown = len(events.events)
            current = events.events[-1].to_state if events.events else repo_task(detail.task).state
            if current in stops:
                final, raw = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
                state = repo_task(final.task).state
                if state in stops:
                    code = Exit.OK if until and state in until else _outcome(final)
                    return Waited(final, raw, code)
            if deadline is not None and time.monotonic() > deadline:
                raise ClientError(
                    f"task {task_id} is still {current} after {timeout:g} s", Exit.TIMEOUT
                )
            if status is not None:
                status.update(Text(f"{current} ...", style=STATE_STYLE.get(current, "")))
            time.sleep(interval)
    finally:
        if status is not None:
            status.stop()


def _outcome(detail: TaskDetailPublic) -> Exit:
    return OUTCOME.get(repo_task(detail.task).state, Exit.OK)


def _transition(event: TaskEventPublic) -> Text:
    line = Text(f"{when(event.created_at)}  ")
    line.append(event.from_state or "-", style=STATE_STYLE.get(event.from_state or "", ""))
    line.append(" -> ")
    line.append(event.to_state, style=STATE_STYLE.get(event.to_state, ""))
    line.append(f"  ({event.trigger})")
    if event.message:
        line.append(f"  {event.message}")
    return line
