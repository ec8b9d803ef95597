"""Following a live stream (docs/api.md#live-streams) across dropped connections.

The client keeps the id of the last event it printed and reconnects with it as
`Last-Event-ID`: the server then sends everything after that id, so a drop loses no
line and repeats none. A task's stream ends a moment after the task ended; a reconnect
to a stream with nothing newer answers 204.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from cli.client.exits import ClientError, Exit
from cli.client.http import Api, unreachable
from schemas.live import LiveFrame

TERMINAL_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass
class SseEvent:
    id: str | None
    event: str | None
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events of a text/event-stream (the WHATWG rules this server's output needs)."""
    event_id: str | None = None
    event_type: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event_id, event_type, "\n".join(data))
            event_type, data = None, []
            continue
        if line.startswith(":"):
            continue  # a comment: the server's keep-alive ping
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
        elif field == "event":
            event_type = value


def task_ended(frame: LiveFrame) -> bool:
    return frame.type == "task:state_changed" and frame.to_state in TERMINAL_STATES


@dataclass
class Follow:
    """Frames of one stream, in order, once each, over as many connections as it takes."""

    api: Api
    path: str
    last_event_id: int | None = None
    # A frame after which the stream's normal end is the end (not a drop).
    is_last: Callable[[LiveFrame], bool] = lambda _: False
    # How long the server may stay unreachable before giving up.
    give_up_after: float = 60.0
    # Asked after a connection that closed normally with nothing new: False ends the
    # follow (an ended task whose last event is older than the server keeps).
    still_open: Callable[[], bool] = lambda: True
    reconnects: int = 0

    def frames(self) -> Iterator[LiveFrame]:
        finished = False
        failing_since: float | None = None
        while True:
            fresh = 0
            try:
                with self.api.stream(self.path, last_event_id=self.last_event_id) as response:
                    if response.status_code == 204:
                        return  # ended, and nothing newer than what we have
                    for event in parse_sse(response.iter_lines()):
                        frame = _frame(event)
                        if frame is None:
                            continue
                        if event.id and event.id.isdigit():
                            self.last_event_id = int(event.id)
                        fresh += 1
                        failing_since = None
                        yield frame
                        finished = finished or self.is_last(frame)
                if finished or (fresh == 0 and not self.still_open()):
                    return
                failing_since = None  # a clean end: the server is there
            except httpx.TransportError as exc:
                # Dropped mid-stream: resume after the last id. Dropped again and again
                # before any event: the server is as good as unreachable.
                if fresh == 0:
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > self.give_up_after:
                        raise unreachable(self.api.target, exc) from None
            except ClientError as exc:
                if exc.code != Exit.UNREACHABLE:
                    raise
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > self.give_up_after:
                    raise
            self.reconnects += 1
            time.sleep(min(0.2 * self.reconnects, 2.0) if failing_since else 0.1)


def _frame(event: SseEvent) -> LiveFrame | None:
    try:
        return LiveFrame.model_validate_json(event.data)
    except ValidationError:
        return None  # not an event of ours (a stray data line): nothing to print
