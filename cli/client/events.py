"""`optio events [-f]`: the workspace's live events (state changes, PRs, comments)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import httpx
import typer
from rich.text import Text

from cli.client.base import connect, handled
from cli.client.http import Api
from cli.client.output import STATE_STYLE, JsonOption, out, print_json_line
from cli.client.sse import Follow, parse_sse
from schemas.live import LiveFrame

# Without -f: the stream's catch-up (the last 20 state changes) arrives at once; the
# command prints it and ends when nothing more comes for this long.
QUIET_SECONDS = 1.0


@handled
def events(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing events as they happen")
    ] = False,
    count: Annotated[
        int | None, typer.Option("--count", "-n", help="Stop after this many events")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recent events of the workspace; -f follows them live, reconnecting without a gap."""
    printed = 0
    with connect() as api:
        frames: Iterable[LiveFrame]
        if follow:
            frames = Follow(api, "/api/events/stream").frames()
        else:
            frames = _recent(api)
        for frame in frames:
            if as_json:
                print_json_line(frame.model_dump(mode="json", by_alias=True, exclude_unset=True))
            else:
                out.print(describe(frame))
            printed += 1
            if count is not None and printed >= count:
                return


def _recent(api: Api) -> list[LiveFrame]:
    frames: list[LiveFrame] = []
    try:
        with api.stream("/api/events/stream", last_event_id=None, read_timeout=QUIET_SECONDS) as r:
            for event in parse_sse(r.iter_lines()):
                frames.append(LiveFrame.model_validate_json(event.data))
    except httpx.ReadTimeout:
        pass  # the catch-up is over
    return frames


def describe(frame: LiveFrame) -> Text:
    line = Text(f"{frame.timestamp or '':32.32} {frame.type:22} {frame.task_id or '':36} ")
    if frame.type == "task:state_changed":
        line.append(frame.from_state or "-", style=STATE_STYLE.get(frame.from_state or "", ""))
        line.append(" -> ")
        line.append(frame.to_state or "", style=STATE_STYLE.get(frame.to_state or "", ""))
        line.append(f" ({frame.trigger})")
    elif frame.content:
        line.append(frame.content.splitlines()[0][:120] if frame.content.strip() else "")
    return line
