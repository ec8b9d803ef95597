"""What commands print: rich tables for people, the API's JSON for scripts (--json)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer instead of a table")
]

out = Console(soft_wrap=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    # Piped into grep or a file: no terminal width to fit, so cut nothing.
    out = Console(soft_wrap=True, width=1000)
err = Console(stderr=True, soft_wrap=True)

STATE_STYLE = {
    "completed": "green",
    "pr_opened": "cyan",
    "running": "yellow",
    "provisioning": "yellow",
    "queued": "blue",
    "pending": "blue",
    "waiting_on_deps": "blue",
    "needs_attention": "magenta",
    "failed": "red",
    "cancelled": "dim",
}


def print_json(raw: Any) -> None:
    sys.stdout.write(json.dumps(raw, indent=2) + "\n")


def print_json_line(raw: Any) -> None:
    sys.stdout.write(json.dumps(raw, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def state(value: str | None) -> Text:
    return Text(value or "", style=STATE_STYLE.get(value or "", ""))


def cell(value: Any) -> Text:
    """Data as text, never as rich markup (a title may contain [brackets])."""
    if isinstance(value, Text):
        return value
    return Text("" if value is None else str(value))


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str) -> None:
    """Columns named ID are never cut or wrapped (an id is copied whole); others give way."""
    rows = list(rows)
    if not rows:
        err.print(Text(empty))
        return
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for index, name in enumerate(columns):
        if name == "ID":
            widest = max(len(str(row[index] or "")) for row in rows)
            grid.add_column(name, no_wrap=True, min_width=max(widest, 2))
        else:
            grid.add_column(name)
    for row in rows:
        grid.add_row(*[cell(value) for value in row])
    out.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A record as `name  value` lines, leaving out what is empty."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        if value is None or value == "":
            continue
        grid.add_row(name, cell(value))
    out.print(grid)


def done(message: str) -> None:
    """A one-line confirmation, on stderr so stdout stays for data."""
    err.print(Text(message))
