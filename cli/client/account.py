"""`optio login`, `optio context ...` and `optio workspace ...`: which server, as whom, where."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli.client.base import connect, handled
from cli.client.config import (
    DEFAULT_URL,
    ContextEntry,
    Target,
    config_path,
    load,
    resolve,
    save,
)
from cli.client.exits import ClientError, Exit
from cli.client.http import Api
from cli.client.output import JsonOption, done, print_json, table
from schemas.identity import MePublic, WorkspacesPublic

context_app = typer.Typer(
    help="Saved servers (contexts) and the current one.", no_args_is_help=True
)
workspace_app = typer.Typer(
    help="Workspaces you belong to; which one commands act in.", no_args_is_help=True
)


def _context_names() -> list[str]:
    try:
        return sorted(load().contexts)
    except ClientError:
        return []


@handled
def login(
    url: Annotated[str, typer.Argument(help="The API's URL")] = DEFAULT_URL,
    context: Annotated[
        str, typer.Option("--context", "-c", help="Save under this name")
    ] = "default",
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin")
    ] = False,
) -> None:
    """Check a token against a server and save both as a context (the current one).

    The token comes from stdin (--token-stdin), OPTIO_TOKEN, or a hidden prompt.
    """
    if token_stdin:
        token = sys.stdin.read().strip()
    else:
        token = os.environ.get("OPTIO_TOKEN") or typer.prompt("API token", hide_input=True)
    if not token:
        raise ClientError("no token given", Exit.USAGE)
    url = url.rstrip("/")
    with Api(Target(url=url, token=token, workspace=None, context=context)) as api:
        me, _ = api.get("/api/auth/me", MePublic)
    config = load()
    config.contexts[context] = ContextEntry(url=url, token=token)
    config.current = context
    path = save(config)
    who = me.user.email or me.user.display_name or me.user.id
    done(f"logged in to {url} as {who} ({me.user.workspace_role}); context '{context}' in {path}")


@context_app.command("list")
@handled
def context_list(as_json: JsonOption = False) -> None:
    """Saved contexts (tokens are not shown)."""
    config = load()
    rows = [
        {"name": name, "url": c.url, "workspace": c.workspace, "current": name == config.current}
        for name, c in sorted(config.contexts.items())
    ]
    if as_json:
        print_json({"contexts": rows, "current": config.current, "file": str(config_path())})
        return
    table(
        ["", "NAME", "URL", "WORKSPACE"],
        [["*" if r["current"] else "", r["name"], r["url"], r["workspace"]] for r in rows],
        empty="no contexts: run `optio login`",
    )


@context_app.command("use")
@handled
def context_use(
    name: Annotated[str, typer.Argument(autocompletion=_context_names)],
) -> None:
    """Make a saved context the current one."""
    config = load()
    if name not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise ClientError(f"no context named '{name}' (known: {known})", Exit.NOT_FOUND)
    config.current = name
    save(config)
    done(f"current context: {name} ({config.contexts[name].url})")


@workspace_app.command("list")
@handled
def workspace_list(as_json: JsonOption = False) -> None:
    """Your workspaces; * marks the one commands act in."""
    with connect() as api:
        found, raw = api.get("/api/workspaces", WorkspacesPublic)
    if as_json:
        print_json(raw)
        return
    table(
        ["", "ID", "NAME", "SLUG", "ROLE"],
        [
            ["*" if w.id == found.active_workspace_id else "", w.id, w.name, w.slug, w.role]
            for w in found.workspaces
        ],
        empty="no workspaces",
    )


@workspace_app.command("use")
@handled
def workspace_use(ref: Annotated[str, typer.Argument(help="Id, slug or name")]) -> None:
    """Act in this workspace from now on (saved in the current context)."""
    target = resolve()
    config = load()
    if target.context is None or target.context not in config.contexts:
        raise ClientError(
            "no saved context to keep it in: run `optio login` first, or set OPTIO_WORKSPACE",
            Exit.USAGE,
        )
    with connect() as api:
        found, _ = api.get("/api/workspaces", WorkspacesPublic)
    match = [w for w in found.workspaces if ref in (w.id, w.slug, w.name)]
    if len(match) != 1:
        names = ", ".join(w.slug for w in found.workspaces)
        raise ClientError(f"no single workspace '{ref}' among yours ({names})", Exit.NOT_FOUND)
    config.contexts[target.context].workspace = match[0].id
    save(config)
    done(f"workspace {match[0].name} ({match[0].id}) in context '{target.context}'")
