"""What a coding agent is told (inventory §3.14, §4.2): system prompt, task file, resumes.

The rendered template is the agent's prompt; the task itself lives in `.optio/task.md`,
which the template tells the agent to read. The orchestrator commits what is left,
pushes and opens the PR, so the agent is told to commit and never to open a PR.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.pr_decision import combine_prompts
from core.templating import render

TASK_FILE = ".optio/task.md"

DEFAULT_PROMPT_TEMPLATE = """\
{{#if PLANNING_MODE}}PLANNING MODE: write a plan for the task below and stop. Do not change \
code, commit or push.

{{/if}}You are an autonomous coding agent working on the repository {{REPO_NAME}}, on the \
branch `{{BRANCH_NAME}}` (task {{TASK_ID}}: {{TASK_TITLE}}).

Your task is described in `{{TASK_FILE}}`. Read it first.

How to work:
1. Understand the relevant code before changing it.
2. Write or update tests for the behaviour you change, then implement it.
3. Run the project's build and tests and fix what fails.
4. Commit your work on the current branch with clear messages{{#if ISSUE_NUMBER}} \
(mention #{{ISSUE_NUMBER}}){{/if}}.

Rules:
- Do not open a pull request and do not push: Optio pushes the branch and opens the \
{{#if DRAFT_PR}}draft {{/if}}{{#if GIT_PLATFORM_GITLAB}}merge request{{else}}pull \
request{{/if}} when you finish.
- Do not switch branches or touch other `optio/task-*` branches.
- Do not edit files under `.optio/`.
{{#if AUTO_MERGE}}- The change is merged automatically once checks pass: leave the branch \
in a state you would merge.
{{/if}}
When you are done, reply with a short summary of what changed and how you tested it.
"""


@dataclass(frozen=True)
class PromptContext:
    task_id: str
    title: str
    prompt: str
    repo_name: str
    branch: str
    auto_merge: bool = False
    draft_pr: bool = False
    issue_number: int | None = None
    gitlab: bool = False
    planning_mode: bool = False
    ticket_source: str | None = None
    ticket_url: str | None = None


def effective_template(*, repo_override: str | None, workspace_default: str | None) -> str:
    """Repo override, then the workspace's default, then the built-in template."""
    for template in (repo_override, workspace_default):
        if template and template.strip():
            return template
    return DEFAULT_PROMPT_TEMPLATE


def variables(ctx: PromptContext) -> dict[str, object]:
    return {
        "TASK_FILE": TASK_FILE,
        "BRANCH_NAME": ctx.branch,
        "TASK_ID": ctx.task_id,
        "TASK_TITLE": ctx.title,
        "REPO_NAME": ctx.repo_name,
        "AUTO_MERGE": ctx.auto_merge,
        "DRAFT_PR": ctx.draft_pr,
        "ISSUE_NUMBER": ctx.issue_number or "",
        "GIT_PLATFORM_GITLAB": ctx.gitlab,
        "PLANNING_MODE": ctx.planning_mode,
    }


def system_prompt(ctx: PromptContext, *, template: str) -> str:
    return render(template, variables(ctx)).strip()


def task_file(ctx: PromptContext, *, follow_up: str | None = None) -> str:
    """`.optio/task.md`: the reference's layout, plus the latest follow-up on a resume."""
    parts = [f"# {ctx.title}\n\n{ctx.prompt.strip()}\n"]
    if follow_up:
        parts.append(f"## Follow-up\n\n{follow_up.strip()}\n")
    footer = f"---\n*Optio Task ID: {ctx.task_id}*"
    if ctx.ticket_url:
        footer += f"\n*Source: [{ctx.ticket_source or 'ticket'}]({ctx.ticket_url})*"
    parts.append(footer + "\n")
    return "\n".join(parts)


def agent_prompt(
    ctx: PromptContext, *, template: str, resume_prompt: str | None, continues_session: bool
) -> str:
    """The prompt given on the command line.

    A resumed session already holds the system prompt and the task: it gets the new
    context plus the original task. A fresh session on a resume gets the rules too.
    """
    if not resume_prompt:
        return system_prompt(ctx, template=template)
    follow_up = combine_prompts(resume_prompt=resume_prompt, original_prompt=ctx.prompt)
    if continues_session:
        return follow_up
    return f"{system_prompt(ctx, template=template)}\n\n{follow_up}"
