"""Stored histories of real runs must replay on the current workflow code.

A change that breaks determinism for workflows already in flight fails here; guard it
with `workflow.patched(...)`. Record new histories after such a guarded change, or to
add scenarios, beside the old ones (which keep guarding the old code paths):
    OPTIO_RECORD_HISTORIES=1 OPTIO_RECORD_SUFFIX=<what changed> \
    .venv/bin/pytest tests/workflows/test_record_histories.py
Unsuffixed files predate local activities; `__local_activities`, `__one_slot_request`,
`__fewer_round_trips` and `__hardened_loop` were recorded after those patches
(docs/temporal.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
STORED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_stored() -> None:
    kinds = {path.stem.split("__")[0] for path in STORED}
    assert {"RepoTaskWorkflow", "SlotLimiterWorkflow", "PipelineWorkflow"} <= kinds


@pytest.mark.parametrize("path", STORED, ids=[p.stem for p in STORED])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)
