"""Response envelopes of the routes the `optio` client reads, built from the Public models.

The routes answer `{"task": TaskPublic}`, `{"repos": [RepoPublic]}` and so on; these are
those wrappers, so the client parses answers into the same models the API serialises
(issue 18). A route that declares one of them as its `response_model` can import it
from here. (The contract work of issue 18 declares the same envelopes next to their
Public models, e.g. schemas/task_views.py; once it lands these become its aliases.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from schemas.blueprints import BlueprintPublic, StandaloneRunPublic, TriggerPublic
from schemas.common import ApiOut
from schemas.identity import SecretPublic, WorkspacePublic
from schemas.repos import RepoPublic
from schemas.tasks import TaskEventPublic, TaskLogPublic, TaskPublic


class ErrorEnvelope(ApiOut):
    """Every 4xx/5xx answer (api/errors.py)."""

    error: str
    details: Any = None


class TaskEnvelope(ApiOut):
    task: TaskPublic


class TaskDetail(ApiOut):
    """GET /api/tasks/:id of a repo task."""

    task: TaskPublic
    pending_reason: str | None = None
    pipeline_progress: dict[str, Any] | None = None
    stall_info: dict[str, Any] | None = None


class TaskList(ApiOut):
    tasks: list[TaskPublic]
    limit: int
    offset: int


class TaskEventList(ApiOut):
    events: list[TaskEventPublic]


class TaskLogList(ApiOut):
    logs: list[TaskLogPublic]


class MergeResult(ApiOut):
    merged: bool
    task: TaskPublic


class TaskMessagePublic(ApiOut):
    id: str
    task_id: str
    user_id: str | None
    content: str
    mode: str
    created_at: datetime
    delivered_at: datetime | None
    acked_at: datetime | None = None
    delivery_error: str | None = None


class TaskMessageEnvelope(ApiOut):
    message: TaskMessagePublic


class RepoEnvelope(ApiOut):
    repo: RepoPublic


class RepoList(ApiOut):
    repos: list[RepoPublic]


class BlueprintList(ApiOut):
    """GET /api/tasks?type=repo-blueprint."""

    tasks: list[BlueprintPublic]
    limit: int
    offset: int


class RunStarted(ApiOut):
    """POST /api/tasks/:id/runs: a blueprint makes a repo task, a standalone task a run."""

    run_id: str
    type: str
    task: TaskPublic | None = None
    run: StandaloneRunPublic | None = None


class TriggerList(ApiOut):
    triggers: list[TriggerPublic]


class TriggerEnvelope(ApiOut):
    trigger: TriggerPublic


class SecretList(ApiOut):
    secrets: list[SecretPublic]


class SecretSaved(ApiOut):
    secret: SecretPublic
    name: str
    scope: str


class WorkspaceMembership(WorkspacePublic):
    role: str


class WorkspaceList(ApiOut):
    workspaces: list[WorkspaceMembership]
    active_workspace_id: str


class MeUser(ApiOut):
    id: str
    provider: str | None = None
    email: str | None = None
    display_name: str | None = None
    avatar_url: str | None = None
    workspace_id: str
    workspace_role: str


class Me(ApiOut):
    """GET /api/auth/me."""

    user: MeUser
    auth_disabled: bool = False


class LiveFrame(ApiOut):
    """One event of a live stream (docs/api.md#live-streams); the rest depends on `type`."""

    model_config = ConfigDict(extra="allow")

    type: str
    event_id: int | None = None
    catch_up: bool = False
    task_id: str | None = None
    content: str | None = None
    stream: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    trigger: str | None = None
    timestamp: str | None = None
