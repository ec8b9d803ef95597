"""The client command groups, added to the `optio` app next to the server commands."""

from __future__ import annotations

import typer

from cli.client import account, blueprints, events, repos, secrets, tasks


def register_client(app: typer.Typer) -> None:
    app.command("login")(account.login)
    app.add_typer(account.context_app, name="context")
    app.add_typer(account.workspace_app, name="workspace")
    app.add_typer(tasks.app, name="task")
    app.add_typer(repos.app, name="repo")
    app.add_typer(blueprints.app, name="blueprint")
    app.add_typer(secrets.app, name="secret")
    app.command("events")(events.events)
