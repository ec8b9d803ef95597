"""HTTP shapes of the setup wizard (inventory §3.24): which credentials exist, never values."""

from __future__ import annotations

from typing import Literal

from schemas.common import ApiOut


class SetupStep(ApiOut):
    done: bool
    label: str


class SetupStatusPublic(ApiOut):
    is_set_up: bool
    # As stored: the ISO 8601 moment setup was marked complete, or null.
    completed_at: str | None
    # `gitToken`, `anyAgentKey` and one per agent (`claude-code`, `codex`...).
    steps: dict[str, SetupStep]


class SetupCompleted(ApiOut):
    ok: Literal[True]
    completed_at: str
