"""PipelineWorkflow: a parent's `step` subtasks, one after another.

The next step starts when the previous completes; a failed step stops the chain
until a person resumes or retries it (its workflow tells us when it ends again).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.graph import GraphActivities
    from core.names import PIPELINE_WORKFLOW
    from schemas.workflow import PipelineInput, StartTaskInput

DB_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200))
# A safety net only: step workflows signal us when they end.
RECHECK = timedelta(minutes=10)
MAX_ROUNDS = 500


@workflow.defn(name=PIPELINE_WORKFLOW)
class PipelineWorkflow:
    def __init__(self) -> None:
        self._changed = False

    @workflow.signal
    def steps_changed(self) -> None:
        self._changed = True

    @workflow.run
    async def run(self, input: PipelineInput) -> str:
        for _ in range(MAX_ROUNDS):
            self._changed = False
            loaded = await workflow.execute_activity_method(
                GraphActivities.load_steps,
                input,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
            current = next((s for s in loaded.steps if s.state != "completed"), None)
            if current is None:
                return "all_steps_complete"
            if not current.started:
                await workflow.execute_activity_method(
                    GraphActivities.start_task,
                    StartTaskInput(task_id=current.task_id),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=DB_RETRY,
                )
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=RECHECK)
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(input)
