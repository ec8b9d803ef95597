"""Interactive sessions over HTTP (inventory §3.19); the terminal and chat WebSockets are
in api/live/terminal.py and api/live/chat.py.

A session belongs to the person who created it: only they (or a workspace admin) end
it, and only they open its terminal and chat. The rest of the workspace may list and
read sessions; another workspace's session is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.paging import Offset
from api.repo_access import usable_repo_url
from core.errors import ForbiddenError, InvalidInputError, ServiceUnavailableError
from core.names import SESSION_WORKFLOW, session_workflow_id
from integrations.session_sandbox import session_branch
from schemas.auth import Principal
from schemas.sessions import (
    ChatEventOut,
    ChatHistory,
    SessionCreate,
    SessionDetail,
    SessionEnvelope,
    SessionInput,
    SessionList,
    SessionOut,
    SessionPrCreate,
    SessionPrEnvelope,
    SessionPrList,
    SessionPrOut,
    SessionState,
)
from store.models import new_id
from store.session_rows import (
    add_session_pr,
    chat_history,
    chat_payload,
    get_session,
    list_sessions,
    pr_payload,
    publish_session,
    session_payload,
    session_prs,
)
from store.sessions import ACTIVE_STATES, InteractiveSession
from store.tasks import find_repo
from store.types import utcnow

router = APIRouter(tags=["Sessions"])
MEMBER = require_role("member")


def _out(row: InteractiveSession) -> SessionOut:
    return SessionOut.model_validate(session_payload(row))


def require_owner(principal: Principal, row: InteractiveSession, *, admin_too: bool) -> None:
    if row.user_id == principal.user_id or (admin_too and principal.role == "admin"):
        return
    raise ForbiddenError("Only the person who started this session may do that")


@router.get("/api/sessions", response_model=SessionList)
async def list_(
    principal: CurrentPrincipal,
    session: SessionDep,
    repo_url: Annotated[str | None, Query(alias="repoUrl", max_length=500)] = None,
    state: SessionState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> SessionList:
    rows, active = await list_sessions(
        session, workspace_id=principal.workspace_id, repo_url=repo_url, state=state,
        limit=limit, offset=offset,
    )  # fmt: skip
    return SessionList(sessions=[_out(r) for r in rows], active_count=active)


@router.post(
    "/api/sessions", status_code=201, dependencies=[MEMBER], response_model=SessionEnvelope
)
async def create(
    body: SessionCreate, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> SessionEnvelope:
    repo_url = await usable_repo_url(
        session, settings=state.settings, workspace_id=principal.workspace_id, value=body.repo_url
    )
    repo = await find_repo(session, workspace_id=principal.workspace_id, repo_url=repo_url)
    if repo is None:
        raise InvalidInputError(
            f"{repo_url} is not connected to this workspace: POST /api/repos first"
        )
    session_id = new_id()
    row = InteractiveSession(
        id=session_id, workspace_id=principal.workspace_id, user_id=principal.user_id,
        repo_url=repo_url, base_branch=repo.default_branch,
        branch=session_branch(user_id=principal.user_id, session_id=session_id),
    )  # fmt: skip
    session.add(row)
    await session.flush()
    publish_session(session, row, "session:created")
    await session.commit()
    try:
        client = await state.temporal_client()
        await client.start_workflow(
            SESSION_WORKFLOW,
            SessionInput(row.id, state.settings.session_idle_timeout_seconds),
            id=session_workflow_id(row.id),
            task_queue=state.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except RPCError as exc:
        row.state, row.error, row.ended_at = "failed", f"Could not start: {exc}", utcnow()
        await session.commit()
        raise ServiceUnavailableError("Temporal refused the session's workflow; try again") from exc
    return SessionEnvelope(session=_out(row))


@router.get("/api/sessions/{session_id}", response_model=SessionDetail)
async def detail(
    session_id: str, principal: CurrentPrincipal, session: SessionDep
) -> SessionDetail:
    row = await get_session(session, workspace_id=principal.workspace_id, session_id=session_id)
    return SessionDetail(session=_out(row))


@router.post(
    "/api/sessions/{session_id}/end", dependencies=[MEMBER], response_model=SessionEnvelope
)
async def end(
    session_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> SessionEnvelope:
    """Ends now (idempotent); the session's workflow removes its worktree."""
    row = await get_session(session, workspace_id=principal.workspace_id, session_id=session_id)
    require_owner(principal, row, admin_too=True)
    if row.state in ACTIVE_STATES:
        row.state, row.ended_at, row.end_reason = "ended", utcnow(), "ended"
        publish_session(session, row, "session:ended")
        await session.commit()
    client = await state.temporal_client()
    try:
        await client.get_workflow_handle(session_workflow_id(row.id)).signal("end")
    except RPCError:
        pass  # its workflow has finished: the worktree went with it
    return SessionEnvelope(session=_out(row))


@router.get("/api/sessions/{session_id}/chat", response_model=ChatHistory)
async def chat(
    session_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> ChatHistory:
    row = await get_session(session, workspace_id=principal.workspace_id, session_id=session_id)
    events = await chat_history(session, session_id=row.id, limit=limit)
    return ChatHistory(events=[ChatEventOut.model_validate(chat_payload(e)) for e in events])


@router.get("/api/sessions/{session_id}/prs", response_model=SessionPrList)
async def prs(session_id: str, principal: CurrentPrincipal, session: SessionDep) -> SessionPrList:
    row = await get_session(session, workspace_id=principal.workspace_id, session_id=session_id)
    rows = await session_prs(session, session_id=row.id)
    return SessionPrList(prs=[SessionPrOut.model_validate(pr_payload(p)) for p in rows])


@router.post(
    "/api/sessions/{session_id}/prs",
    status_code=201,
    dependencies=[MEMBER],
    response_model=SessionPrEnvelope,
)
async def add_pr(
    session_id: str, body: SessionPrCreate, principal: CurrentPrincipal, session: SessionDep
) -> SessionPrEnvelope:
    """A PR opened from the session (the terminal registers those it sees; so may a client)."""
    row = await get_session(session, workspace_id=principal.workspace_id, session_id=session_id)
    require_owner(principal, row, admin_too=False)
    pr = await add_session_pr(
        session, session_id=row.id, pr_url=body.pr_url, pr_number=body.pr_number
    )
    await session.commit()
    return SessionPrEnvelope(pr=SessionPrOut.model_validate(pr_payload(pr)))
