"""HTTP shapes of the Slack endpoints (inventory §3.25)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from schemas.common import ApiModel


class SlackTest(ApiModel):
    # The incoming-webhook URL to try; the workspace's SLACK_WEBHOOK_URL secret when absent.
    webhook_url: SecretStr | None = Field(default=None, max_length=2000)
    channel: str | None = Field(default=None, max_length=200)
    repo_url: str | None = Field(default=None, max_length=2000)
