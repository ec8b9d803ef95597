"""Review agents (inventory §2.4): launch a review subtask, then post its verdict on the PR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.forge_access import is_remote
from activities.remote_prs import RemotePullRequests, Target
from core.settings import Settings
from core.templating import render
from integrations.forges.base import InlineComment, ReviewDraft, ReviewEvent, tail
from schemas.workflow import (
    LaunchReviewInput,
    LaunchReviewResult,
    ReviewInput,
    ReviewVerdictInput,
    ReviewVerdictResult,
)
from store.db import transaction
from store.graph import next_subtask_order
from store.models import Task
from store.tasks import find_repo

DRAFT_FILE = ".optio/review-draft.json"
DIFF_CHARS = 60_000
EVENTS: dict[str, ReviewEvent] = {
    "approve": "APPROVE",
    "request_changes": "REQUEST_CHANGES",
    "comment": "COMMENT",
}
OPEN_STATES = {"pending", "queued", "provisioning", "running", "needs_attention"}

DEFAULT_REVIEW_PROMPT = """You are reviewing pull request #{{PR_NUMBER}} of {{REPO_NAME}}: \
"{{TASK_TITLE}}".

The task, the PR description, the diff and the discussion so far are below (and in \
{{TASK_FILE}}). Check correctness, tests{{#if TEST_COMMAND}} (`{{TEST_COMMAND}}`){{/if}}, \
security and readability. Do not push commits.

Write your verdict as JSON to .optio/review-draft.json:
{"verdict": "approve" | "request_changes" | "comment", "summary": "...",
 "fileComments": [{"path": "src/x.py", "line": 12, "body": "..."}]}
"""


def review_workflow_id(review_task_id: str) -> str:
    return f"review-{review_task_id}"


class ReviewActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.remote = RemotePullRequests(settings=settings, sessions=sessions)

    async def _context(self, parent: Task, target: Target | None) -> str:
        """The review's context: task prompt, PR description, diff, reviews and comments."""
        parts = [f"# Task\n\n{parent.prompt}", f"# Pull request\n\n{parent.pr_url}"]
        if target is not None and parent.pr_number is not None:
            async with self.remote.forge(target) as forge:
                pr = await forge.get_pr(parent.pr_number)
                parts.append(f"## Description\n\n{pr.body}")
                parts.append(
                    f"## Diff\n\n```diff\n{tail(await forge.diff(pr.number), DIFF_CHARS)}\n```"
                )
                reviews = [
                    f"- {r.author} ({r.state}): {r.body}" for r in await forge.reviews(pr.number)
                ]
                parts.append("## Reviews\n\n" + ("\n".join(reviews) or "(none)"))
                comments = await forge.inline_comments(pr.number)
                lines = [f"- {c.path}:{c.line} - {c.body}" for c in comments]
                parts.append("## Inline comments\n\n" + ("\n".join(lines) or "(none)"))
                talk = [f"- {c}" for c in await forge.discussion(pr.number)]
                parts.append("## Discussion\n\n" + ("\n".join(talk) or "(none)"))
        return "\n\n".join(parts)

    @activity.defn
    async def launch_review(self, input: LaunchReviewInput) -> LaunchReviewResult:
        """Create the review subtask (blocksParent) and start its ReviewWorkflow, once."""
        async with self.sessions() as session:
            parent = await session.get(Task, input.parent_task_id)
            if parent is None or parent.pr_url is None:
                return LaunchReviewResult(None, "The task has no pull request to review")
            repo = await find_repo(
                session, workspace_id=parent.workspace_id, repo_url=parent.repo_url
            )
        target = Target(task=parent, repo=repo) if repo is not None and is_remote(repo) else None
        context = await self._context(parent, target)
        variables: dict[str, Any] = {
            "PR_NUMBER": parent.pr_number,
            "TASK_FILE": ".optio/task.md",
            "REPO_NAME": repo.full_name if repo else parent.repo_url,
            "TASK_TITLE": parent.title,
            "TEST_COMMAND": (repo.test_command if repo else None) or "",
            "GIT_PLATFORM_GITLAB": bool(repo and repo.git_platform == "gitlab"),
        }
        template = (repo.review_prompt_template if repo else None) or DEFAULT_REVIEW_PROMPT
        prompt = render(template, variables)
        if parent.agent_type != "script":
            prompt = f"{prompt}\n\n---\n\n{context}"  # a script's prompt is its code
        async with transaction(self.sessions) as session:
            stmt = select(Task).where(
                Task.parent_task_id == parent.id,
                Task.task_type == "review",
                Task.state.in_(OPEN_STATES),
            )
            review = (await session.execute(stmt)).scalars().first()
            if review is None:
                review = Task(
                    workspace_id=parent.workspace_id,
                    title=f"Review: {parent.title}",
                    prompt=prompt,
                    repo_url=parent.repo_url,
                    # The reviewer reads the PR's code: its branch is the base of the worktree.
                    repo_branch=f"optio/task-{parent.id}",
                    state="queued",
                    agent_type=parent.agent_type,
                    task_type="review",
                    parent_task_id=parent.id,
                    blocks_parent=True,
                    subtask_order=await next_subtask_order(session, parent_id=parent.id),
                    priority=10,
                    max_retries=0,
                    created_by=input.user_id or parent.created_by,
                    metadata_={"reviewOf": parent.id},
                )
                session.add(review)
                await session.flush()
            review_id = review.id
        from workflows.review import ReviewWorkflow

        try:
            await activity.client().start_workflow(
                ReviewWorkflow.run,
                ReviewInput(task_id=review_id, parent_task_id=parent.id),
                id=review_workflow_id(review_id),
                task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # a retried activity: the review is already under way
        return LaunchReviewResult(review_task_id=review_id)

    @activity.defn
    async def post_verdict(self, input: ReviewVerdictInput) -> ReviewVerdictResult:
        """Post the agent's verdict as a real review, which the PR watcher then sees."""
        draft_path = self.settings.worktrees_dir / f"task-{input.task_id}" / DRAFT_FILE
        draft = _read_draft(draft_path)
        async with self.sessions() as session:
            parent = await session.get(Task, input.parent_task_id)
            if parent is None:
                raise ApplicationError("Parent task was deleted", non_retryable=True)
            repo = await find_repo(
                session, workspace_id=parent.workspace_id, repo_url=parent.repo_url
            )
        if repo is None or not is_remote(repo) or parent.pr_number is None:
            # The local forge keeps no reviews: the verdict stays on the subtask.
            return ReviewVerdictResult(posted=False, verdict=draft.event, message=draft.body)
        target = Target(task=parent, repo=repo)
        async with self.remote.forge(target) as forge:
            pr = await forge.get_pr(parent.pr_number)
            await forge.submit_review(pr.number, draft=draft, sha=pr.head_sha)
        return ReviewVerdictResult(posted=True, verdict=draft.event, message=draft.body[:500])


def _read_draft(path: Path) -> ReviewDraft:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApplicationError(
            f"The review agent wrote no readable {DRAFT_FILE}: {exc}",
            type="ReviewDraftMissing",
            non_retryable=True,
        ) from exc
    event = EVENTS.get(str(data.get("verdict", "comment")).lower(), "COMMENT")
    comments = [
        InlineComment(path=str(c["path"]), line=int(c.get("line") or 1), body=str(c["body"]))
        for c in data.get("fileComments") or []
        if isinstance(c, dict) and c.get("path") and c.get("body")
    ]
    return ReviewDraft(event=event, body=str(data.get("summary") or ""), comments=comments)
