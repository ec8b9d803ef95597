"""A page dumped straight from rows (api/row_json.py) is byte for byte what FastAPI
writes for the validated models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from api.routes.tasks import TASK_LIST, TASK_ROWS
from api.row_json import RowJson, json_response
from schemas.task_views import TasksPublic
from schemas.tasks import TaskPublic
from store.tasks import TASK_PAGE_KEYS


def _row(n: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TASK_PAGE_KEYS)
    row.update(
        id=f"task-{n}",
        workspace_id="ws",
        title=f'Tâche "{n}" <b>\u2028',
        prompt="line\nnext\ttab \\ \u00e9\U0001f600",
        repo_url="file:///r.git",
        repo_branch="main",
        state="completed",
        agent_type="script",
        task_type="coding",
        retry_count=0,
        max_retries=2,
        priority=100,
        subtask_order=0,
        blocks_parent=False,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
    )
    row.update(changes)
    return row


ROWS = [
    _row(1),
    _row(
        2,
        metadata_={"model": "m", "nested": [1, 2.5, None, {"a": True}]},
        cost_usd="0.0123",
        max_cost_usd="5",
        input_tokens=12,
        output_tokens=0,
        pr_number=7,
        blocks_parent=True,
        parent_task_id="task-1",
        started_at=datetime(2026, 1, 2, 3, 4, 6, 123456, tzinfo=UTC),
        completed_at=datetime(2026, 1, 2, 3, 4, 7, tzinfo=UTC),
        last_activity_at=datetime(2026, 1, 2, 3, 4, 7, 1, tzinfo=UTC),
        error_message="",
        idempotency_key="not in the model",
    ),
]


@pytest.mark.parametrize("rows", [[], ROWS[:1], ROWS])
def test_rows_dump_as_the_models_do(rows: list[dict[str, Any]]) -> None:
    page = TasksPublic(tasks=TASK_LIST.validate_python(rows), limit=50, offset=3)
    expected = TypeAdapter(TasksPublic).dump_json(page, by_alias=True)
    direct = {"tasks": TASK_ROWS.objects(rows), "limit": 50, "offset": 3}
    assert bytes(json_response(direct).body) == expected


def test_a_field_without_a_column_or_default_is_refused() -> None:
    with pytest.raises(ValueError, match="TaskPublic.title"):
        RowJson(TaskPublic, [key for key in TASK_PAGE_KEYS if key != "title"])
