"""Every workflow the worker runs, and the sandbox they run in.

Kept out of `workflows/__init__.py` on purpose: by default the workflow sandbox
re-imports a workflow's module, and with it its package, for every workflow run it
starts.
"""

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.blueprint_run import BlueprintRunWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.limiter import SlotLimiterWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.pr_phase import PrPhaseWorkflow
from workflows.repo_task import RepoTaskWorkflow
from workflows.review import ReviewWorkflow
from workflows.standalone_run import StandaloneRunWorkflow
from workflows.ticket_sync import TicketDoneWorkflow, TicketSyncWorkflow

WORKFLOWS: list[type] = [
    RepoTaskWorkflow,
    PrPhaseWorkflow,
    SlotLimiterWorkflow,
    PipelineWorkflow,
    BlueprintRunWorkflow,
    StandaloneRunWorkflow,
    ReviewWorkflow,
    DeliveryWorkflow,
    TicketSyncWorkflow,
    TicketDoneWorkflow,
]

# Workflows import only the standard library, temporalio, schemas/ and core/ (pure,
# stateless code; ARCHITECTURE.md §2), so nothing needs re-importing per run: passing
# every module through saves that at each workflow start (measured: a task's history
# replays in 40-47 ms of CPU instead of 55). The runtime restrictions stay: a workflow
# that reads the clock, a random number or a file still fails its task.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)
