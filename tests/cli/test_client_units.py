"""The client's pure parts: the SSE reader and the config file's permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli.client import config
from cli.client.exits import ClientError, Exit
from cli.client.sse import parse_sse


def test_sse_events_comments_ids_and_multiline_data() -> None:
    lines = [
        ": ping",
        "",
        "event: task:log",
        "id: 7",
        'data: {"a":',
        "data: 1}",
        "",
        "retry: 1000",
        "data:no-space",
        "",
        "id: 9",  # an event without data is no event
        "",
    ]
    events = list(parse_sse(lines))
    assert [(e.id, e.event, e.data) for e in events] == [
        ("7", "task:log", '{"a":\n1}'),
        ("7", None, "no-space"),
    ]


def test_config_is_0600_whatever_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("OPTIO_URL", "OPTIO_TOKEN", "OPTIO_CONTEXT", "OPTIO_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    old = os.umask(0)
    try:
        entry = config.ContextEntry(url="http://127.0.0.1:1", token="optio_pat_x")
        path = config.save(config.ClientConfig(current="a", contexts={"a": entry}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no partial file left
    target = config.resolve()
    assert (target.url, target.token, target.context) == ("http://127.0.0.1:1", "optio_pat_x", "a")
    monkeypatch.setenv("OPTIO_TOKEN", "from-env")
    assert config.resolve().token == "from-env"
    with pytest.raises(ClientError) as unknown:
        config.resolve("nope")
    assert unknown.value.code == Exit.USAGE
