"""DeliveryWorkflow: one event to one webhook or Slack channel, retried with backoff.

Its id is `delivery-<deliveryId>`, started with REJECT_DUPLICATE: an activity that
emits the same event twice (a retried record_transition) delivers it once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.notify import DeliveryInput, DeliveryResult

DELIVER = "deliver_notification"
# Never retried: the target is gone, disabled, or not a place Optio delivers to.
REFUSED = "DeliveryRefused"


@workflow.defn(name="DeliveryWorkflow")
class DeliveryWorkflow:
    @workflow.run
    async def run(self, input: DeliveryInput) -> DeliveryResult:
        try:
            result: DeliveryResult = await workflow.execute_activity(
                DELIVER,
                input,
                result_type=DeliveryResult,
                # Covers the HTTP timeout (at most 60 s) and the recording around it.
                start_to_close_timeout=timedelta(seconds=90),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=input.initial_interval_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=input.max_interval_seconds),
                    maximum_attempts=input.max_attempts,
                    non_retryable_error_types=[REFUSED],
                ),
            )
        except ActivityError as err:
            cause = err.cause
            return DeliveryResult(delivered=False, error=str(cause or err))
        return result
