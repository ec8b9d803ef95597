"""`optio secret ...`: encrypted values agents get as environment variables.

A value is read from stdin or a hidden prompt, never from the command line, where it
would land in the shell's history and in every process listing.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.client.base import body, connect, handled
from cli.client.exits import ClientError, Exit
from cli.client.output import JsonOption, done, print_json, table, when
from schemas.identity import SecretCreate, SecretEnvelope, SecretsPublic

app = typer.Typer(
    help="Encrypted secrets (API keys of agents, forge tokens).", no_args_is_help=True
)
ScopeOption = Annotated[str | None, typer.Option(help="Scope, e.g. a repository URL")]


def read_value(name: str) -> str:
    if not sys.stdin.isatty():
        value = sys.stdin.read().rstrip("\n")
    else:
        value = typer.prompt(f"Value of {name}", hide_input=True, confirmation_prompt=True)
    if not value:
        raise ClientError(f"no value for {name}: pipe it in or type it at the prompt", Exit.USAGE)
    return value


@app.command("set")
@handled
def set_(
    name: Annotated[str, typer.Argument(help="e.g. ANTHROPIC_API_KEY")],
    scope: ScopeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a secret; the value comes from stdin or a hidden prompt."""
    value = read_value(name)
    values = {"name": name, "value": value, **({"scope": scope} if scope else {})}
    request = body(SecretCreate, values)
    request["value"] = value  # the model masks it when dumped
    with connect() as api:
        saved, raw = api.send("POST", "/api/secrets", SecretEnvelope, json=request)
    if as_json:
        print_json(raw)
    else:
        done(f"secret {saved.name} saved (scope {saved.scope})")


@app.command("list")
@handled
def list_(scope: ScopeOption = None, as_json: JsonOption = False) -> None:
    """Names and scopes of the secrets (values are never shown)."""
    with connect() as api:
        found, raw = api.get("/api/secrets", SecretsPublic, scope=scope)
    if as_json:
        print_json(raw)
        return
    table(
        ["NAME", "SCOPE", "UPDATED"],
        [[s.name, s.scope, when(s.updated_at)] for s in found.secrets],
        empty="no secrets",
    )


@app.command("rm")
@handled
def remove(name: str, scope: ScopeOption = None) -> None:
    """Delete a secret."""
    with connect() as api:
        api.call("DELETE", f"/api/secrets/{name}", params={"scope": scope})
    done(f"secret {name} removed")
