"""Block Kit messages for Slack incoming webhooks (inventory §3.25)."""

from __future__ import annotations

from typing import Any

ERROR_SNIPPET = 500

_TITLES = {
    "task.completed": ":white_check_mark: Task completed",
    "task.failed": ":x: Task failed",
    "task.needs_attention": ":warning: Task needs attention",
    "task.pr_opened": ":arrow_heading_up: Pull request opened",
    "workspace.budget_exceeded": ":money_with_wings: Monthly budget reached",
    "test": ":wave: Test notification from Optio",
}


def _field(label: str, value: object) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def slack_message(event: str, data: dict[str, Any], *, public_url: str) -> dict[str, Any]:
    """The message for one event; task messages carry buttons back to Optio."""
    title = _TITLES.get(event, event)
    text = f"{title}: {data.get('taskTitle') or data.get('message') or ''}".rstrip(": ")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    task_id = data.get("taskId")
    if not task_id:
        message = data.get("message") or "Optio can reach this channel."
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": str(message)}})
        return {"text": text, "blocks": blocks}
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{data.get('taskTitle', '')}*"}}
    )
    fields = [
        _field("Repository", data.get("repoUrl") or "-"),
        _field("State", data.get("toState") or "-"),
        _field("Cost", f"${data['costUsd']}" if data.get("costUsd") else "-"),
    ]
    if data.get("prUrl"):
        fields.append(_field("Pull request", f"<{data['prUrl']}|{data['prUrl']}>"))
    blocks.append({"type": "section", "fields": fields})
    if data.get("errorMessage"):
        snippet = str(data["errorMessage"])[:ERROR_SNIPPET]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{snippet}```"}})
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": "view_logs",
            "text": {"type": "plain_text", "text": "View logs"},
            "url": f"{public_url}/tasks/{task_id}",
            "value": str(task_id),
        }
    ]
    if data.get("toState") in ("failed", "needs_attention"):
        buttons.append(
            {
                "type": "button",
                "action_id": "retry_task",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Retry"},
                "value": str(task_id),
            }
        )
    if data.get("toState") in ("needs_attention", "pr_opened"):
        buttons.append(
            {
                "type": "button",
                "action_id": "cancel_task",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Cancel"},
                "value": str(task_id),
            }
        )
    blocks.append({"type": "actions", "elements": buttons})
    return {"text": text, "blocks": blocks}
