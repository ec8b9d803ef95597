"""GET /metrics: Prometheus exposition for operators (docs/deployment.md#metrics).

Authenticated by OPTIO_METRICS_TOKEN (`Authorization: Bearer ...`), which a scraper holds
instead of a person's token; the numbers cover every workspace, so no workspace role is
enough. Without the setting the endpoint is off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import StateDep, bearer_token
from core.errors import NotFoundError, UnauthorizedError
from core.metrics_text import CONTENT_TYPE, exposition, queue_families, token_matches
from core.states import TaskState
from store.metrics import queued_by_repo, tasks_by_state
from store.types import utcnow

router = APIRouter(tags=["System"], include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    expected = state.settings.metrics_token
    if expected is None:
        raise NotFoundError("Metrics are off: set OPTIO_METRICS_TOKEN to serve them")
    if not token_matches(bearer_token(request), expected.get_secret_value()):
        raise UnauthorizedError("Send 'Authorization: Bearer <OPTIO_METRICS_TOKEN>'")
    async with state.sessions() as session:
        counts = await tasks_by_state(session)
        queued = await queued_by_repo(session)
    families = queue_families(
        tasks_by_state=counts,
        queued=[(q.repo_url, q.depth, q.oldest) for q in queued],
        now=utcnow(),
        states=[s.value for s in TaskState],
    )
    return Response(exposition(families), media_type=CONTENT_TYPE)
