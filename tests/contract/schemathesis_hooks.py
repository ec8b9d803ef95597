"""Schemathesis hooks for the contract run: whatever would reach the network stays local.

A generated URL (a repository, a webhook, a ticket provider, Slack) is rewritten to
the discard port on loopback before the request is sent, so a test delivery, a clone
or a forge call fails fast on this machine instead of going out. Values never become
commands: the API treats them as data (docs/api.md), and the sandbox is not started
here (no worker runs).
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

LOCAL_URL = "http://127.0.0.1:9/optio-fuzz"
SCP_LIKE = re.compile(r"^[\w.+-]+@[\w.-]+:")


def keep_local(value: Any) -> Any:
    if isinstance(value, str):
        return LOCAL_URL if "://" in value or SCP_LIKE.match(value) else value
    if isinstance(value, dict):
        return {key: keep_local(item) for key, item in value.items()}
    if isinstance(value, list):
        return [keep_local(item) for item in value]
    return value


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    for part in ("body", "query", "path_parameters", "headers"):
        value = getattr(case, part, None)
        if isinstance(value, dict | list | str):
            setattr(case, part, keep_local(value))
