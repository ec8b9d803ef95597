"""Every workflow the worker runs.

Kept out of `workflows/__init__.py` on purpose: the workflow sandbox re-imports a
workflow's module, and with it its package, for every workflow run it starts. An empty
package means a task's run re-imports `workflows.repo_task` alone, not all six modules.
"""

from workflows.blueprint_run import BlueprintRunWorkflow
from workflows.limiter import SlotLimiterWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.repo_task import RepoTaskWorkflow
from workflows.review import ReviewWorkflow
from workflows.standalone_run import StandaloneRunWorkflow

WORKFLOWS: list[type] = [
    RepoTaskWorkflow,
    SlotLimiterWorkflow,
    PipelineWorkflow,
    BlueprintRunWorkflow,
    StandaloneRunWorkflow,
    ReviewWorkflow,
]
