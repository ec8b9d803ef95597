"""HTTP shapes of the Slack endpoints (inventory §3.25)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from schemas.common import ApiModel, ApiOut


class SlackTest(ApiModel):
    # The incoming-webhook URL to try; the workspace's SLACK_WEBHOOK_URL secret when absent.
    webhook_url: SecretStr | None = Field(default=None, max_length=2000)
    channel: str | None = Field(default=None, max_length=200)
    repo_url: str | None = Field(default=None, max_length=2000)


class SlackSent(ApiOut):
    ok: Literal[True]
    message: str


class SlackRefused(ApiOut):
    ok: Literal[False]
    error: str


SlackTestResult = SlackSent | SlackRefused


class SlackStatusPublic(ApiOut):
    global_webhook_configured: bool


class SlackActionAnswer(ApiOut):
    """What Slack shows the person who pressed the button."""

    ok: bool
    text: str
