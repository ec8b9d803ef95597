"""The agent's prompt, task file and resume prompts (inventory §3.14, §4.2)."""

from __future__ import annotations

from core.prompts import (
    DEFAULT_PROMPT_TEMPLATE,
    PromptContext,
    agent_prompt,
    effective_template,
    system_prompt,
    task_file,
)

CTX = PromptContext(
    task_id="t1", title="Add hello", prompt="Create hello.txt", repo_name="acme/web",
    branch="optio/task-t1", auto_merge=True, issue_number=12,
)  # fmt: skip


def test_default_template_tells_the_agent_to_commit_not_to_open_prs() -> None:
    text = system_prompt(CTX, template=DEFAULT_PROMPT_TEMPLATE)
    assert "`.optio/task.md`" in text and "acme/web" in text and "`optio/task-t1`" in text
    assert "Do not open a pull request and do not push" in text
    assert "(mention #12)" in text and "merged automatically" in text
    assert "Create hello.txt" not in text  # the task lives in the task file
    draft = system_prompt(
        PromptContext(**{**CTX.__dict__, "draft_pr": True, "gitlab": True}),
        template=DEFAULT_PROMPT_TEMPLATE,
    )
    assert "draft merge request" in draft
    planning = system_prompt(
        PromptContext(**{**CTX.__dict__, "planning_mode": True}), template=DEFAULT_PROMPT_TEMPLATE
    )
    assert planning.startswith("PLANNING MODE")


def test_repo_override_then_workspace_default_then_builtin() -> None:
    assert (
        effective_template(repo_override="R {{TASK_ID}}", workspace_default="W") == "R {{TASK_ID}}"
    )
    assert effective_template(repo_override="  ", workspace_default="W") == "W"
    assert effective_template(repo_override=None, workspace_default=None) == DEFAULT_PROMPT_TEMPLATE
    assert system_prompt(CTX, template="Task {{TASK_ID}} {{#if AUTO_MERGE}}auto{{/if}}") == (
        "Task t1 auto"
    )


def test_task_file_layout() -> None:
    assert task_file(CTX) == "# Add hello\n\nCreate hello.txt\n\n---\n*Optio Task ID: t1*\n"
    ticket = PromptContext(
        **{**CTX.__dict__, "ticket_source": "github", "ticket_url": "https://x/1"}
    )
    follow = task_file(ticket, follow_up="Fix CI")
    assert "## Follow-up\n\nFix CI\n" in follow and follow.endswith(
        "*Source: [github](https://x/1)*\n"
    )


def test_resume_prompts_carry_new_context_and_the_original_task() -> None:
    fresh = agent_prompt(CTX, template="SYS", resume_prompt=None, continues_session=False)
    assert fresh == "SYS"
    same = agent_prompt(CTX, template="SYS", resume_prompt="Fix CI", continues_session=True)
    assert same.startswith("Fix CI") and same.endswith(
        "Original task prompt for context:\nCreate hello.txt"
    )
    new = agent_prompt(CTX, template="SYS", resume_prompt="Fix CI", continues_session=False)
    assert new.startswith("SYS\n\nFix CI")
