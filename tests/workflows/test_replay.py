"""Stored histories of real runs must replay on the current workflow code.

A change that breaks determinism for workflows already in flight fails here. Under
Worker Versioning a run stays on its build, but the long-lived workflows (the limiter,
the PR phase) move to the current build at continue-as-new, so their histories guard
the continue-as-new inputs too (docs/temporal.md, "Changing workflow code"). Record
the scenarios after a change, beside the histories of builds that may still run:
    OPTIO_RECORD_HISTORIES=1 OPTIO_RECORD_SUFFIX=<what changed> \
    .venv/bin/pytest tests/workflows/test_record_histories.py
`__pr_phase` histories were recorded on the shape with the PR phase as a child; the
older generations (and their patches) were retired with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
STORED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_stored() -> None:
    kinds = {path.stem.split("__")[0] for path in STORED}
    # StandaloneRunWorkflow has none yet (its end-to-end tests replay nothing either).
    every = {getattr(w, "__temporal_workflow_definition").name for w in WORKFLOWS}
    assert every - {"StandaloneRunWorkflow"} <= kinds, every - kinds
    # A PR phase that continued as new: the next run's input is a contract between builds.
    continued = HISTORIES / "PrPhaseWorkflow__continued_as_new__pr_phase.json"
    assert "WORKFLOW_EXECUTION_CONTINUED_AS_NEW" in continued.read_text()


# The recorder runs two watch rounds per PR phase run (so a phase continues as new
# within a test); replayed with the same number, the histories meet the same commands.
RECORDED_WATCH_ROUNDS = 2


def recorded_workflow_id(path: Path, text: str) -> str:
    """The id the run had: a task's run names its PR phase after itself (`<id>-pr`)."""
    for event in json.loads(text)["events"]:
        started = event.get("startChildWorkflowExecutionInitiatedEventAttributes")
        if started is not None:
            return str(started["workflowId"]).removesuffix("-pr")
    return path.stem


@pytest.mark.parametrize("path", STORED, ids=[p.stem for p in STORED])
async def test_history_replays(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workflows.pr_phase.MAX_WATCH_ROUNDS", RECORDED_WATCH_ROUNDS)
    text = path.read_text()
    history = WorkflowHistory.from_json(recorded_workflow_id(path, text), text)
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)
