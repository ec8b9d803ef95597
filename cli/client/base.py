"""What every client command shares: the connection and one-line error reports."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.text import Text

from cli.client.config import resolve
from cli.client.exits import ClientError, Exit
from cli.client.http import Api
from cli.client.output import err

P = ParamSpec("P")
R = TypeVar("R")


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Report a ClientError as `optio: <message>` and exit with its code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ClientError as exc:
            err.print(Text(f"optio: {exc.message}"))
            raise typer.Exit(int(exc.code)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return run


def connect() -> Api:
    return Api(resolve())


def read_text(value: str | None, *, what: str) -> str:
    """A value from the argument, or from stdin when it is `-` or missing on a pipe."""
    if value is not None and value != "-":
        return value
    if value == "-" or not sys.stdin.isatty():
        text = sys.stdin.read()
        if text.strip():
            return text.rstrip("\n")
    raise ClientError(f"give the {what} as an argument, or on stdin with '-'", Exit.USAGE)


def pairs(items: list[str] | None) -> dict[str, Any]:
    """`name=value` arguments; a value that is JSON (true, 5, null, [..]) is taken as such."""
    values: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ClientError(f"'{item}' is not name=value (e.g. autoMerge=true)", Exit.USAGE)
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    return values


def body(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """A request body checked against the API's own request model before it is sent."""
    try:
        checked = model.model_validate(values)
    except ValidationError as exc:
        lines = [f"invalid {model.__name__}:"]
        for problem in exc.errors():
            field = ".".join(str(p) for p in problem["loc"]) or "body"
            lines.append(f"  {field}: {problem['msg']}")
        raise ClientError("\n".join(lines), Exit.USAGE) from None
    return checked.model_dump(mode="json", by_alias=True, exclude_unset=True)
