"""Table-driven tests for the PR decision (inventory §2.2)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.pr_decision import (
    RESUME_TRIGGERS,
    PrDecision,
    PrMemory,
    PrPolicy,
    PrView,
    ResumeReason,
    combine_prompts,
    decide,
    resume_prompt,
)

OPEN = PrView(state="open", mergeable=True, checks_status="pending", review_status="none")
# Auto-resume on, auto-merge off: the default for most cases below.
RESUME = PrPolicy(auto_merge=False, cautious_mode=False, auto_resume=True, max_auto_resumes=3)
MANUAL = dataclasses.replace(RESUME, auto_resume=False)
MERGE = dataclasses.replace(MANUAL, auto_merge=True)
SEEN = PrMemory(
    previous_checks_status="pending",
    previous_review_status="none",
    auto_resume_count=0,
    task_failed=False,
)
FIRST = dataclasses.replace(SEEN, previous_checks_status=None, previous_review_status=None)
FAILED = dataclasses.replace(SEEN, task_failed=True)


def pr(**changes: Any) -> PrView:
    return dataclasses.replace(OPEN, **changes)


def mem(base: PrMemory = SEEN, **changes: Any) -> PrMemory:
    return dataclasses.replace(base, **changes)


def resume(reason: ResumeReason, trigger: str, record: str | None) -> PrDecision:
    return PrDecision(
        kind="resume_agent", trigger=trigger, resume_reason=reason, checks_status_to_record=record
    )


def wait(record: str | None) -> PrDecision:
    return PrDecision(kind="wait", checks_status_to_record=record)


CASES: list[tuple[str, PrView, PrPolicy, PrMemory, PrDecision]] = [
    # -- terminal PR states --
    (
        "merged completes",
        pr(state="merged", checks_status="passing"),
        RESUME,
        SEEN,
        PrDecision(kind="complete", trigger="pr_merged", checks_status_to_record="passing"),
    ),
    (
        "merged completes a failed task too",
        pr(state="merged", checks_status="failing", mergeable=False),
        RESUME,
        FAILED,
        PrDecision(kind="complete", trigger="pr_merged", checks_status_to_record="failing"),
    ),
    (
        "merged beats sticky conflicts",
        pr(state="merged", mergeable=None),
        MERGE,
        mem(previous_checks_status="conflicts"),
        PrDecision(kind="complete", trigger="pr_merged", checks_status_to_record="pending"),
    ),
    (
        "closed fails",
        pr(state="closed", checks_status="failing"),
        RESUME,
        SEEN,
        PrDecision(
            kind="fail",
            trigger="pr_closed",
            checks_status_to_record="failing",
            message="PR was closed without merging",
        ),
    ),
    ("closed on a failed task waits", pr(state="closed"), RESUME, FAILED, PrDecision(kind="wait")),
    # -- conflicts (edge, sticky) --
    (
        "conflicts resume the agent",
        pr(mergeable=False),
        RESUME,
        SEEN,
        resume("conflicts", "merge_conflicts", "conflicts"),
    ),
    (
        "conflicts on first sighting",
        pr(mergeable=False, checks_status="passing"),
        RESUME,
        FIRST,
        resume("conflicts", "merge_conflicts", "conflicts"),
    ),
    (
        "conflicts beat failing CI",
        pr(mergeable=False, checks_status="failing"),
        RESUME,
        SEEN,
        resume("conflicts", "merge_conflicts", "conflicts"),
    ),
    (
        "conflicts after failing CI still fire",
        pr(mergeable=False, checks_status="failing"),
        RESUME,
        mem(previous_checks_status="failing"),
        resume("conflicts", "merge_conflicts", "conflicts"),
    ),
    (
        "sticky conflicts wait",
        pr(mergeable=False, checks_status="failing", review_status="changes_requested"),
        RESUME,
        mem(previous_checks_status="conflicts"),
        wait("conflicts"),
    ),
    (
        "sticky conflicts block auto-merge",
        pr(mergeable=False, checks_status="passing"),
        MERGE,
        mem(previous_checks_status="conflicts"),
        wait("conflicts"),
    ),
    (
        "conflicts resolved, unknown mergeability, checks pending: record pending",
        pr(mergeable=None),
        RESUME,
        mem(previous_checks_status="conflicts"),
        wait("pending"),
    ),
    (
        "conflicts resolved and CI failing: a new CI edge",
        pr(checks_status="failing"),
        RESUME,
        mem(previous_checks_status="conflicts"),
        resume("ci_failure", "ci_failing", "failing"),
    ),
    # -- CI failing (edge) --
    (
        "CI newly failing resumes",
        pr(checks_status="failing"),
        RESUME,
        SEEN,
        resume("ci_failure", "ci_failing", "failing"),
    ),
    (
        "CI failing on first sighting resumes",
        pr(checks_status="failing"),
        RESUME,
        FIRST,
        resume("ci_failure", "ci_failing", "failing"),
    ),
    (
        "CI failing -> failing does not re-trigger",
        pr(checks_status="failing"),
        RESUME,
        mem(previous_checks_status="failing"),
        wait("failing"),
    ),
    (
        "CI failing -> failing does not merge",
        pr(checks_status="failing"),
        MERGE,
        mem(previous_checks_status="failing"),
        wait("failing"),
    ),
    (
        "CI failing beats a new review",
        pr(checks_status="failing", review_status="changes_requested"),
        RESUME,
        SEEN,
        resume("ci_failure", "ci_failing", "failing"),
    ),
    # -- auto-merge --
    (
        "failing -> passing merges",
        pr(checks_status="passing"),
        MERGE,
        mem(previous_checks_status="failing"),
        PrDecision(kind="merge", trigger="auto_merged", checks_status_to_record="passing"),
    ),
    (
        "no checks merges",
        pr(checks_status="none"),
        MERGE,
        FIRST,
        PrDecision(kind="merge", trigger="auto_merged", checks_status_to_record="none"),
    ),
    (
        "unknown mergeability merges",
        pr(checks_status="passing", mergeable=None),
        MERGE,
        SEEN,
        PrDecision(kind="merge", trigger="auto_merged", checks_status_to_record="passing"),
    ),
    (
        "merge does not need approval and beats a change request",
        pr(checks_status="passing", review_status="changes_requested"),
        MERGE,
        SEEN,
        PrDecision(kind="merge", trigger="auto_merged", checks_status_to_record="passing"),
    ),
    (
        "a failed task with green CI still merges",
        pr(checks_status="passing"),
        MERGE,
        FAILED,
        PrDecision(kind="merge", trigger="auto_merged", checks_status_to_record="passing"),
    ),
    (
        "pending checks block merge",
        pr(checks_status="pending"),
        MERGE,
        SEEN,
        wait("pending"),
    ),
    (
        "cautious mode blocks merge",
        pr(checks_status="passing"),
        dataclasses.replace(MERGE, cautious_mode=True),
        SEEN,
        wait("passing"),
    ),
    ("auto-merge off: passing waits", pr(checks_status="passing"), RESUME, SEEN, wait("passing")),
    # -- review changes requested (edge) --
    (
        "changes requested resumes",
        pr(review_status="changes_requested", checks_status="passing"),
        RESUME,
        mem(previous_review_status="approved"),
        resume("review", "review_changes_requested", "passing"),
    ),
    (
        "changes requested on first sighting resumes",
        pr(review_status="changes_requested"),
        RESUME,
        FIRST,
        resume("review", "review_changes_requested", "pending"),
    ),
    (
        "changes requested -> changes requested does not re-trigger",
        pr(review_status="changes_requested"),
        RESUME,
        mem(previous_review_status="changes_requested"),
        wait("pending"),
    ),
    (
        "cautious mode: changes requested still resumes",
        pr(review_status="changes_requested", checks_status="passing"),
        dataclasses.replace(RESUME, auto_merge=True, cautious_mode=True),
        SEEN,
        resume("review", "review_changes_requested", "passing"),
    ),
    # -- steady state --
    ("first sighting, pending: wait", OPEN, RESUME, FIRST, wait("pending")),
    ("approved, auto-merge off: wait", pr(review_status="approved"), RESUME, SEEN, wait("pending")),
]


@pytest.mark.parametrize(
    ("view", "policy", "memory", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(view: PrView, policy: PrPolicy, memory: PrMemory, expected: PrDecision) -> None:
    assert decide(pr=view, policy=policy, memory=memory) == expected


# Each edge, when auto-resume is not allowed, escalates to a human with the same trigger.
EDGES: list[tuple[str, PrView, str, str]] = [
    ("conflicts", pr(mergeable=False), "merge_conflicts", "conflicts"),
    ("ci", pr(checks_status="failing"), "ci_failing", "failing"),
    ("review", pr(review_status="changes_requested"), "review_changes_requested", "pending"),
]
BLOCKERS: list[tuple[str, PrPolicy, PrMemory, str]] = [
    ("auto-resume off", MANUAL, SEEN, "Auto-resume is off"),
    ("cap reached", RESUME, mem(auto_resume_count=3), "cap of 3"),
    ("cap exceeded", RESUME, mem(auto_resume_count=7), "cap of 3"),
    ("zero cap", dataclasses.replace(RESUME, max_auto_resumes=0), SEEN, "cap of 0"),
    ("task failed", RESUME, FAILED, "has failed"),
]


@pytest.mark.parametrize(
    ("view", "trigger", "record"), [e[1:] for e in EDGES], ids=[e[0] for e in EDGES]
)
@pytest.mark.parametrize(
    ("policy", "memory", "why"), [b[1:] for b in BLOCKERS], ids=[b[0] for b in BLOCKERS]
)
def test_edges_escalate_when_resume_not_allowed(
    view: PrView, trigger: str, record: str, policy: PrPolicy, memory: PrMemory, why: str
) -> None:
    decision = decide(pr=view, policy=policy, memory=memory)
    assert decision.kind == "needs_attention"
    assert decision.trigger == trigger
    assert decision.resume_reason is None
    assert decision.checks_status_to_record == record
    assert decision.message is not None and why in decision.message


def test_one_below_cap_still_resumes() -> None:
    decision = decide(
        pr=pr(checks_status="failing"), policy=RESUME, memory=mem(auto_resume_count=2)
    )
    assert decision.kind == "resume_agent"


def test_every_resume_reason_has_an_auto_resume_trigger() -> None:
    assert RESUME_TRIGGERS == {
        "ci_failure": "auto_resume_ci-fix",
        "conflicts": "auto_resume_conflicts",
        "review": "auto_resume_review",
    }
    # The auto-resume cap counts events by this prefix.
    assert all(t.startswith("auto_resume_") for t in RESUME_TRIGGERS.values())


def test_conflicts_prompt_names_the_base_branch() -> None:
    text = resume_prompt(reason="conflicts", base_branch="develop", review_comments=None)
    assert "`git fetch origin && git rebase origin/develop`" in text
    assert "resolve the conflicts" in text.lower()
    assert "tests" in text
    assert "`git push --force-with-lease`" in text


def test_ci_prompt() -> None:
    assert resume_prompt(reason="ci_failure", base_branch="main", review_comments="x") == (
        "CI checks are failing on your PR. Investigate which checks failed, fix the code, and push."
    )


def test_review_prompt_includes_comments() -> None:
    text = resume_prompt(reason="review", base_branch="main", review_comments="Rename foo.")
    assert text == (
        "A reviewer requested changes on the PR. Please address the following feedback:\n\n"
        "Rename foo."
    )


@pytest.mark.parametrize("comments", [None, ""])
def test_review_prompt_without_comments_points_at_the_pr(comments: str | None) -> None:
    text = resume_prompt(reason="review", base_branch="main", review_comments=comments)
    assert text.startswith("A reviewer requested changes on the PR.")
    assert text.rstrip().endswith("read them on the PR.)")


def test_combine_prompts() -> None:
    assert combine_prompts(resume_prompt="Fix CI.", original_prompt="Add a flag.") == (
        "Fix CI.\n\n---\n\nOriginal task prompt for context:\nAdd a flag."
    )


def test_inputs_and_outputs_are_frozen() -> None:
    decision = decide(pr=OPEN, policy=RESUME, memory=SEEN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.kind = "merge"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPEN.state = "closed"  # type: ignore[misc]
