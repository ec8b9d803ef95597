"""User templates (blueprints, jobs, named prompt templates) and the effective prompt chain.

User templates follow the reference's `renderTemplateString` (inventory §3.14):
`{{param}}` is substituted, an unknown placeholder is LEFT INTACT (so a missing
param is visible in the prompt instead of silently vanishing), null renders as "",
and `{{#if param}}` blocks work as in core.templating. The agent's system prompt
uses core.templating directly, where unknown variables render empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core import templating

EffectiveSource = Literal["repo", "workspace", "builtin"]

BUILTIN_PROMPT_TEMPLATE = """{{#if PLANNING_MODE}}PLANNING MODE: write a plan only; \
do not commit or open a pull request.

{{/if}}You are an autonomous coding agent working on {{REPO_NAME}}.

Read the task in {{TASK_FILE}} and carry it out on branch {{BRANCH_NAME}}:
1. Understand the code involved and write tests first where it makes sense.
2. Implement the change.
3. Run the full build and test suite; fix what fails.
4. Commit your work to {{BRANCH_NAME}}.
{{#if DRAFT_PR}}Open the pull request as a draft.
{{/if}}Stop once the work is committed; Optio opens the pull request and watches CI.
Do not touch other optio/task-* branches.

Task {{TASK_ID}}: {{TASK_TITLE}}"""

BUILTIN_REVIEW_TEMPLATE = """You are reviewing pull request #{{PR_NUMBER}} on {{REPO_NAME}}.

Read the context in {{TASK_FILE}}, inspect the diff, run the tests{{#if TEST_COMMAND}} \
({{TEST_COMMAND}}){{/if}}, and give a verdict: approve, request changes, or comment.
Task: {{TASK_TITLE}}"""


def _escape(template: str, params: Mapping[str, object]) -> tuple[str, dict[str, str]]:
    """Replace unknown plain placeholders by markers so the renderer leaves them alone."""
    kept: dict[str, str] = {}

    def swap(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("#if") or token in ("else", "/if") or _known(params, token):
            return match.group(0)
        marker = f"\x00{len(kept)}\x00"
        kept[marker] = match.group(0)
        return marker

    return templating.TOKEN.sub(swap, template), kept


def _known(params: Mapping[str, object], name: str) -> bool:
    value: object = params
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return True


def render_user_template(
    template: str,
    params: Mapping[str, object],
    *,
    substitute: templating.Substitute | None = None,
) -> str:
    """Render a user template; raises templating.TemplateError for unbalanced blocks."""
    escaped, kept = _escape(template, params)
    if substitute is None:
        rendered = templating.render(escaped, params)
    else:
        rendered = templating.render(escaped, params, substitute=substitute)
    for marker, original in kept.items():
        rendered = rendered.replace(marker, original)
    return rendered


@dataclass(frozen=True)
class EffectivePrompt:
    template: str
    source: EffectiveSource
    template_id: str | None = None
    auto_merge: bool = False


def choose_effective(
    *,
    repo_override: EffectivePrompt | None,
    workspace_default: EffectivePrompt | None,
    builtin: str = BUILTIN_PROMPT_TEMPLATE,
) -> EffectivePrompt:
    """Repo override, else the workspace default, else the built-in template."""
    return repo_override or workspace_default or EffectivePrompt(template=builtin, source="builtin")
