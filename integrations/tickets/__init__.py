"""Ticket providers: one client per source over a shared, rate-limit-aware HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from integrations.forges.base import RepoRef
from integrations.forges.github import default_api_url as github_api
from integrations.forges.gitlab import default_api_url as gitlab_api
from integrations.tickets.base import (
    DEFAULT_LABEL,
    DEFAULT_MAX_PAGES,
    Pause,
    Ticket,
    TicketAuthError,
    TicketClient,
    TicketComment,
    TicketError,
    TicketHttp,
    TicketRateLimited,
)
from integrations.tickets.forges import GitHubTickets, GitLabTickets
from integrations.tickets.jira import JiraTickets
from integrations.tickets.linear import LinearTickets
from integrations.tickets.notion import NOTION_VERSION, NotionTickets

__all__ = [
    "ClientOptions",
    "Ticket",
    "TicketAuthError",
    "TicketClient",
    "TicketComment",
    "TicketError",
    "TicketRateLimited",
    "build_client",
    "forge_api_url",
    "forge_client",
]


@dataclass
class ClientOptions:
    """Where the fixed-URL providers live and how long a rate limit may be waited out."""

    max_wait: float = 60.0
    github_api_url: str = "https://api.github.com"
    linear_api_url: str = "https://api.linear.app/graphql"
    notion_api_url: str = "https://api.notion.com"
    # GitHub without owner/repo: the workspace's GitHub repositories (`owner/name`).
    github_repos: list[str] = field(default_factory=list)
    pause: Pause | None = None
    transport: httpx.AsyncBaseTransport | None = None


def build_client(
    source: str, config: dict[str, Any], secrets: dict[str, str], options: ClientOptions
) -> GitHubTickets | GitLabTickets | JiraTickets | LinearTickets | NotionTickets:
    """A client for one provider; `config` was validated when the provider was saved."""
    label = str(config.get("label") or DEFAULT_LABEL)
    pages = int(config.get("maxPages") or DEFAULT_MAX_PAGES)
    common: dict[str, Any] = {
        "max_wait": options.max_wait,
        "pause": options.pause,
        "transport": options.transport,
    }
    if source == "github":
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if secrets.get("token"):
            headers["Authorization"] = f"Bearer {secrets['token']}"
        http = TicketHttp(
            base_url=config.get("apiUrl") or options.github_api_url, headers=headers, **common
        )
        repos = (
            [f"{config['owner']}/{config['repo']}"]
            if config.get("owner") and config.get("repo")
            else options.github_repos
        )
        return GitHubTickets(http=http, repos=repos, label=label, max_pages=pages)
    if source == "gitlab":
        headers = {"PRIVATE-TOKEN": secrets["token"]} if secrets.get("token") else {}
        base = str(config["host"]).rstrip("/")
        http = TicketHttp(base_url=f"{base}/api/v4", headers=headers, **common)
        return GitLabTickets(
            http=http, projects=[str(config["projectPath"])], label=label, max_pages=pages
        )
    if source == "jira":
        http = TicketHttp(
            base_url=str(config["baseUrl"]),
            headers={"Accept": "application/json"},
            auth=(str(config["email"]), secrets.get("apiToken", "")),
            **common,
        )
        return JiraTickets(
            http=http,
            base_url=str(config["baseUrl"]),
            label=label,
            project_key=config.get("projectKey"),
            max_pages=pages,
            done_status=str(config.get("doneStatusName") or "Done"),
        )
    if source == "linear":
        http = TicketHttp(
            base_url=options.linear_api_url,
            headers={
                "Authorization": secrets.get("apiKey", ""),
                "Content-Type": "application/json",
            },
            **common,
        )
        return LinearTickets(
            http=http,
            endpoint=options.linear_api_url,
            label=label,
            team_id=config.get("teamId"),
            project_id=config.get("projectId"),
            max_pages=pages,
        )
    if source == "notion":
        http = TicketHttp(
            base_url=options.notion_api_url,
            headers={
                "Authorization": f"Bearer {secrets.get('apiKey', '')}",
                "Notion-Version": NOTION_VERSION,
            },
            **common,
        )
        return NotionTickets(
            http=http,
            database_id=str(config["databaseId"]),
            label=label,
            label_property=str(config.get("labelProperty") or "Tags"),
            status_property=str(config.get("statusProperty") or "Status"),
            done_value=str(config.get("doneValue") or "Done"),
            title_property=config.get("titleProperty"),
            max_pages=pages,
        )
    raise TicketError(f"Unknown ticket source {source!r}")


def forge_client(
    platform: str, *, api_url: str, token: str | None, options: ClientOptions
) -> GitHubTickets | GitLabTickets:
    """Issues of a connected GitHub/GitLab repository, with the repository's own API URL
    and forge credential (GET /api/issues, POST /api/issues/assign)."""
    common: dict[str, Any] = {
        "max_wait": options.max_wait,
        "pause": options.pause,
        "transport": options.transport,
    }
    if platform == "gitlab":
        headers = {"PRIVATE-TOKEN": token} if token else {}
        http = TicketHttp(base_url=api_url, headers=headers, **common)
        return GitLabTickets(http=http, projects=[], label=None, max_pages=DEFAULT_MAX_PAGES)
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = TicketHttp(base_url=api_url, headers=headers, **common)
    return GitHubTickets(http=http, repos=[], label=None, max_pages=DEFAULT_MAX_PAGES)


def forge_api_url(platform: str, repo_url: str, configured: str | None) -> str:
    """The REST base URL of a connected repository's forge."""
    if configured:
        return configured
    ref = RepoRef.parse(repo_url)
    return gitlab_api(ref) if platform == "gitlab" else github_api(ref)
