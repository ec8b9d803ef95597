"""POST /api/internal/runs/<runId>/push-credential: the runner's credential to push over HTTPS.

The runner asks for it after the agent has exited, so the agent's environment never holds
the forge token; the answer is never cached or logged, and only a live run may ask.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import StateDep, bearer_token
from core.errors import NotFoundError, UnauthorizedError
from store.forge_credentials import forge_token
from store.models import Task
from store.runs import authenticate_run
from store.tasks import find_repo
from store.types import utcnow

router = APIRouter(tags=["System"], include_in_schema=False)
USERNAMES = {"github": "x-access-token", "gitlab": "oauth2"}
LIFETIME = timedelta(minutes=10)


@router.post("/api/internal/runs/{run_id}/push-credential")
async def push_credential(run_id: str, request: Request, state: StateDep) -> Any:
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    async with state.sessions() as session:
        run = await authenticate_run(session, run_id=run_id, token=token)
        if run is None or run.finished_at is not None:
            raise UnauthorizedError("Invalid run token")
        task = await session.get(Task, run.task_id)
        if task is None:
            raise NotFoundError("Task not found")
        repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
        if repo is None or repo.git_platform not in USERNAMES:
            raise NotFoundError("This repository needs no push credential")
        secret = await forge_token(
            session,
            settings=state.settings,
            platform=repo.git_platform,
            workspace_id=task.workspace_id,
            repo_url=task.repo_url,
            user_id=task.created_by,
        )
    if secret is None:
        raise NotFoundError(f"No {repo.git_platform} token is configured for this repository")
    body = {
        "username": USERNAMES[repo.git_platform],
        "password": secret,
        "expiresAt": (utcnow() + LIFETIME).isoformat(),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
