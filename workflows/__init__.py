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
