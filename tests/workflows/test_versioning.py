"""Worker Versioning (docs/temporal.md): a worker given a build id pins each run to it."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from schemas.workflow import RepoTaskInput
from tests.workflows.harness import OPEN_PASSING, World
from worker.main import deployment_config
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS


def test_an_unversioned_worker_without_a_build_id() -> None:
    assert deployment_config(None, "optio") is None


async def make_current(client: Client, deployment: str, build_id: str) -> None:
    """Once the worker has polled, its version exists and can be made current."""
    for _ in range(100):
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=deployment, build_id=build_id
                )
            )
            return
        except RPCError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{deployment}:{build_id} never became current")


async def test_a_run_is_pinned_to_the_build_it_began_on(temporal_client: Client) -> None:
    queue = f"versioned-{uuid.uuid4()}"
    world = World(auto_merge=True, opened_snapshot=OPEN_PASSING)
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=world.activities(),
        workflow_runner=WORKFLOW_RUNNER,
        deployment_config=deployment_config("build-1", queue),
    ):
        await make_current(temporal_client, queue, "build-1")
        handle = await temporal_client.start_workflow(
            "RepoTaskWorkflow",
            RepoTaskInput(task_id=world.task_id),
            id=f"task-{world.task_id}",
            task_queue=queue,
        )
        assert await asyncio.wait_for(handle.result(), 60) == "completed"
        for workflow_id in (handle.id, f"{handle.id}-pr"):
            described = await temporal_client.get_workflow_handle(workflow_id).describe()
            info = described.raw_description.workflow_extended_info
            versioning = described.raw_description.workflow_execution_info.versioning_info
            assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, info
            assert versioning.deployment_version.build_id == "build-1"
            assert versioning.deployment_version.deployment_name == queue
