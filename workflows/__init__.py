from workflows.limiter import SlotLimiterWorkflow
from workflows.repo_task import RepoTaskWorkflow

WORKFLOWS: list[type] = [RepoTaskWorkflow, SlotLimiterWorkflow]
