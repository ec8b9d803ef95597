"""`optio blueprint ...`: repo tasks to stamp out by hand, on a schedule or a webhook."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import RootModel

from cli.client import waiting
from cli.client.base import body, connect, handled, pairs
from cli.client.output import JsonOption, done, out, print_json, table, when
from cli.client.tasks import TimeoutOption, UntilOption, finish_wait
from schemas.blueprints import BlueprintPublic, RunCreate, TriggerCreate
from schemas.task_views import (
    BlueprintRunStarted,
    RunStarted,
    TasksPublic,
    TriggerEnvelope,
    TriggersPublic,
)

app = typer.Typer(
    help="Blueprints: repo tasks run by hand, on a schedule or a webhook.", no_args_is_help=True
)

# The API's answer is a union on `type`: a model of its own for `Api.send`.
RunAnswer = RootModel[RunStarted]


@app.command("list")
@handled
def list_(
    limit: Annotated[int, typer.Option(help="1..1000")] = 50, as_json: JsonOption = False
) -> None:
    """The workspace's blueprints."""
    with connect() as api:
        found, raw = api.get("/api/tasks", TasksPublic, type="repo-blueprint", limit=limit)
    if as_json:
        print_json(raw)
        return
    table(
        ["ID", "NAME", "TITLE", "REPO", "ENABLED"],
        [
            [b.id, b.name, b.title, b.repo_url, "yes" if b.enabled else "no"]
            for b in found.tasks
            if isinstance(b, BlueprintPublic)
        ],
        empty="no blueprints",
    )


@app.command("run")
@handled
def run(
    blueprint_id: str,
    params: Annotated[
        list[str] | None, typer.Argument(help="Template params as name=value")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the new task")] = False,
    until: UntilOption = None,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a blueprint now: a new repo task (or a standalone run)."""
    request = body(RunCreate, {"params": pairs(params)})
    with connect() as api:
        answer, raw = api.send("POST", f"/api/tasks/{blueprint_id}/runs", RunAnswer, json=request)
        started = answer.root
        if wait and isinstance(started, BlueprintRunStarted):
            done(f"task {started.run_id} created")
            finish_wait(waiting.wait(api, started.run_id, until=until, timeout=timeout), as_json)
            return
    if as_json:
        print_json(raw)
    else:
        out.print(started.run_id)
        done(f"{started.type} {started.run_id} started")


@app.command("triggers")
@handled
def triggers(
    blueprint_id: str,
    schedule: Annotated[
        str | None, typer.Option(help="Add a schedule trigger with this cron expression (UTC)")
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="name=value for the added trigger")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List a blueprint's triggers; --schedule adds one."""
    with connect() as api:
        if schedule is not None:
            request = body(
                TriggerCreate,
                {
                    "type": "schedule",
                    "config": {"cronExpression": schedule},
                    "paramMapping": pairs(params) or None,
                },
            )
            added, _ = api.send(
                "POST", f"/api/tasks/{blueprint_id}/triggers", TriggerEnvelope, json=request
            )
            done(f"trigger {added.trigger.id} added")
        found, raw = api.get(f"/api/tasks/{blueprint_id}/triggers", TriggersPublic)
    if as_json:
        print_json(raw)
        return
    table(
        ["ID", "TYPE", "CONFIG", "ENABLED", "LAST FIRED", "NEXT"],
        [
            [
                t.id,
                t.type,
                " ".join(f"{k}={v}" for k, v in t.config.items()),
                "yes" if t.enabled else "no",
                when(t.last_fired_at),
                when(t.next_fire_at),
            ]
            for t in found.triggers
        ],
        empty="no triggers",
    )
