"""One event of a live stream: the `data:` of a server-sent event, or a WebSocket frame.

docs/api.md#live-streams lists the types; what else a frame carries depends on `type`
(a log entry's `content` and `stream`, a state change's `fromState` and `toState`...).
"""

from __future__ import annotations

from pydantic import ConfigDict

from schemas.common import ApiOut


class LiveFrame(ApiOut):
    model_config = ConfigDict(extra="allow")

    type: str
    event_id: int | None = None
    # Set on the events replayed from the database before the live ones.
    catch_up: bool = False
    task_id: str | None = None
    content: str | None = None
    stream: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    trigger: str | None = None
    timestamp: str | None = None
