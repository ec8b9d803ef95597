"""`optio task logs [-f]`: a task's log, and with -f its live tail until the task ends."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from cli.client.base import connect, handled
from cli.client.http import Api, repo_task
from cli.client.output import JsonOption, err, print_json, print_json_line
from cli.client.sse import TERMINAL_STATES, Follow, task_ended
from schemas.live import LiveFrame
from schemas.task_views import TaskDetailPublic, TaskLogsPublic
from schemas.tasks import TaskLogPublic

PAGE = 10_000


def all_logs(api: Api, task_id: str) -> tuple[list[TaskLogPublic], list[object]]:
    entries: list[TaskLogPublic] = []
    raw: list[object] = []
    while True:
        page, page_raw = api.get(
            f"/api/tasks/{task_id}/logs", TaskLogsPublic, limit=PAGE, offset=len(entries)
        )
        entries += page.logs
        raw += page_raw["logs"]
        if len(page.logs) < PAGE:
            return entries, raw


def write_line(content: str, stream: str | None) -> None:
    target = sys.stderr if stream == "stderr" else sys.stdout
    target.write(content if content.endswith("\n") else content + "\n")
    target.flush()


@handled
def logs(
    task_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the task ends")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print a task's log (the agent's output); -f follows it live."""
    with connect() as api:
        detail, _ = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
        if not follow or repo_task(detail.task).state in TERMINAL_STATES:
            entries, raw = all_logs(api, task_id)
            if as_json and not follow:
                print_json({"logs": raw})
                return
            for entry, entry_raw in zip(entries, raw, strict=True):
                if as_json:
                    print_json_line(entry_raw)
                else:
                    write_line(entry.content, entry.stream)
            return
        follow_live(api, task_id, as_json=as_json)


def follow_live(api: Api, task_id: str, *, as_json: bool) -> None:
    """Every event of the task's stream from its first (Last-Event-ID 0), then live."""

    def still_open() -> bool:
        detail, _ = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
        return repo_task(detail.task).state not in TERMINAL_STATES

    stream = Follow(
        api,
        f"/api/tasks/{task_id}/logs/stream",
        last_event_id=0,
        is_last=task_ended,
        still_open=still_open,
    )
    for frame in stream.frames():
        if as_json:
            print_json_line(frame.model_dump(mode="json", by_alias=True, exclude_unset=True))
        elif frame.type == "task:log" and frame.content is not None:
            write_line(frame.content, frame.stream)
        elif frame.type == "task:state_changed":
            err.print(_state_line(frame))


def _state_line(frame: LiveFrame) -> Text:
    return Text(f"-- {frame.from_state or '-'} -> {frame.to_state} ({frame.trigger})", "dim")
