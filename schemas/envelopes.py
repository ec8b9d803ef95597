"""The `{"<name>": row}` and `{"<names>": [rows]}` answers of the resource routes.

Each is a named model, so the OpenAPI document and a client share one name for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from schemas.agents import McpServerPublic, SkillPublic
from schemas.blueprints import (
    BlueprintPublic,
    RunLogPublic,
    StandalonePublic,
    StandaloneRunPublic,
)
from schemas.common import ApiOut
from schemas.templates import PromptTemplatePublic, TaskTemplatePublic
from schemas.webhooks import DeliveryPublic, WebhookPublic


def envelope(name: str, **fields: Any) -> type[ApiOut]:
    """A named answer with required fields: `envelope("X", repo=RepoPublic)`."""
    return create_model(  # type: ignore[call-overload]
        name, __base__=ApiOut, __module__=__name__, **{k: (v, ...) for k, v in fields.items()}
    )


McpServersPublic = envelope("McpServersPublic", servers=list[McpServerPublic])
McpServerEnvelope = envelope("McpServerEnvelope", server=McpServerPublic)
SkillsPublic = envelope("SkillsPublic", skills=list[SkillPublic])
SkillEnvelope = envelope("SkillEnvelope", skill=SkillPublic)
WebhooksPublic = envelope("WebhooksPublic", webhooks=list[WebhookPublic])
WebhookEnvelope = envelope("WebhookEnvelope", webhook=WebhookPublic)
DeliveriesPublic = envelope("DeliveriesPublic", deliveries=list[DeliveryPublic])
PromptTemplatesPublic = envelope("PromptTemplatesPublic", templates=list[PromptTemplatePublic])
PromptTemplateEnvelope = envelope("PromptTemplateEnvelope", template=PromptTemplatePublic)
TaskTemplatesPublic = envelope("TaskTemplatesPublic", templates=list[TaskTemplatePublic])
TaskTemplateEnvelope = envelope("TaskTemplateEnvelope", template=TaskTemplatePublic)
# The legacy aliases /api/task-configs and /api/jobs (api/routes/legacy.py).
TaskConfigsPublic = envelope("TaskConfigsPublic", taskConfigs=list[BlueprintPublic])
TaskConfigEnvelope = envelope("TaskConfigEnvelope", taskConfig=BlueprintPublic)
JobsPublic = envelope("JobsPublic", workflows=list[StandalonePublic])
JobEnvelope = envelope("JobEnvelope", workflow=StandalonePublic)
WorkflowRunsPublic = envelope("WorkflowRunsPublic", runs=list[StandaloneRunPublic])
WorkflowRunEnvelope = envelope("WorkflowRunEnvelope", run=StandaloneRunPublic)
RunLogsOfWorkflowPublic = envelope("WorkflowRunLogsPublic", logs=list[RunLogPublic])
