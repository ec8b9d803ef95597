"""Pure rules of ticket sync: which repository, which agent, what prompt, which triggers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Agents a ticket can ask for by label (§3.18); otherwise the repository's default.
LABEL_AGENTS = {"codex": "codex", "copilot": "copilot"}
MARKERS = ("[optio:", "<!-- optio:")
MAX_PROMPT_CHARS = 100_000


class CommentLike(Protocol):
    @property
    def author(self) -> str: ...
    @property
    def body(self) -> str: ...


def _path(url: str) -> str:
    return url.rstrip("/").removesuffix(".git").lower()


def resolve_repo(hint: str | None, repos: Sequence[str], fallback: str | None) -> str | None:
    """The ticket's repository among the workspace's: exact URL, then `owner/name` suffix,
    then the provider's `repoUrl`; None when nothing fits."""
    if hint:
        wanted = _path(hint)
        for repo in repos:
            if _path(repo) == wanted:
                return repo
        for repo in repos:
            if _path(repo).endswith("/" + wanted.lstrip("/")):
                return repo
    return fallback or None


def agent_for(labels: Iterable[str], default: str) -> str:
    for label in labels:
        if label.lower() in LABEL_AGENTS:
            return LABEL_AGENTS[label.lower()]
    return default


def build_prompt(title: str, body: str, comments: Sequence[CommentLike]) -> str:
    """Title, body and the people's comments (Optio's own are left out)."""
    parts = [title.strip()]
    if body.strip():
        parts.append(body.strip())
    said = [c for c in comments if c.body.strip() and not any(m in c.body for m in MARKERS)]
    if said:
        lines = [f"- {c.author or 'someone'}: {c.body.strip()}" for c in said]
        parts.append("## Comments\n" + "\n".join(lines))
    return "\n\n".join(parts)[:MAX_PROMPT_CHARS]


def started_comment(*, task_id: str, agent: str) -> str:
    return f"🤖 **Optio** is working on this issue.\n\nTask ID: `{task_id}`\nAgent: {agent}"


def completed_comment(*, task_id: str, pr_url: str | None) -> str:
    where = f" Changes merged in {pr_url}." if pr_url else ""
    return f"✅ **Optio** completed this issue.{where}\n\nTask ID: `{task_id}`"


@dataclass(frozen=True)
class TicketFacts:
    source: str
    external_id: str
    title: str
    body: str
    url: str
    labels: list[str]


def trigger_matches(config: dict[str, Any], ticket: TicketFacts) -> bool:
    """A `ticket` trigger fires for its source (or any, unset) and, when it lists labels,
    for a ticket carrying one of them."""
    source = config.get("source")
    if source and source not in ("*", "any", ticket.source):
        return False
    wanted = config.get("labels")
    if wanted:
        have = {label.lower() for label in ticket.labels}
        return any(str(label).lower() in have for label in wanted)
    return True


def trigger_params(ticket: TicketFacts) -> dict[str, str]:
    return {
        "ticketSource": ticket.source,
        "ticketExternalId": ticket.external_id,
        "ticketTitle": ticket.title,
        "ticketBody": ticket.body,
        "ticketUrl": ticket.url,
        "ticketLabels": ",".join(ticket.labels),
    }


def repo_path(url: str) -> str | None:
    """`owner/name` (or `group/sub/name`) of a forge URL, None for a local path."""
    if url.startswith("git@"):
        rest = url[4:].partition(":")[2]
    elif "://" in url and not url.startswith("file://"):
        rest = url.split("://", 1)[1].partition("/")[2]
    else:
        return None
    path = rest.strip("/").removesuffix(".git")
    return path if "/" in path else None
