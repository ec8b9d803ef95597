"""Workflows as workflows: the real workflow code on the time-skipping test server, its
activities replaced by name with in-memory ones a test steers (STYLE.md §12).

`World` holds what the database would: the task's state and events, the PR as the
forge would show it. Each activity that a test wants to hold at a given point waits on
a gate (`World.hold(name)`), so a test can deliver an update or a signal exactly while
the workflow runs that activity.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from core.names import SEARCH_ATTRIBUTES
from schemas.workflow import (
    AcquireSlotInput,
    FinishPrInput,
    GraphInput,
    GraphSnapshot,
    LaunchReviewInput,
    LaunchReviewResult,
    LoadTaskInput,
    MergePrInput,
    MergePrResult,
    OpenPrInput,
    OpenPrResult,
    PatchTaskInput,
    PlaceRunInput,
    PrepareInput,
    PrepareResult,
    PrFeedbackInput,
    PrFeedbackResult,
    PrSnapshotData,
    RecordLostRunInput,
    RedoInput,
    ReleaseSlotInput,
    ReleaseWorktreeInput,
    ReviewVerdictInput,
    ReviewVerdictResult,
    RunAgentInput,
    RunAgentResult,
    RunPlacement,
    SlotGranted,
    StopRunInput,
    TaskFinished,
    TaskSnapshot,
    TransitionInput,
    TransitionResult,
    WatchPrInput,
)
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

OPEN_PASSING = PrSnapshotData("open", True, "passing", "none", "sha1")
OPEN_FAILING = PrSnapshotData("open", True, "failing", "none", "sha2")
OPEN_PENDING = PrSnapshotData("open", True, "pending", "none", "sha1")


@dataclass
class World:
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "queued"
    seq: int = 0
    events: list[TransitionInput] = field(default_factory=list)
    max_retries: int = 0
    auto_merge: bool = False
    auto_resume: bool = False
    review_enabled: bool = False
    task_type: str = "coding"
    # What each call returns, in order; the last one repeats.
    agent_results: list[RunAgentResult] = field(
        default_factory=lambda: [RunAgentResult(success=True, summary="done")]
    )
    prepare_results: list[PrepareResult] = field(
        default_factory=lambda: [PrepareResult(ready=True)]
    )
    # Where each run is placed, in order; the last one repeats (default: any worker).
    placements: list[RunPlacement] = field(default_factory=lambda: [RunPlacement()])
    opened_snapshot: PrSnapshotData | None = None
    merge_result: MergePrResult = field(default_factory=lambda: MergePrResult(merged=True))
    watch_results: asyncio.Queue[PrSnapshotData] = field(default_factory=asyncio.Queue)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    reached: dict[str, asyncio.Event] = field(default_factory=dict)

    # ---- steering ---------------------------------------------------------------------

    def hold(self, name: str) -> None:
        """The next call of activity `name` waits until `release(name)`."""
        self.gates[name] = asyncio.Event()
        self.reached[name] = asyncio.Event()

    def release(self, name: str) -> None:
        self.gates.pop(name).set()

    async def wait_reached(self, name: str, timeout: float = 20) -> None:
        await asyncio.wait_for(self.reached[name].wait(), timeout)

    async def _gate(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        gate = self.gates.get(name)
        if gate is not None:
            self.reached[name].set()
            while not gate.is_set():
                if not activity.info().is_local:
                    activity.heartbeat()
                try:
                    await asyncio.wait_for(gate.wait(), 0.2)
                except TimeoutError:
                    pass

    def called(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]

    def triggers(self) -> list[tuple[str, str]]:
        return [(e.to_state, e.trigger) for e in self.events]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)

    # ---- the activities, by name --------------------------------------------------------

    def activities(self) -> list[Callable[..., Any]]:
        world = self

        def pick(results: list[Any]) -> Any:
            return results.pop(0) if len(results) > 1 else results[0]

        @activity.defn(name="load_task")
        async def load_task(input: LoadTaskInput) -> TaskSnapshot:
            await world._gate("load_task", input)
            return TaskSnapshot(
                task_id=world.task_id,
                workspace_id="w",
                state=world.state,
                seq=world.seq,
                title="t",
                repo_url="/repos/app.git",
                repo_branch="main",
                agent_type="script",
                priority=100,
                max_retries=world.max_retries,
                retry_count=0,
                pr_url=None,
                pr_number=None,
                session_id=None,
                repo_key="k",
                auto_merge=world.auto_merge,
                cautious_mode=False,
                auto_resume=world.auto_resume,
                max_auto_resumes=3,
                max_concurrent_tasks=2,
                stall_threshold_ms=300_000,
                max_turns_coding=250,
                test_command=None,
                global_limit=5,
                pr_watch_interval_ms=1000,
                review_enabled=world.review_enabled,
                task_type=world.task_type,
            )

        @activity.defn(name="record_transition")
        async def record_transition(input: TransitionInput) -> TransitionResult:
            await world._gate(f"record_transition:{input.to_state}", input)
            # As store.tasks.apply_transition: once per sequence number, from the row's state.
            if any(e.seq == input.seq for e in world.events) or (
                not input.force and input.from_state != world.state
            ):
                return TransitionResult(applied=False)
            world.events.append(input)
            world.state, world.seq = input.to_state, max(world.seq, input.seq)
            return TransitionResult(applied=True)

        @activity.defn(name="patch_task")
        async def patch_task(input: PatchTaskInput) -> None:
            await world._gate("patch_task", input)

        @activity.defn(name="load_graph")
        async def load_graph(input: GraphInput) -> GraphSnapshot:
            await world._gate("load_graph", input)
            return GraphSnapshot(
                dependency_states=[],
                failed_dependency=None,
                blocking_open=0,
                steps_total=0,
                steps_completed=0,
            )

        @activity.defn(name="notify_task_finished")
        async def notify_task_finished(input: TaskFinished) -> None:
            await world._gate("notify_task_finished", input)

        @activity.defn(name="release_worktree")
        async def release_worktree(input: ReleaseWorktreeInput) -> None:
            await world._gate("release_worktree", input)

        @activity.defn(name="acquire_slot")
        async def acquire_slot(input: AcquireSlotInput) -> None:
            await world._gate("acquire_slot", input)
            await grant_slot(input)

        @activity.defn(name="release_slot")
        async def release_slot(input: ReleaseSlotInput) -> None:
            await world._gate("release_slot", input)

        @activity.defn(name="prepare_worktree")
        async def prepare_worktree(input: PrepareInput) -> PrepareResult:
            await world._gate("prepare_worktree", input)
            return replace(pick(world.prepare_results))

        @activity.defn(name="place_run")
        async def place_run(input: PlaceRunInput) -> RunPlacement:
            await world._gate("place_run", input)
            return replace(pick(world.placements))

        @activity.defn(name="record_lost_run")
        async def record_lost_run(input: RecordLostRunInput) -> None:
            await world._gate("record_lost_run", input)

        @activity.defn(name="run_agent")
        async def run_agent(input: RunAgentInput) -> RunAgentResult:
            await world._gate("run_agent", input)
            return replace(pick(world.agent_results))

        @activity.defn(name="stop_agent_run")
        async def stop_agent_run(input: StopRunInput) -> None:
            await world._gate("stop_agent_run", input)

        @activity.defn(name="open_pull_request")
        async def open_pull_request(input: OpenPrInput) -> OpenPrResult:
            await world._gate("open_pull_request", input)
            return OpenPrResult(
                opened=True,
                pr_url="file:///repos/app.git/pull/1",
                pr_number=1,
                snapshot=world.opened_snapshot,
            )

        @activity.defn(name="watch_pull_request")
        async def watch_pull_request(input: WatchPrInput) -> PrSnapshotData:
            await world._gate("watch_pull_request", input)
            while True:
                activity.heartbeat()
                try:
                    return await asyncio.wait_for(world.watch_results.get(), 0.2)
                except TimeoutError:
                    continue

        @activity.defn(name="merge_pull_request")
        async def merge_pull_request(input: MergePrInput) -> MergePrResult:
            await world._gate("merge_pull_request", input)
            return replace(world.merge_result)

        @activity.defn(name="finish_pull_request")
        async def finish_pull_request(input: FinishPrInput) -> None:
            await world._gate("finish_pull_request", input)

        @activity.defn(name="pr_feedback")
        async def pr_feedback(input: PrFeedbackInput) -> PrFeedbackResult:
            await world._gate("pr_feedback", input)
            return PrFeedbackResult(text="Failing check: testCommand")

        @activity.defn(name="launch_review")
        async def launch_review(input: LaunchReviewInput) -> LaunchReviewResult:
            await world._gate("launch_review", input)
            return LaunchReviewResult(review_task_id="review-1")

        @activity.defn(name="post_verdict")
        async def post_verdict(input: ReviewVerdictInput) -> ReviewVerdictResult:
            await world._gate("post_verdict", input)
            return ReviewVerdictResult(posted=True, verdict="approve", message="fine")

        @activity.defn(name="reset_for_redo")
        async def reset_for_redo(input: RedoInput) -> None:
            await world._gate("reset_for_redo", input)

        return [
            load_task,
            record_transition,
            patch_task,
            load_graph,
            notify_task_finished,
            release_worktree,
            acquire_slot,
            release_slot,
            prepare_worktree,
            run_agent,
            stop_agent_run,
            place_run,
            record_lost_run,
            open_pull_request,
            watch_pull_request,
            merge_pull_request,
            finish_pull_request,
            pr_feedback,
            launch_review,
            post_verdict,
            reset_for_redo,
        ]


async def grant_slot(input: AcquireSlotInput) -> None:
    """The limiter's answer to a slot request, given at once (from within an activity)."""
    await (
        activity.client()
        .get_workflow_handle(input.request.workflow_id)
        .signal(
            "slot_granted",
            SlotGranted(limiter_id=input.limiter_id, request_id=input.request.request_id),
        )
    )


async def time_skipping_client(env: WorkflowEnvironment) -> Client:
    """The test server's client, with Optio's search attributes registered (the test
    server refuses unknown ones, and has no ListSearchAttributes to check first)."""
    for name in SEARCH_ATTRIBUTES:
        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace="default",
                    search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
                )
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return env.client


@asynccontextmanager
async def worker_for(
    client: Client, world: World, interceptors: Sequence[Interceptor] = ()
) -> AsyncIterator[str]:
    """A worker with every workflow and the world's activities, on a queue of its own."""
    queue = f"wf-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=world.activities(),
        workflow_runner=WORKFLOW_RUNNER,
        interceptors=interceptors,
    ):
        yield queue


async def keep_history(client: Client, workflow_id: str, scenario: str) -> None:
    """Stores the run's history for test_replay.py when recording is asked for
    (OPTIO_RECORD_HISTORIES=1, OPTIO_RECORD_SUFFIX as in test_record_histories.py): a
    time-skipping run replays like any other."""
    if os.environ.get("OPTIO_RECORD_HISTORIES") != "1":
        return
    from tests.workflows.test_replay import HISTORIES

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    suffix = os.environ.get("OPTIO_RECORD_SUFFIX", "")
    name = f"{kind}__{scenario}{f'__{suffix}' if suffix else ''}.json"
    (HISTORIES / name).write_text(history.to_json())
