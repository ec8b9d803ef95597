"""SlotLimiterWorkflow: a durable semaphore with a priority queue, one per scope.

Requests, grants and releases are signals both ways: Temporal allows only a few
updates in flight per workflow, and hundreds of tasks may be waiting.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.limiter import find_closed_workflows
    from core.names import SLOT_LIMITER_WORKFLOW, Signals
    from schemas.workflow import (
        ClosedWorkflowsInput,
        LimiterState,
        LimiterStatus,
        SlotGranted,
        SlotRelease,
        SlotReprioritize,
        SlotRequest,
        Waiter,
    )

# Holders whose task workflow ended without releasing (terminated, say) are swept.
SWEEP_INTERVAL = timedelta(seconds=60)
MAX_EVENTS_BEFORE_CONTINUE = 8_000


@workflow.defn(name=SLOT_LIMITER_WORKFLOW)
class SlotLimiterWorkflow:
    @workflow.init
    def __init__(self, state: LimiterState) -> None:
        # Initialised from the input so that signals delivered with start find the state.
        self._state = state
        self._dirty = True
        self._renotify: list[Waiter] = []

    @workflow.run
    async def run(self, state: LimiterState) -> None:
        while True:
            await self._grant()
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Under Worker Versioning the next run starts on the current build: a
                # limiter lives for ever and must not hold an old worker up.
                workflow.continue_as_new(
                    self._state,
                    initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
                )
            try:
                await workflow.wait_condition(
                    lambda: self._dirty, timeout=SWEEP_INTERVAL if self._state.holders else None
                )
            except TimeoutError:
                await self._sweep()

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > MAX_EVENTS_BEFORE_CONTINUE
        )

    async def _grant(self) -> None:
        self._dirty = False
        grants, self._renotify = list(self._renotify), []
        state = self._state
        state.waiters.sort(key=lambda w: (w.priority, w.arrival))
        held = self._scope_counts()
        waiting: list[Waiter] = []
        for waiter in state.waiters:
            # A waiter whose repository is full waits without holding up the others; one
            # without scopes is granted exactly as before scopes existed.
            if len(state.holders) >= state.capacity or any(
                held.get(scope, 0) >= state.scope_capacity.get(scope, capacity)
                for scope, capacity in waiter.scopes.items()
            ):
                waiting.append(waiter)
                continue
            state.holders[waiter.workflow_id] = waiter.request_id
            if waiter.scopes:
                state.holder_scopes[waiter.workflow_id] = sorted(waiter.scopes)
                for scope in waiter.scopes:
                    held[scope] = held.get(scope, 0) + 1
            grants.append(waiter)
        state.waiters = waiting
        results = await asyncio.gather(*(self._notify(w) for w in grants))
        for waiter, delivered in zip(grants, results, strict=True):
            if not delivered and state.holders.get(waiter.workflow_id) == waiter.request_id:
                self._drop_holder(waiter.workflow_id)
                self._dirty = True

    def _scope_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for scopes in self._state.holder_scopes.values():
            for scope in scopes:
                counts[scope] = counts.get(scope, 0) + 1
        return counts

    def _drop_holder(self, workflow_id: str) -> None:
        self._state.holders.pop(workflow_id, None)
        self._state.holder_scopes.pop(workflow_id, None)

    async def _notify(self, waiter: Waiter) -> bool:
        handle = workflow.get_external_workflow_handle(waiter.workflow_id)
        try:
            await handle.signal(
                Signals.SLOT_GRANTED,
                SlotGranted(limiter_id=self._state.limiter_id, request_id=waiter.request_id),
            )
            return True
        except Exception:
            # The waiter's workflow is gone (completed, terminated): free its slot.
            return False

    async def _sweep(self) -> None:
        holders = list(self._state.holders)
        result = await workflow.execute_activity(
            find_closed_workflows,
            ClosedWorkflowsInput(workflow_ids=holders),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        for workflow_id in result.closed:
            self._drop_holder(workflow_id)
            self._dirty = True

    @workflow.signal
    def request(self, request: SlotRequest) -> None:
        state = self._state
        state.capacity = max(1, request.capacity)
        for scope, capacity in request.scopes.items():
            state.scope_capacity[scope] = max(1, capacity)
        self._dirty = True
        waiter = Waiter(
            priority=request.priority,
            arrival=state.arrivals + 1,
            workflow_id=request.workflow_id,
            request_id=request.request_id,
            scopes={s: state.scope_capacity[s] for s in request.scopes},
        )
        if state.holders.get(request.workflow_id) == request.request_id:
            # A re-sent request of a holder (activity retry): confirm the grant again.
            self._renotify.append(waiter)
            return
        # A new request from the same workflow (a new run of the task) replaces the old one.
        self._drop_holder(request.workflow_id)
        state.waiters = [w for w in state.waiters if w.workflow_id != request.workflow_id]
        state.arrivals += 1
        state.waiters.append(waiter)

    @workflow.signal
    def release(self, release: SlotRelease) -> None:
        state = self._state
        if state.holders.get(release.workflow_id) == release.request_id:
            self._drop_holder(release.workflow_id)
        state.waiters = [
            w
            for w in state.waiters
            if not (w.workflow_id == release.workflow_id and w.request_id == release.request_id)
        ]
        self._dirty = True

    @workflow.signal
    def reprioritize(self, change: SlotReprioritize) -> None:
        for waiter in self._state.waiters:
            if waiter.workflow_id == change.workflow_id:
                waiter.priority = change.priority
        self._dirty = True

    @workflow.query
    def status(self) -> LimiterStatus:
        return LimiterStatus(
            capacity=self._state.capacity,
            holders=len(self._state.holders),
            waiting=len(self._state.waiters),
            scope_holders=self._scope_counts(),
            scope_capacity=dict(self._state.scope_capacity),
        )
