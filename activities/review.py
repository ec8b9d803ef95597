"""Review agents (inventory §2.4): launch a review subtask, prepare its run, post its verdict."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.forge_access import is_remote
from activities.remote_prs import RemotePullRequests, Target
from core.script_params import SCRIPT_AGENT, render_script
from core.settings import Settings
from core.templating import TemplateError, render
from integrations.forges.base import (
    ForgeError,
    InlineComment,
    ReviewDraft,
    ReviewEvent,
    tail,
)
from integrations.forges.github import GitHubForge
from integrations.forges.gitlab import GitLabForge
from schemas.workflow import (
    LaunchReviewInput,
    LaunchReviewResult,
    ReviewVerdictInput,
    ReviewVerdictResult,
)
from store.db import transaction
from store.graph import new_review_subtask, next_subtask_order, open_review_of
from store.models import Task
from store.secrets import resolve_secret
from store.tasks import find_repo
from store.templates import effective_prompt_template
from temporal.starts import start_review_workflow

TASK_FILE = ".optio/task.md"
# The repository's test command is code its members wrote, like the review script; the
# PR's title and the rest are data.
REVIEW_CODE = frozenset({"TEST_COMMAND"})
DRAFT_FILE = ".optio/review-draft.json"
DIFF_CHARS = 60_000
MAX_TURNS_REVIEW = 30
EVENTS: dict[str, ReviewEvent] = {
    "approve": "APPROVE",
    "request_changes": "REQUEST_CHANGES",
    "comment": "COMMENT",
}
# A reviewer account of its own: GitHub refuses to let a PR's author approve it.
REVIEW_TOKEN_NAMES = {"github": "GITHUB_REVIEW_TOKEN", "gitlab": "GITLAB_REVIEW_TOKEN"}

# Appended for real agents (a script agent's prompt is its code): where the verdict goes.
VERDICT_INSTRUCTIONS = f"""

Do not commit or push: Optio posts your verdict on the pull request. Write it as JSON to \
{DRAFT_FILE}:
{{"verdict": "approve" | "request_changes" | "comment", "summary": "...",
 "fileComments": [{{"path": "src/x.py", "line": 12, "body": "..."}}]}}
"""


@dataclass(frozen=True)
class ReviewRun:
    """What a review run needs beyond a coding run's spec."""

    prompt: str  # the rendered review template (a script agent's code)
    context: str  # .optio/task.md: task prompt, PR description, diff, reviews, comments
    head_branch: str  # the PR's head, checked out read-only


class ReviewActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.remote = RemotePullRequests(settings=settings, sessions=sessions)

    async def prepare_run(self, task_id: str) -> ReviewRun | None:
        """The review template and context of a review subtask's run; None for other tasks.

        Rendered when the run starts, so the agent sees the PR as it is then.
        """
        async with self.sessions() as session:
            review = await session.get(Task, task_id)
            if review is None or review.task_type != "review" or not review.parent_task_id:
                return None
            parent = await session.get(Task, review.parent_task_id)
            if parent is None:
                raise ApplicationError("Parent task was deleted", non_retryable=True)
            repo = await find_repo(
                session, workspace_id=parent.workspace_id, repo_url=parent.repo_url
            )
            template = (repo.review_prompt_template if repo else None) or (
                await effective_prompt_template(
                    session,
                    workspace_id=parent.workspace_id,
                    repo_url=parent.repo_url,
                    kind="review",
                )
            ).template
        variables: dict[str, Any] = {
            "PR_NUMBER": parent.pr_number,
            "TASK_FILE": TASK_FILE,
            "OUTPUT_PATH": DRAFT_FILE,
            "REPO_NAME": repo.full_name if repo else parent.repo_url,
            "TASK_TITLE": parent.title,
            "TEST_COMMAND": (repo.test_command if repo else None) or "",
            "GIT_PLATFORM_GITLAB": bool(repo and repo.git_platform == "gitlab"),
        }
        try:
            # A script review runs its template: the PR's title must stay data there.
            prompt = (
                render_script(template, variables, keep_unknown=False, code=REVIEW_CODE)
                if review.agent_type == SCRIPT_AGENT
                else render(template, variables)
            )
        except TemplateError as exc:
            raise ApplicationError(
                f"The review prompt template is invalid: {exc}",
                type="TemplateError",
                non_retryable=True,
            ) from exc
        if review.agent_type != "script":
            prompt += VERDICT_INSTRUCTIONS
        target = Target(task=parent, repo=repo) if repo is not None and is_remote(repo) else None
        context, head = await self._context(parent, target)
        return ReviewRun(prompt=prompt, context=context, head_branch=head or review.repo_branch)

    async def _context(self, parent: Task, target: Target | None) -> tuple[str, str | None]:
        """The review's context, and the PR's head branch when the forge says which."""
        parts = [f"# Task: {parent.title}\n\n{parent.prompt}", f"# Pull request\n\n{parent.pr_url}"]
        head: str | None = None
        if target is not None and parent.pr_number is not None:
            async with self.remote.forge(target) as forge:
                pr = await forge.get_pr(parent.pr_number)
                head = pr.head_branch
                parts.append(f"## Description\n\n{pr.body or '(none)'}")
                diff = tail(await forge.diff(pr.number), DIFF_CHARS)
                parts.append(f"## Diff\n\n```diff\n{diff}\n```")
                reviews = [
                    f"- {r.author} ({r.state}): {r.body}" for r in await forge.reviews(pr.number)
                ]
                parts.append("## Reviews\n\n" + ("\n".join(reviews) or "(none)"))
                comments = await forge.inline_comments(pr.number)
                lines = [f"- {c.path}:{c.line} - {c.body}" for c in comments]
                parts.append("## Inline comments\n\n" + ("\n".join(lines) or "(none)"))
                talk = [f"- {c}" for c in await forge.discussion(pr.number)]
                parts.append("## Discussion\n\n" + ("\n".join(talk) or "(none)"))
        return "\n\n".join(parts) + "\n", head

    @activity.defn
    async def launch_review(self, input: LaunchReviewInput) -> LaunchReviewResult:
        """Create the review subtask (blocksParent) and start its ReviewWorkflow, once."""
        async with transaction(self.sessions) as session:
            parent = await session.get(Task, input.parent_task_id)
            if parent is None or parent.pr_url is None:
                return LaunchReviewResult(None, "The task has no pull request to review")
            review = await open_review_of(session, parent=parent)
            if review is None:
                review = new_review_subtask(
                    session,
                    parent=parent,
                    order=await next_subtask_order(session, parent_id=parent.id),
                    created_by=input.user_id or parent.created_by,
                )
                await session.flush()
            review_id, parent_id = review.id, parent.id
        # By name (temporal/starts.py): activities never import workflow classes.
        await start_review_workflow(
            activity.client(),
            review_task_id=review_id,
            parent_task_id=parent_id,
            task_queue=activity.info().task_queue,
        )
        return LaunchReviewResult(review_task_id=review_id)

    @activity.defn
    async def post_verdict(self, input: ReviewVerdictInput) -> ReviewVerdictResult:
        """Post the agent's verdict as a real review, which the PR watcher then sees."""
        draft_path = self.settings.worktrees_dir / f"task-{input.task_id}" / DRAFT_FILE
        draft = _read_draft(draft_path)
        async with self.sessions() as session:
            parent = await session.get(Task, input.parent_task_id)
            review = await session.get(Task, input.task_id)
            if parent is None or review is None:
                raise ApplicationError("The task was deleted", non_retryable=True)
            repo = await find_repo(
                session, workspace_id=parent.workspace_id, repo_url=parent.repo_url
            )
        if repo is None or not is_remote(repo) or parent.pr_number is None:
            # The local forge keeps no reviews: the verdict stays on the subtask.
            return ReviewVerdictResult(posted=False, verdict=draft.event, message=draft.body)
        async with self._reviewer(Target(task=parent, repo=repo), review) as forge:
            pr = await forge.get_pr(parent.pr_number)
            try:
                await forge.submit_review(pr.number, draft=draft, sha=pr.head_sha)
            except ForgeError as exc:
                # 422: the forge refuses this verdict (GitHub: "Can not approve your own pull
                # request"; an inline comment off the diff). Say it all in a comment instead.
                if exc.status != 422 or (draft.event == "COMMENT" and not draft.comments):
                    raise
                activity.logger.warning("review refused (%s); posting it as a comment", exc)
                await forge.submit_review(pr.number, draft=_as_comment(draft), sha=pr.head_sha)
                return ReviewVerdictResult(posted=True, verdict="COMMENT", message=draft.body[:500])
        return ReviewVerdictResult(posted=True, verdict=draft.event, message=draft.body[:500])

    @asynccontextmanager
    async def _reviewer(
        self, target: Target, review: Task
    ) -> AsyncIterator[GitHubForge | GitLabForge]:
        """The forge as the reviewer: GITHUB_REVIEW_TOKEN (or GITLAB_) if set, else as Optio."""
        name = REVIEW_TOKEN_NAMES.get(target.repo.git_platform)
        async with self.sessions() as session:
            token = (
                await resolve_secret(
                    session,
                    workspace_id=review.workspace_id,
                    name=name,
                    repo_url=review.repo_url,
                    user_id=review.created_by,
                    settings=self.settings,
                )
                if name
                else None
            )
        async with self.remote.forge(target, token=token) as forge:
            yield forge


def _as_comment(draft: ReviewDraft) -> ReviewDraft:
    verdict = {"APPROVE": "approve", "REQUEST_CHANGES": "request changes"}.get(draft.event)
    lines = [f"**Review verdict: {verdict}**\n" if verdict else "", draft.body]
    lines += [f"- {c.path}:{c.line} - {c.body}" for c in draft.comments]
    return ReviewDraft(event="COMMENT", body="\n".join(line for line in lines if line))


def _read_draft(path: Path) -> ReviewDraft:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApplicationError(
            f"The review agent wrote no readable {DRAFT_FILE}: {exc}",
            type="ReviewDraftMissing",
            non_retryable=True,
        ) from exc
    if not isinstance(data, dict):
        raise ApplicationError(
            f"{DRAFT_FILE} is not a JSON object", type="ReviewDraftMissing", non_retryable=True
        )
    event = EVENTS.get(str(data.get("verdict", "comment")).lower(), "COMMENT")
    comments = [
        InlineComment(path=str(c["path"]), line=int(c.get("line") or 1), body=str(c["body"]))
        for c in data.get("fileComments") or []
        if isinstance(c, dict) and c.get("path") and c.get("body")
    ]
    return ReviewDraft(event=event, body=str(data.get("summary") or ""), comments=comments)
