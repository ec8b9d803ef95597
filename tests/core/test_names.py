"""One place for names: activities start workflows by name, never by class."""

from __future__ import annotations

import ast
from pathlib import Path

from core.names import review_workflow_id, task_workflow_id, workflow_id_for

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_activities_never_import_workflow_modules() -> None:
    # activities/review.py once imported workflows/review.py, which imports the
    # activities back: a cycle, and a workflow class loaded outside the sandbox.
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] == "workflows")
        for path in sorted((ROOT / "activities").glob("*.py"))
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_a_review_task_is_carried_by_its_review_workflow() -> None:
    assert workflow_id_for(task_id="r1", task_type="review") == review_workflow_id("r1")
    assert workflow_id_for(task_id="t1", task_type="coding") == task_workflow_id("t1")
    assert workflow_id_for(task_id="s1", task_type="step") == "task-s1"
