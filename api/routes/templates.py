"""Prompt templates and task templates (inventory §3.14; seed API "Templates")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.exc import IntegrityError

from api.deps import CurrentPrincipal, SessionDep, require_role
from api.repo_urls import canonical_repo_url
from core.errors import ConflictError, InvalidInputError
from core.prompt_chain import (
    BUILTIN_PROMPT_TEMPLATE,
    BUILTIN_REVIEW_TEMPLATE,
    render_user_template,
)
from core.templating import TemplateError, validate
from schemas.envelopes import (
    PromptTemplateEnvelope,
    PromptTemplatesPublic,
    TaskTemplateEnvelope,
    TaskTemplatesPublic,
)
from schemas.templates import (
    DefaultTemplatePublic,
    EffectivePromptPublic,
    PreviewBody,
    PreviewPublic,
    PromptTemplateCreate,
    PromptTemplatePublic,
    PromptTemplateSaved,
    PromptTemplateUpdate,
    TaskTemplateCreate,
    TaskTemplatePublic,
    TaskTemplateUpdate,
)
from store.blueprints import PromptTemplate, TaskTemplate
from store.changes import apply_changes
from store.scoping import get_scoped, scoped_select
from store.tasks import find_repo
from store.templates import effective_prompt_template

router = APIRouter(tags=["Setup & Settings"])
MEMBER = require_role("member")


def prompt_public(row: PromptTemplate) -> dict[str, Any]:
    return PromptTemplatePublic.model_validate(row).model_dump(mode="json", by_alias=True)


def task_public(row: TaskTemplate) -> dict[str, Any]:
    return TaskTemplatePublic.model_validate(row).model_dump(mode="json", by_alias=True)


def check(field: str, text: str | None) -> None:
    if text is not None:
        try:
            validate(text)
        except TemplateError as exc:
            raise InvalidInputError(f"Invalid template in {field}: {exc}") from exc


async def commit(session: SessionDep, name: str | None) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ConflictError(f'A template named "{name}" already exists') from exc


@router.get("/api/prompt-templates", response_model=PromptTemplatesPublic)
async def list_prompts(
    principal: CurrentPrincipal,
    session: SessionDep,
    kind: Annotated[str | None, Query(pattern="^(prompt|review|job|task)$")] = None,
) -> dict[str, Any]:
    stmt = scoped_select(PromptTemplate, workspace_id=principal.workspace_id)
    if kind:
        stmt = stmt.where(PromptTemplate.kind == kind)
    rows = (await session.execute(stmt.order_by(PromptTemplate.name))).scalars()
    return {"templates": [prompt_public(r) for r in rows]}


@router.get("/api/prompt-templates/builtin-default", response_model=DefaultTemplatePublic)
async def builtin_default() -> dict[str, str]:
    return {"template": BUILTIN_PROMPT_TEMPLATE}


@router.get("/api/prompt-templates/review-default", response_model=DefaultTemplatePublic)
async def review_default() -> dict[str, str]:
    return {"template": BUILTIN_REVIEW_TEMPLATE}


@router.get("/api/prompt-templates/effective", response_model=EffectivePromptPublic)
async def effective(
    principal: CurrentPrincipal,
    session: SessionDep,
    repo_url: Annotated[str | None, Query(alias="repoUrl", max_length=2000)] = None,
) -> dict[str, Any]:
    url = await canonical_repo_url(repo_url) if repo_url else None
    chosen = await effective_prompt_template(
        session, workspace_id=principal.workspace_id, repo_url=url
    )
    repo = (
        await find_repo(session, workspace_id=principal.workspace_id, repo_url=url) if url else None
    )
    return {
        "template": chosen.template,
        "source": chosen.source,
        "templateId": chosen.template_id,
        "autoMerge": repo.auto_merge if repo else chosen.auto_merge,
        "cautiousMode": bool(repo and repo.cautious_mode),
    }


@router.post(
    "/api/prompt-templates",
    status_code=201,
    dependencies=[MEMBER],
    response_model=PromptTemplateSaved,
    # `ok` is there only for a saved default: what the route leaves out stays out.
    response_model_exclude_unset=True,
)
async def create_prompt(
    body: PromptTemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    check("template", body.template)
    if body.name:
        return {"template": await _named(body, principal, session)}
    # The reference's form: save the workspace default or a repo's override (upsert).
    kind = "review" if body.is_review else body.kind
    url = await canonical_repo_url(body.repo_url) if body.repo_url else None
    name = f"default:{kind}" + (f":{url}" if url else "")
    stmt = scoped_select(PromptTemplate, workspace_id=principal.workspace_id)
    row = (await session.execute(stmt.where(PromptTemplate.name == name))).scalar_one_or_none()
    if row is None:
        row = PromptTemplate(
            workspace_id=principal.workspace_id, name=name, kind=kind, is_default=True, repo_url=url
        )
        session.add(row)
    row.template = body.template
    row.auto_merge = bool(body.auto_merge)
    await commit(session, name)
    return {"ok": True, "template": prompt_public(row)}


@router.post(
    "/api/prompt-templates/named",
    status_code=201,
    dependencies=[MEMBER],
    response_model=PromptTemplateEnvelope,
)
async def create_named(
    body: PromptTemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    check("template", body.template)
    if not body.name:
        raise InvalidInputError(
            "Invalid fields: name", details=[{"field": "name", "message": "required"}]
        )
    return {"template": await _named(body, principal, session)}


async def _named(
    body: PromptTemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = PromptTemplate(
        workspace_id=principal.workspace_id,
        name=body.name,
        template=body.template,
        kind=body.kind,
        description=body.description,
        params_schema=body.params_schema,
        default_agent_type=body.default_agent_type,
        is_default=False,
        auto_merge=bool(body.auto_merge),
    )
    session.add(row)
    await commit(session, body.name)
    return prompt_public(row)


async def _prompt(session: SessionDep, principal: CurrentPrincipal, id: str) -> PromptTemplate:
    return await get_scoped(
        session, PromptTemplate, row_id=id, workspace_id=principal.workspace_id, label="Template"
    )


@router.get("/api/prompt-templates/{template_id}", response_model=PromptTemplateEnvelope)
async def read_prompt(
    template_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    return {"template": prompt_public(await _prompt(session, principal, template_id))}


@router.patch(
    "/api/prompt-templates/{template_id}",
    dependencies=[MEMBER],
    response_model=PromptTemplateEnvelope,
)
async def update_prompt(
    template_id: str, body: PromptTemplateUpdate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = await _prompt(session, principal, template_id)
    changes = body.model_dump(exclude_unset=True)
    check("template", changes.get("template"))
    apply_changes(row, changes)
    await commit(session, row.name)
    return {"template": prompt_public(row)}


@router.delete("/api/prompt-templates/{template_id}", status_code=204, dependencies=[MEMBER])
async def delete_prompt(
    template_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await session.delete(await _prompt(session, principal, template_id))
    await session.commit()
    return Response(status_code=204)


@router.post("/api/prompt-templates/{template_id}/preview", response_model=PreviewPublic)
async def preview(
    template_id: str, body: PreviewBody, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, str]:
    row = await _prompt(session, principal, template_id)
    return {"rendered": render_user_template(row.template, body.params)}


@router.get("/api/task-templates", response_model=TaskTemplatesPublic)
async def list_task_templates(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    stmt = scoped_select(TaskTemplate, workspace_id=principal.workspace_id)
    rows = (await session.execute(stmt.order_by(TaskTemplate.name))).scalars()
    return {"templates": [task_public(r) for r in rows]}


@router.post(
    "/api/task-templates",
    status_code=201,
    dependencies=[MEMBER],
    response_model=TaskTemplateEnvelope,
)
async def create_task_template(
    body: TaskTemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    check("prompt", body.prompt)
    check("title", body.title)
    values = body.model_dump()
    if body.repo_url:
        values["repo_url"] = await canonical_repo_url(body.repo_url)
    row = TaskTemplate(workspace_id=principal.workspace_id, **values)
    session.add(row)
    await commit(session, body.name)
    return {"template": task_public(row)}


async def _task_template(session: SessionDep, principal: CurrentPrincipal, id: str) -> TaskTemplate:
    return await get_scoped(
        session, TaskTemplate, row_id=id, workspace_id=principal.workspace_id, label="Template"
    )


@router.get("/api/task-templates/{template_id}", response_model=TaskTemplateEnvelope)
async def read_task_template(
    template_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    return {"template": task_public(await _task_template(session, principal, template_id))}


@router.patch(
    "/api/task-templates/{template_id}", dependencies=[MEMBER], response_model=TaskTemplateEnvelope
)
async def update_task_template(
    template_id: str, body: TaskTemplateUpdate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = await _task_template(session, principal, template_id)
    changes = body.model_dump(exclude_unset=True)
    check("prompt", changes.get("prompt"))
    check("title", changes.get("title"))
    if changes.get("repo_url"):
        changes["repo_url"] = await canonical_repo_url(changes["repo_url"])
    apply_changes(row, changes)
    await commit(session, row.name)
    return {"template": task_public(row)}


@router.delete("/api/task-templates/{template_id}", status_code=204, dependencies=[MEMBER])
async def delete_task_template(
    template_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await session.delete(await _task_template(session, principal, template_id))
    await session.commit()
    return Response(status_code=204)
