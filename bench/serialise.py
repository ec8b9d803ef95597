"""`python -m bench.serialise`: CPU to serialise a 50-row GET /api/tasks page.

The untyped route's path (a TypeAdapter dump to dicts, then FastAPI's jsonable_encoder
and json.dumps) against the typed one (the TasksPublic model, serialised by pydantic-core).
"""

import json
import time
import timeit
from datetime import UTC, datetime

from fastapi.encoders import jsonable_encoder
from fastapi.utils import create_model_field
from pydantic import TypeAdapter

from schemas.task_views import TasksPublic
from schemas.tasks import TaskPublic
from store.models import Task

now = datetime.now(UTC)
rows = [
    Task(
        id=f"id-{i}",
        workspace_id="w",
        title=f"t{i}",
        prompt="p" * 200,
        repo_url="https://x/r.git",
        repo_branch="main",
        agent_type="script",
        task_type="task",
        state="pending",
        metadata_={"k": i},
        subtask_order=0,
        blocks_parent=False,
        retry_count=0,
        max_retries=3,
        priority=100,
        created_at=now,
        updated_at=now,
    )
    for i in range(50)
]
TASK_LIST = TypeAdapter(list[TaskPublic])
field = create_model_field(name="r", type_=TasksPublic, mode="serialization")


def untyped_path():
    body = {
        "tasks": TASK_LIST.dump_python(TASK_LIST.validate_python(rows), mode="json", by_alias=True),
        "limit": 50,
        "offset": 0,
    }
    return json.dumps(
        jsonable_encoder(body), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


def typed_path():
    value = TasksPublic(tasks=TASK_LIST.validate_python(rows), limit=50, offset=0)
    v, errors = field.validate(value, {}, loc=("response",))
    assert not errors
    return field.serialize_json(v, by_alias=True)


assert json.loads(untyped_path()) == json.loads(typed_path())
for name, fn in (
    ("untyped (dicts + jsonable_encoder)", untyped_path),
    ("typed (TasksPublic model)", typed_path),
):
    best = min(timeit.repeat(fn, number=200, repeat=5, timer=time.process_time)) / 200
    print(f"{name}: {best * 1000:.3f} ms CPU per 50-row page")
