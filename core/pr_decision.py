"""What a repo task does about its pull request (inventory §2.2, "decideFromPrStatus").

This module is imported by Temporal workflow code, so it must stay deterministic: standard
library only, no I/O, no clock, no randomness. The workflow observes the PR through an
activity, calls `decide`, and carries out the returned decision itself.

Most triggers are edge-triggered: they fire when a status *changes* into a bad value, not
while it stays there. The workflow therefore stores `checks_status_to_record` (and the
current review status) after every decision and passes them back as `PrMemory` next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PrState = Literal["open", "merged", "closed"]
ChecksStatus = Literal["none", "pending", "passing", "failing"]
ReviewStatus = Literal["none", "pending", "approved", "changes_requested"]
ResumeReason = Literal["ci_failure", "conflicts", "review"]
DecisionKind = Literal["complete", "fail", "merge", "resume_agent", "needs_attention", "wait"]

# Stored in place of the checks status while the PR cannot merge, so that the conflict is
# reported once (an edge) rather than on every poll.
CONFLICTS: Final = "conflicts"

# Task-event triggers for automatic resumes. The "auto_resume_" prefix matters: the
# auto-resume cap counts events with that prefix since the last human command.
RESUME_TRIGGERS: Final[dict[ResumeReason, str]] = {
    "ci_failure": "auto_resume_ci-fix",
    "conflicts": "auto_resume_conflicts",
    "review": "auto_resume_review",
}


@dataclass(frozen=True)
class PrView:
    """The PR as the code host reports it right now."""

    state: PrState
    # None while the host is still computing mergeability; treated as "not known to conflict".
    mergeable: bool | None
    checks_status: ChecksStatus
    review_status: ReviewStatus


@dataclass(frozen=True)
class PrPolicy:
    """The repo's settings that govern PR automation."""

    auto_merge: bool
    cautious_mode: bool
    auto_resume: bool
    max_auto_resumes: int
    # Beyond the reference: auto-merge also waits for an approving review.
    require_approval: bool = False


@dataclass(frozen=True)
class PrMemory:
    """What the task remembers from the previous observation of its PR."""

    # None on the first sighting of the PR; may hold the sticky value "conflicts".
    previous_checks_status: str | None
    previous_review_status: str | None
    # Automatic resumes since the last human command; bounds resume loops.
    auto_resume_count: int
    # The task is in state failed but still has a PR being watched.
    task_failed: bool


@dataclass(frozen=True)
class PrDecision:
    kind: DecisionKind
    trigger: str | None = None
    resume_reason: ResumeReason | None = None
    # What to store as the task's pr_checks_status; None means leave it unchanged.
    checks_status_to_record: str | None = None
    message: str | None = None


def decide(*, pr: PrView, policy: PrPolicy, memory: PrMemory) -> PrDecision:
    """Decide the task's next step from the PR's current view and the task's memory.

    The order of the checks is the reference order and is significant: a terminal PR state
    beats everything, conflicts beat CI (CI results on a conflicting PR are moot), and an
    auto-merge beats reacting to a review.
    """
    if pr.state == "merged":
        return PrDecision(
            kind="complete", trigger="pr_merged", checks_status_to_record=pr.checks_status
        )

    if pr.state == "closed":
        if memory.task_failed:
            # Already failed: failing again would only duplicate the event.
            return PrDecision(kind="wait")
        return PrDecision(
            kind="fail",
            trigger="pr_closed",
            checks_status_to_record=pr.checks_status,
            message="PR was closed without merging",
        )

    auto_resume_allowed = (
        policy.auto_resume
        # A failed task has no agent session to resume; a human must retry it.
        and not memory.task_failed
        and memory.auto_resume_count < policy.max_auto_resumes
    )

    if pr.mergeable is False:
        if memory.previous_checks_status == CONFLICTS:
            # Already reported; keep the sticky marker so we don't report it again.
            return PrDecision(kind="wait", checks_status_to_record=CONFLICTS)
        return _escalate(
            reason="conflicts",
            trigger="merge_conflicts",
            allowed=auto_resume_allowed,
            checks_status_to_record=CONFLICTS,
            problem="The PR has merge conflicts with its base branch.",
            policy=policy,
            memory=memory,
        )

    if pr.checks_status == "failing" and memory.previous_checks_status != "failing":
        return _escalate(
            reason="ci_failure",
            trigger="ci_failing",
            allowed=auto_resume_allowed,
            checks_status_to_record="failing",
            problem="CI checks are failing on the PR.",
            policy=policy,
            memory=memory,
        )

    # Pending checks are not "ok": merging before CI finishes would skip the gate. Review
    # approval is required only with requireApproval; the reference never requires it.
    checks_ok = pr.checks_status in ("passing", "none")
    approved = pr.review_status == "approved" or not policy.require_approval
    if checks_ok and approved and policy.auto_merge and not policy.cautious_mode:
        return PrDecision(
            kind="merge", trigger="auto_merged", checks_status_to_record=pr.checks_status
        )

    if (
        pr.review_status == "changes_requested"
        and memory.previous_review_status != "changes_requested"
    ):
        return _escalate(
            reason="review",
            trigger="review_changes_requested",
            allowed=auto_resume_allowed,
            checks_status_to_record=pr.checks_status,
            problem="A reviewer requested changes on the PR.",
            policy=policy,
            memory=memory,
        )

    return PrDecision(kind="wait", checks_status_to_record=pr.checks_status)


def _escalate(
    *,
    reason: ResumeReason,
    trigger: str,
    allowed: bool,
    checks_status_to_record: str,
    problem: str,
    policy: PrPolicy,
    memory: PrMemory,
) -> PrDecision:
    """Resume the agent if allowed, otherwise hand the problem to a human."""
    if allowed:
        return PrDecision(
            kind="resume_agent",
            trigger=trigger,
            resume_reason=reason,
            checks_status_to_record=checks_status_to_record,
        )
    return PrDecision(
        kind="needs_attention",
        trigger=trigger,
        checks_status_to_record=checks_status_to_record,
        message=f"{problem} {_why_not_resumed(policy=policy, memory=memory)}",
    )


def _why_not_resumed(*, policy: PrPolicy, memory: PrMemory) -> str:
    # Tells the human which knob to turn, since the fix differs per cause.
    if memory.task_failed:
        return "The task has failed, so the agent was not resumed automatically."
    if not policy.auto_resume:
        return "Auto-resume is off for this repo."
    return (
        f"The agent was not resumed: the cap of {policy.max_auto_resumes} automatic "
        "resumes since the last manual action has been reached."
    )


def resume_prompt(
    *,
    reason: ResumeReason,
    base_branch: str,
    review_comments: str | None,
    ci_failures: str | None = None,
) -> str:
    """The instruction given to a resumed agent for the given reason.

    The orchestrator fetches failing checks and review comments itself, so the agent needs
    no forge CLI or token to learn what went wrong.
    """
    if reason == "conflicts":
        return (
            f"The PR has merge conflicts with `{base_branch}`. Resolve them:\n"
            f"1. Run `git fetch origin && git rebase origin/{base_branch}`.\n"
            "2. Resolve the conflicts in each file, `git add` them, and continue with "
            "`git rebase --continue` until the rebase completes.\n"
            "3. Run the tests and fix anything the rebase broke.\n"
            "4. Push with `git push --force-with-lease`."
        )
    if reason == "ci_failure":
        intro = (
            "CI checks are failing on your PR. Investigate which checks failed, fix the code, "
            "and push."
        )
        return f"{intro}\n\n{ci_failures}" if ci_failures else intro
    # The comments can be missing if fetching them failed; the agent can still read the PR.
    feedback = review_comments or "(The review comments could not be loaded; read them on the PR.)"
    return (
        "A reviewer requested changes on the PR. Please address the following feedback:\n\n"
        f"{feedback}"
    )


def combine_prompts(*, resume_prompt: str, original_prompt: str) -> str:
    """Prefix the resume instruction to the original task, which the agent keeps as context."""
    return f"{resume_prompt}\n\n---\n\nOriginal task prompt for context:\n{original_prompt}"
