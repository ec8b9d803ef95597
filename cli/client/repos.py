"""`optio repo ...`: connected repositories and their settings."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client.base import body, connect, handled, pairs
from cli.client.exits import ClientError, Exit
from cli.client.http import Api
from cli.client.output import JsonOption, done, fields, print_json, table, when
from cli.client.tasks import repo_argument
from schemas.repos import RepoCreate, RepoEnvelope, RepoPublic, ReposPublic, RepoUpdate

app = typer.Typer(help="Connected repositories and their settings.", no_args_is_help=True)

SettingsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Settings as name=value, e.g. autoMerge=true maxConcurrentTasks=2"),
]


def find(api: Api, ref: str) -> tuple[RepoPublic, Any]:
    """A repository by id, or by its URL or local path."""
    listed, raw = api.get("/api/repos", ReposPublic)
    wanted = {ref, repo_argument(ref), f"file://{repo_argument(ref)}"}
    for repo, repo_raw in zip(listed.repos, raw["repos"], strict=True):
        if repo.id == ref or repo.repo_url in wanted:
            return repo, {"repo": repo_raw}
    raise ClientError(f"no connected repository '{ref}' in this workspace", Exit.NOT_FOUND)


def show_repo(repo: RepoPublic) -> None:
    fields(
        [
            ("id", repo.id),
            ("url", repo.repo_url),
            ("name", repo.full_name),
            ("platform", repo.git_platform),
            ("branch", repo.default_branch),
            ("agent", repo.default_agent_type),
            ("autoMerge", repo.auto_merge),
            ("testCommand", repo.test_command),
            ("maxConcurrentTasks", repo.max_concurrent_tasks),
            ("reviewEnabled", repo.review_enabled),
            ("maxCostUsd", repo.max_cost_usd),
            ("created", when(repo.created_at)),
        ]
    )


@app.command("add")
@handled
def add(
    url: Annotated[str, typer.Argument(help="Git URL or local path")],
    settings: SettingsArgument = None,
    auto_merge: Annotated[bool | None, typer.Option("--auto-merge/--no-auto-merge")] = None,
    test_command: Annotated[str | None, typer.Option(help="The CI check of its PRs")] = None,
    agent: Annotated[str | None, typer.Option(help="Default agent of its tasks")] = None,
    as_json: JsonOption = False,
) -> None:
    """Connect a repository (admin)."""
    values = pairs(settings)
    flags = {"autoMerge": auto_merge, "testCommand": test_command, "defaultAgentType": agent}
    values.update({k: v for k, v in flags.items() if v is not None})
    request = body(RepoCreate, {"repoUrl": repo_argument(url), **values})
    with connect() as api:
        created, raw = api.send("POST", "/api/repos", RepoEnvelope, json=request)
    if as_json:
        print_json(raw)
    else:
        show_repo(created.repo)


@app.command("list")
@handled
def list_(as_json: JsonOption = False) -> None:
    """The workspace's repositories."""
    with connect() as api:
        listed, raw = api.get("/api/repos", ReposPublic)
    if as_json:
        print_json(raw)
        return
    table(
        ["ID", "URL", "BRANCH", "AGENT", "AUTO-MERGE"],
        [
            [
                r.id,
                r.repo_url,
                r.default_branch,
                r.default_agent_type,
                "yes" if r.auto_merge else "",
            ]
            for r in listed.repos
        ],
        empty="no repositories: connect one with `optio repo add <url>`",
    )


@app.command("show")
@handled
def show(
    ref: Annotated[str, typer.Argument(help="Id, URL or path")], as_json: JsonOption = False
) -> None:
    """One repository and its settings."""
    with connect() as api:
        repo, raw = find(api, ref)
    if as_json:
        print_json(raw)
    else:
        show_repo(repo)


@app.command("set")
@handled
def set_(
    ref: Annotated[str, typer.Argument(help="Id, URL or path")],
    settings: SettingsArgument = None,
    as_json: JsonOption = False,
) -> None:
    """Change settings (admin), e.g. `optio repo set /tmp/demo autoMerge=true`."""
    values = pairs(settings)
    if not values:
        raise ClientError("name at least one setting, e.g. autoMerge=true", Exit.USAGE)
    request = body(RepoUpdate, values)
    with connect() as api:
        repo, _ = find(api, ref)
        changed, raw = api.send("PATCH", f"/api/repos/{repo.id}", RepoEnvelope, json=request)
    if as_json:
        print_json(raw)
    else:
        done(f"repository {changed.repo.repo_url} updated")
        show_repo(changed.repo)
