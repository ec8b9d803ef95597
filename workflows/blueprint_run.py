"""BlueprintRunWorkflow: one firing of a blueprint becomes one fresh repo task.

Started by a Temporal Schedule (id `blueprint-<configId>-<fireTime>`, Temporal appends
the fire time) or by the API for manual and webhook runs. It stays open while the
task it created is live, so a schedule's SKIP overlap policy skips a firing while
the previous run's task is still being worked on.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.blueprints import BlueprintActivities
    from core.names import BLUEPRINT_RUN_WORKFLOW
    from schemas.blueprint_runs import (
        AwaitTaskInput,
        BlueprintRunInput,
        InstantiateInput,
        InstantiateResult,
    )

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)


@workflow.defn(name=BLUEPRINT_RUN_WORKFLOW)
class BlueprintRunWorkflow:
    @workflow.run
    async def run(self, input: BlueprintRunInput) -> InstantiateResult:
        # workflow.uuid4() is deterministic per workflow run: a replay picks the same id.
        task_id = input.task_id or str(workflow.uuid4())
        created = await workflow.execute_activity_method(
            BlueprintActivities.instantiate_blueprint,
            InstantiateInput(
                config_id=input.config_id,
                task_id=task_id,
                trigger_id=input.trigger_id,
                params=input.params,
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=DB_RETRY,
        )
        if created.skipped is None:
            await workflow.execute_activity_method(
                BlueprintActivities.await_task_settled,
                AwaitTaskInput(task_id=task_id),
                # A task may wait days for review; the heartbeat notices a dead worker.
                start_to_close_timeout=timedelta(days=7),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
                ),
            )
        return created
