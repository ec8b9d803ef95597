"""`optio task ...`: create, inspect and command repo tasks."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.client import logs as logs_command
from cli.client import waiting
from cli.client.base import body, connect, handled, read_text
from cli.client.exits import ClientError, Exit
from cli.client.http import repo_task
from cli.client.output import JsonOption, done, fields, out, print_json, state, table, when
from schemas.task_views import (
    MergeResult,
    TaskDetailPublic,
    TaskEnvelope,
    TaskEventsPublic,
    TasksPublic,
)
from schemas.tasks import (
    MergeBody,
    MessageAccepted,
    MessageBody,
    ResumeBody,
    TaskCreate,
    TaskPublic,
)

app = typer.Typer(
    help="Repo tasks: a prompt run by an agent on a repository.", no_args_is_help=True
)
app.command("logs")(logs_command.logs)

UntilOption = Annotated[
    list[str] | None,
    typer.Option(
        "--until",
        help="Stop at this state too (repeatable), e.g. --until pr_opened",
        autocompletion=lambda: list(waiting.STATES),
    ),
]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", help="Give up after this many seconds (exit 13)")
]


def repo_argument(value: str) -> str:
    """A local repository named by a relative path is sent as its absolute path."""
    if "://" in value or value.startswith("git@"):
        return value
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def show_task(detail: TaskDetailPublic) -> None:
    task = repo_task(detail.task)
    fields(
        [
            ("id", task.id),
            ("title", task.title),
            ("state", task.state),
            ("repo", f"{task.repo_url} ({task.repo_branch})"),
            ("agent", task.agent_type),
            ("pending", detail.pending_reason),
            ("pr", task.pr_url),
            ("pr state", task.pr_state),
            ("checks", task.pr_checks_status),
            ("review", task.pr_review_status),
            ("summary", task.result_summary),
            ("error", task.error_message),
            ("cost", f"${task.cost_usd}" if task.cost_usd else None),
            ("retries", f"{task.retry_count}/{task.max_retries}"),
            ("created", when(task.created_at)),
            ("updated", when(task.updated_at)),
        ]
    )


def finish_wait(result: waiting.Waited, as_json: bool) -> None:
    if as_json:
        print_json(result.raw)
    else:
        show_task(result.detail)
    if result.code != Exit.OK:
        raise typer.Exit(int(result.code))


@app.command("create")
@handled
def create(
    repo: Annotated[str, typer.Option("--repo", "-r", help="Repository URL or local path")],
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="What to do; '-' reads stdin")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Default: the prompt's first line")] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", "-a", help="claude-code, codex, script, ...")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Base branch")] = None,
    model: Annotated[str | None, typer.Option(help="The agent's model")] = None,
    priority: Annotated[int | None, typer.Option(help="1..1000, lower first")] = None,
    max_retries: Annotated[int | None, typer.Option(help="0..10")] = None,
    depends_on: Annotated[
        list[str] | None, typer.Option("--depends-on", help="A task to wait for (repeatable)")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Show progress until settled")] = False,
    until: UntilOption = None,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a repo task; with --wait, follow it through its states."""
    text = read_text(prompt, what="prompt (--prompt)")
    values: dict[str, Any] = {
        "title": title or text.strip().splitlines()[0][:200],
        "prompt": text,
        "repoUrl": repo_argument(repo),
        "agentType": agent,
        "repoBranch": branch,
        "model": model,
        "priority": priority,
        "maxRetries": max_retries,
        "dependsOn": depends_on,
    }
    request = body(TaskCreate, {k: v for k, v in values.items() if v is not None})
    # The same key on a retried request: a lost answer never makes a second task.
    headers = {"Idempotency-Key": f"optio-cli-{uuid.uuid4()}"}
    with connect() as api:
        created, raw = api.send("POST", "/api/tasks", TaskEnvelope, json=request, headers=headers)
        task = repo_task(created.task)
        if not wait:
            if as_json:
                print_json(raw)
            else:
                out.print(task.id)
                done(f"task {task.id} created ({task.state})")
            return
        done(f"task {task.id} created")
        result = waiting.wait(api, task.id, until=until, timeout=timeout)
    finish_wait(result, as_json)


@app.command("list")
@handled
def list_(
    state_filter: Annotated[str | None, typer.Option("--state", help="Only this state")] = None,
    limit: Annotated[int, typer.Option(help="1..1000")] = 50,
    offset: Annotated[int, typer.Option()] = 0,
    as_json: JsonOption = False,
) -> None:
    """List the workspace's repo tasks, newest first."""
    with connect() as api:
        found, raw = api.get(
            "/api/tasks", TasksPublic, state=state_filter, limit=limit, offset=offset
        )
    if as_json:
        print_json(raw)
        return
    table(
        ["ID", "STATE", "AGENT", "TITLE", "PR", "UPDATED"],
        [_row(repo_task(t)) for t in found.tasks],
        empty="no tasks",
    )


def _row(task: TaskPublic) -> list[Any]:
    return [
        task.id,
        state(task.state),
        task.agent_type,
        task.title,
        task.pr_url,
        when(task.updated_at),
    ]


@app.command("show")
@handled
def show(task_id: str, as_json: JsonOption = False) -> None:
    """Show one task: state, PR, why it waits, cost."""
    with connect() as api:
        detail, raw = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
    if as_json:
        print_json(raw)
    else:
        show_task(detail)


@app.command("events")
@handled
def events(task_id: str, as_json: JsonOption = False) -> None:
    """A task's state transitions and what triggered each."""
    with connect() as api:
        found, raw = api.get(f"/api/tasks/{task_id}/events", TaskEventsPublic)
    if as_json:
        print_json(raw)
        return
    table(
        ["TIME", "FROM", "TO", "TRIGGER", "MESSAGE"],
        [
            [when(e.created_at), state(e.from_state), state(e.to_state), e.trigger, e.message]
            for e in found.events
        ],
        empty="no transitions yet",
    )


def _command(task_id: str, action: str, as_json: bool, payload: Any = None) -> None:
    with connect() as api:
        result, raw = api.send("POST", f"/api/tasks/{task_id}/{action}", TaskEnvelope, json=payload)
    if as_json:
        print_json(raw)
    else:
        task = repo_task(result.task)
        done(f"task {task.id}: {task.state}")


@app.command("cancel")
@handled
def cancel(task_id: str, as_json: JsonOption = False) -> None:
    """Cancel a live task (its sandbox is stopped). Repeating it is harmless."""
    _command(task_id, "cancel", as_json)


@app.command("retry")
@handled
def retry(task_id: str, as_json: JsonOption = False) -> None:
    """Run a failed or cancelled task again."""
    _command(task_id, "retry", as_json)


@app.command("resume")
@handled
def resume(
    task_id: str,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="New instructions; '-' reads stdin")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a task that needs attention (or failed) on its branch."""
    payload = body(ResumeBody, {"prompt": prompt}) if prompt else None
    _command(task_id, "resume", as_json, payload)


@app.command("message")
@handled
def message(
    task_id: str,
    text: Annotated[
        str | None, typer.Argument(help="The message; '-' or a pipe reads stdin")
    ] = None,
    interrupt: Annotated[bool, typer.Option(help="Mode 'interrupt' instead of 'soft'")] = False,
    as_json: JsonOption = False,
) -> None:
    """Send the agent a message (resumes a task waiting on a person with it)."""
    content = read_text(text, what="message")
    payload = body(MessageBody, {"content": content, "mode": "interrupt" if interrupt else "soft"})
    with connect() as api:
        sent, raw = api.send("POST", f"/api/tasks/{task_id}/message", MessageAccepted, json=payload)
    if as_json:
        print_json(raw)
    else:
        done(f"message {sent.message.id} sent to task {task_id}")


@app.command("merge")
@handled
def merge(
    task_id: str,
    method: Annotated[str, typer.Option(help="merge, squash or rebase")] = "squash",
    as_json: JsonOption = False,
) -> None:
    """Merge the task's pull request (the task then completes)."""
    with connect() as api:
        detail, _ = api.get(f"/api/tasks/{task_id}", TaskDetailPublic)
        task = repo_task(detail.task)
        if not task.pr_url:
            raise ClientError(
                f"task {task_id} has no pull request (it is {task.state})", Exit.CONFLICT
            )
        request = body(MergeBody, {"prUrl": task.pr_url, "mergeMethod": method})
        merged, raw = api.send("POST", "/api/pull-requests/merge", MergeResult, json=request)
    if as_json:
        print_json(raw)
    else:
        done(f"merged {merged.task.pr_url}; task {merged.task.id}: {merged.task.state}")


@app.command("wait")
@handled
def wait(
    task_id: str,
    until: UntilOption = None,
    timeout: TimeoutOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines")] = False,
    as_json: JsonOption = False,
) -> None:
    """Wait until the task settles; exit 0 when it completed (or reached --until),
    10 failed, 11 cancelled, 12 needs attention, 13 timed out."""
    with connect() as api:
        result = waiting.wait(api, task_id, until=until, timeout=timeout, show_progress=not quiet)
    finish_wait(result, as_json)
