"""Forge webhooks: POST /api/webhooks/github and /api/webhooks/gitlab (public, verified).

A verified delivery becomes a `pr_event` signal to each affected task's workflow, which
then looks at its PR at once instead of at the next poll. Deliveries are recorded by id,
so a replay has no effect; an unverified one is refused with 401 and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from temporalio.service import RPCError

from api.deps import StateDep
from api.ticket_hooks import concerned_providers, issue_labels, start_syncs
from core.errors import InvalidInputError, UnauthorizedError
from core.settings import Settings
from core.states import TaskState
from integrations.forges.github import run_state
from schemas.webhooks import ForgeDeliveryAnswer
from schemas.workflow import PrEvent
from store.db import transaction
from store.models import ForgeDelivery, Repo, Task
from store.secrets import resolve_secret
from store.types import utcnow

router = APIRouter(tags=["System"])
MAX_BODY = 5 * 1024 * 1024
TASK_BRANCH = re.compile(r"^(?:refs/heads/)?optio/task-([0-9a-f-]{36})$")
SECRET_NAMES = {"github": "GITHUB_WEBHOOK_SECRET", "gitlab": "GITLAB_WEBHOOK_SECRET"}


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.removeprefix("sha256=").lower(), expected)


def _targets_github(event: str, payload: dict[str, Any]) -> tuple[set[int], set[str]]:
    """PR numbers and branch names a GitHub event is about."""
    numbers: set[int] = set()
    branches: set[str] = set()
    if isinstance(payload.get("number"), int):
        numbers.add(payload["number"])
    pr = payload.get("pull_request") or {}
    if isinstance(pr.get("number"), int):
        numbers.add(pr["number"])
    for key in ("check_run", "check_suite"):
        for item in (payload.get(key) or {}).get("pull_requests") or []:
            numbers.add(int(item["number"]))
    for branch in payload.get("branches") or []:
        branches.add(str(branch.get("name")))
    if isinstance(payload.get("ref"), str):
        branches.add(payload["ref"])
    return numbers, branches


def _targets_gitlab(payload: dict[str, Any]) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    branches: set[str] = set()
    attrs = payload.get("object_attributes") or {}
    kind = payload.get("object_kind")
    if kind == "merge_request" and isinstance(attrs.get("iid"), int):
        numbers.add(attrs["iid"])
        branches.add(str(attrs.get("source_branch")))
    mr = payload.get("merge_request") or {}
    if isinstance(mr.get("iid"), int):
        numbers.add(mr["iid"])
    if kind == "pipeline" and attrs.get("ref"):
        branches.add(str(attrs["ref"]))
    if kind == "push" and isinstance(payload.get("ref"), str):
        branches.add(payload["ref"])
    return numbers, branches


def _head_sha(platform: str, payload: dict[str, Any]) -> str | None:
    """The commit a delivery is about, so the watch refetches only what it touches."""
    if platform == "github":
        for key in ("check_run", "check_suite", "workflow_run", "workflow_job"):
            if isinstance((payload.get(key) or {}).get("head_sha"), str):
                return str(payload[key]["head_sha"])
        head = ((payload.get("pull_request") or {}).get("head") or {}).get("sha")
        found = head or payload.get("after") or payload.get("sha")
    else:
        attrs = payload.get("object_attributes") or {}
        found = (
            (attrs.get("last_commit") or {}).get("id")
            if payload.get("object_kind") == "merge_request"
            else attrs.get("sha")
            if payload.get("object_kind") == "pipeline"
            else payload.get("after") or payload.get("sha") or payload.get("checkout_sha")
        )
    if isinstance(found, str) and found.strip("0"):
        return found
    return None  # none, or a deleted branch (`after` is all zeros)


def pr_event(platform: str, kind: str, delivery: str | None, payload: dict[str, Any]) -> PrEvent:
    """The `pr_event` signal for a delivery: what it is about and, on GitHub, what it says
    happened (the action; a check run's id, name, app and state; a check suite's app), so
    the watch can take it in without asking the forge. GitLab's deliveries are refetched
    (fields left None)."""
    event = PrEvent(kind=kind, delivery_id=delivery, head_sha=_head_sha(platform, payload))
    if platform != "github":
        return event
    if isinstance(payload.get("action"), str):
        event.action = payload["action"]
    run = payload.get("check_run") if kind == "check_run" else None
    if isinstance(run, dict) and run.get("id") is not None and isinstance(run.get("name"), str):
        event.check_id = str(run["id"])
        event.check_name = run["name"]
        event.check_app = str((run.get("app") or {}).get("slug") or "")
        event.check_state = run_state(run)
    suite = payload.get("check_suite") if kind == "check_suite" else None
    if isinstance(suite, dict):
        event.check_app = str((suite.get("app") or {}).get("slug") or "")
    return event


async def _secret(session: Any, *, settings: Settings, repo: Repo) -> str | None:
    name = SECRET_NAMES[repo.git_platform]
    value = await resolve_secret(
        session,
        workspace_id=repo.workspace_id,
        name=name,
        repo_url=repo.repo_url,
        settings=settings,
    )
    if value:
        return value
    fallback = (
        settings.github_webhook_secret
        if repo.git_platform == "github"
        else settings.gitlab_webhook_secret
    )
    return fallback.get_secret_value() if fallback is not None else None


async def _receive(
    request: Request, state: StateDep, *, platform: str, delivery_headers: tuple[str, ...]
) -> dict[str, Any]:
    header = "x-hub-signature-256" if platform == "github" else "x-gitlab-token"
    if not request.headers.get(header):
        # Unsigned: refused before the body is even read, like a wrong signature.
        raise UnauthorizedError(f"Missing webhook signature ({header})")
    delivery_id = _delivery_id(request, *delivery_headers)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInputError("The webhook body is too large")
    try:
        payload = json.loads(raw)
        # GitLab's MR, push and note events carry a `repository` without its path: the
        # project names it. GitHub names it in `repository.full_name`.
        repository = (
            payload.get("project") if platform == "gitlab" else payload.get("repository")
        ) or {}
        full_name = str(repository.get("full_name") or repository.get("path_with_namespace"))
    except (ValueError, AttributeError) as exc:
        raise InvalidInputError("The webhook body is not a JSON object") from exc
    settings = state.settings
    kind = request.headers.get("x-github-event") or request.headers.get("x-gitlab-event") or ""
    labels = issue_labels(platform, kind, payload)
    ticket_providers: list[str] = []
    async with transaction(state.sessions) as session:
        candidates = (
            await session.execute(
                select(Repo).where(
                    Repo.git_platform == platform,
                    or_(Repo.full_name == full_name, Repo.repo_url.like(f"%/{full_name}%")),
                )
            )
        ).scalars()
        verified = []
        for repo in candidates:
            secret = await _secret(session, settings=settings, repo=repo)
            if secret and _verify(platform, request, raw, secret):
                verified.append(repo)
        if not verified:
            raise UnauthorizedError("Invalid webhook signature")
        try:
            async with session.begin_nested():
                session.add(ForgeDelivery(id=f"{platform}:{delivery_id}"))
        except IntegrityError:
            return {"accepted": False, "duplicate": True}
        if labels is not None:
            ticket_providers = await concerned_providers(
                session, platform=platform, repos=verified, labels=labels
            )
        if platform == "github":
            numbers, branches = _targets_github(request.headers.get("x-github-event", ""), payload)
        else:
            numbers, branches = _targets_gitlab(payload)
        ids = {m.group(1) for b in branches if (m := TASK_BRANCH.match(b))}
        tasks: list[Task] = []
        for repo in verified:
            repo.webhook_seen_at = utcnow()
            if not numbers and not ids:
                continue
            conditions = []
            if numbers:
                conditions.append(Task.pr_number.in_(numbers))
            if ids:
                conditions.append(Task.id.in_(ids))
            stmt = select(Task).where(
                Task.workspace_id == repo.workspace_id,
                Task.repo_url == repo.repo_url,
                Task.state == TaskState.PR_OPENED,
                or_(*conditions),
            )
            tasks.extend((await session.execute(stmt)).scalars())
    client = await state.temporal_client()
    syncs = await start_syncs(
        client,
        provider_ids=ticket_providers,
        delivery_id=f"{platform}-{delivery_id}",
        task_queue=settings.task_queue,
    )
    event = pr_event(platform, kind, delivery_id, payload)
    for task in tasks:
        try:
            await client.get_workflow_handle(f"task-{task.id}").signal("pr_event", event)
        except RPCError:
            pass  # the workflow moved on; polling covers anything missed
    return {"accepted": True, "tasks": len(tasks), "ticketSyncs": syncs}


def _verify(platform: str, request: Request, raw: bytes, secret: str) -> bool:
    if platform == "github":
        return github_signature_ok(secret, raw, request.headers.get("x-hub-signature-256"))
    return hmac.compare_digest(request.headers.get("x-gitlab-token", ""), secret)


@router.post("/api/webhooks/github", status_code=202, response_model=ForgeDeliveryAnswer)
async def github(request: Request, state: StateDep) -> dict[str, Any]:
    stamp = request.headers.get("x-github-delivery-timestamp")
    if stamp and stamp.isdigit():
        age = time.time() - int(stamp) / (1000 if len(stamp) > 11 else 1)
        if age > state.settings.webhook_max_age_seconds:
            raise UnauthorizedError("Stale webhook delivery")
    return await _receive(
        request, state, platform="github", delivery_headers=("x-github-delivery",)
    )


@router.post("/api/webhooks/gitlab", status_code=202, response_model=ForgeDeliveryAnswer)
async def gitlab(request: Request, state: StateDep) -> dict[str, Any]:
    # Not X-Gitlab-Webhook-UUID: it names the webhook, the same for all its deliveries.
    headers = ("x-gitlab-event-uuid", "idempotency-key")
    return await _receive(request, state, platform="gitlab", delivery_headers=headers)


def _delivery_id(request: Request, *headers: str) -> str:
    """Without its id a delivery could not be told from a replay of itself: refused."""
    for header in headers:
        value = request.headers.get(header, "").strip()
        if value:
            if len(value) > 150:
                raise InvalidInputError(f"{header} is longer than 150 characters")
            return value
    raise InvalidInputError(f"Missing delivery id ({' or '.join(headers)})")
