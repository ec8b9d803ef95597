"""Every read of workspace-owned rows goes through here: another workspace's row is a 404."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import NotFoundError


class WorkspaceOwned(Protocol):
    id: Any
    workspace_id: Any


RowT = TypeVar("RowT", bound=WorkspaceOwned)


def scoped_select(model: type[RowT], *, workspace_id: str) -> Select[RowT]:
    column: InstrumentedAttribute[str] = model.workspace_id
    return select(model).where(column == workspace_id)


async def get_scoped(
    session: AsyncSession,
    model: type[RowT],
    *,
    row_id: str,
    workspace_id: str,
    label: str,
    for_update: bool = False,
) -> RowT:
    stmt = scoped_select(model, workspace_id=workspace_id).where(model.id == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"{label} not found")
    return row
