"""TicketSyncWorkflow: one sync run of one ticket provider; TicketDoneWorkflow: the
write-back once a ticket's task has completed.

A Temporal Schedule per provider starts TicketSyncWorkflow (`ticket-sync-<providerId>-
<fireTime>`); POST /api/tickets/sync starts one at once. The activity records the
provider's failures itself (five in a row disable it), so a provider error is the run's
result, not a workflow failure to retry.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.tickets import TicketActivities
    from schemas.tickets import TicketDoneInput, TicketSyncInput, TicketSyncResult


@workflow.defn(name="TicketSyncWorkflow")
class TicketSyncWorkflow:
    @workflow.run
    async def run(self, input: TicketSyncInput) -> TicketSyncResult:
        return await workflow.execute_activity_method(
            TicketActivities.sync_ticket_provider,
            input,
            # 20 pages of 100 tickets, their comments, and rate-limit waits of up to a minute.
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            # Provider errors come back in the result; this retries a lost worker or database.
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=2),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=3,
            ),
        )


@workflow.defn(name="TicketDoneWorkflow")
class TicketDoneWorkflow:
    @workflow.run
    async def run(self, input: TicketDoneInput) -> None:
        await workflow.execute_activity_method(
            TicketActivities.finish_ticket,
            input,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=2),
            # A provider down for a while: keep trying for about a day, then give up.
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=10),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=30),
                maximum_attempts=60,
                non_retryable_error_types=["TicketAuth", "TicketRepo"],
            ),
        )
