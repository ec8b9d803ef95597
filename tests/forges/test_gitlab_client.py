"""The GitLab client against the double: idempotency, merges, reviews, pagination, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from integrations.forges.base import (
    EtagCache,
    ForgeError,
    InlineComment,
    RateLimited,
    RepoRef,
    ReviewDraft,
)
from integrations.forges.gitlab import GitLabForge
from integrations.forges.watch import PrObserver, review_status
from tests.forges.conftest import ALICE_TOKEN, OPTIO_TOKEN
from tests.forges.git_http import commit_file, git
from tests.forges.gitlab_double import GitLabDouble, Project

BRANCH = "optio/task-1"


def client(double: GitLabDouble, token: str = OPTIO_TOKEN) -> GitLabForge:
    return GitLabForge(
        ref=RepoRef.parse("http://forge.test/acme/app.git"),
        token=token,
        cache=EtagCache(),
        api_url="http://forge.test/api/v4",
        transport=httpx.ASGITransport(app=double.app),
    )


def raw(double: GitLabDouble) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="http://forge.test/api/v4", transport=httpx.ASGITransport(app=double.app)
    )


@pytest.fixture
def double(tmp_path: Path, make_repo: Callable[..., Path]) -> GitLabDouble:
    gl = GitLabDouble(tmp_path / "gl", users={OPTIO_TOKEN: "optio-bot", ALICE_TOKEN: "alice"})
    gl.base_url = "http://forge.test"
    project = gl.add_project("acme", "app", make_repo())
    commit_file(project.path, branch="main", path="x", content="1\n", message="x")
    git(project.path, "branch", BRANCH, "main~1")
    commit_file(project.path, branch=BRANCH, path="y", content="2\n", message="y")
    return gl


def project_of(double: GitLabDouble) -> Project:
    return double.projects["acme/app"]


async def test_open_is_idempotent_and_unchanged_polls_are_conditional(
    double: GitLabDouble,
) -> None:
    gl = client(double)
    first = await gl.open_pr(head=BRANCH, base="main", title="t", body="b", draft=False)
    again = await gl.open_pr(head=BRANCH, base="main", title="t", body="b", draft=False)
    assert first.number == again.number == 1 and len(project_of(double).mrs) == 1
    assert first.url == "http://forge.test/acme/app/-/merge_requests/1"
    async with raw(double) as http:
        refused = await http.post(
            "/projects/acme%2Fapp/merge_requests",
            json={"source_branch": BRANCH, "target_branch": "main", "title": "t"},
            headers={"PRIVATE-TOKEN": OPTIO_TOKEN},
        )
    assert refused.status_code == 409
    assert "already exists for this source branch" in refused.json()["message"][0]
    observer = PrObserver(gl, 1)
    # GitLab checks mergeability in the background: unknown first, then known.
    assert (await observer.observe()).mergeable is None
    snapshot = await observer.observe()
    assert snapshot.state == "open" and snapshot.mergeable is True
    assert snapshot.checks_status == "none"
    before = double.not_modified
    for _ in range(10):
        assert await observer.observe() == snapshot
    assert double.not_modified - before >= 10
    assert gl.http.counters.not_modified == double.not_modified
    # Unlike GitHub, GitLab counts conditional requests against the limit too.
    assert double.rate_limit - double.remaining[OPTIO_TOKEN] == gl.http.counters.requests + 1


async def test_a_cautious_draft_is_not_merged(double: GitLabDouble) -> None:
    gl = client(double)
    pr = await gl.open_pr(head=BRANCH, base="main", title="t", body="b", draft=True)
    mr = project_of(double).mrs[pr.number]
    assert pr.draft and mr.title == "Draft: t"
    outcome = await gl.merge(pr.number, method="squash", sha=None)
    assert not outcome.merged and not outcome.conflict
    assert "405" in (outcome.message or "") and mr.state == "opened"


async def test_merge_methods_conflicts_and_already_merged(double: GitLabDouble) -> None:
    gl = client(double)
    project = project_of(double)
    git(project.path, "branch", "plain", "main~1")
    commit_file(project.path, branch="plain", path="z", content="3\n", message="z")
    git(project.path, "branch", "clash", "main~1")
    commit_file(project.path, branch="clash", path="x", content="other\n", message="x2")
    squashed = await gl.open_pr(head=BRANCH, base="main", title="s", body="", draft=False)
    plain = await gl.open_pr(head="plain", base="main", title="p", body="", draft=False)
    clash = await gl.open_pr(head="clash", base="main", title="c", body="", draft=False)

    stale = await gl.merge(squashed.number, method="squash", sha="0" * 40)
    assert not stale.merged and "SHA does not match" in (stale.message or "")
    done = await gl.merge(squashed.number, method="squash", sha=None)
    assert done.merged and done.sha
    parents = git(project.path, "rev-list", "--parents", "-n1", "main").stdout.split()
    assert len(parents) == 2  # a squash commit: one parent
    assert (await gl.merge(plain.number, method="merge", sha=None)).merged
    parents = git(project.path, "rev-list", "--parents", "-n1", "main").stdout.split()
    assert len(parents) == 3  # a merge commit: two parents
    assert project.mrs[plain.number].state == "merged" and double.merges == 2

    # A retry after a crash finds it merged (GitLab answers 405): that is a success.
    again = await gl.merge(squashed.number, method="squash", sha=None)
    assert again.merged and double.merges == 2
    conflict = await gl.merge(clash.number, method="squash", sha=None)
    assert not conflict.merged and conflict.conflict
    assert (await gl.get_pr(clash.number)).mergeable is False
    assert "+++ b/y" in await gl.diff(squashed.number)


async def test_pagination_offset_and_keyset(double: GitLabDouble) -> None:
    gl = client(double)
    project = project_of(double)
    pr = await gl.open_pr(head=BRANCH, base="main", title="t", body="b", draft=False)
    for n in range(130):
        double.add_note(project, "MergeRequest", pr.number, author="alice", body=f"c{n}")
    talk = await gl.discussion(pr.number)
    assert len(talk) == 130 and talk[0] == "alice: c0" and talk[-1] == "alice: c129"
    project.issues[7] = {"id": 77, "iid": 7, "state": "opened", "title": "bug"}
    for n in range(130):
        double.add_note(project, "Issue", 7, author="alice", body=f"c{n}")
    async with raw(double) as http:
        page = await http.get(
            "/projects/acme%2Fapp/issues/7/notes",
            params={"per_page": 50, "page": 2},
            headers={"Authorization": f"Bearer {OPTIO_TOKEN}"},
        )
    assert page.status_code == 200 and len(page.json()) == 50
    assert page.headers["x-next-page"] == "3" and page.headers["x-prev-page"] == "1"
    assert page.headers["x-total"] == "130" and page.headers["x-total-pages"] == "3"
    assert 'rel="next"' in page.headers["link"] and 'rel="last"' in page.headers["link"]

    await gl.close_issue(7, comment="done", key="k")
    await gl.close_issue(7, comment="done", key="k")
    assert sum("done" in n["body"] for n in project.notes("Issue", 7)) == 1  # never twice
    assert project.issues[7]["state"] == "closed"

    # Keyset pagination (project jobs): the next page is only a cursor in the Link header.
    project.jobs[1] = [{"id": n, "name": f"job{n}", "status": "success"} for n in range(130)]
    jobs = await gl._get_all(
        "/projects/acme%2Fapp/jobs", params={"pagination": "keyset", "order_by": "id"}
    )
    assert sorted(j["id"] for j in jobs) == list(range(130))


async def test_auth_and_rate_limits(double: GitLabDouble) -> None:
    gl = client(double)
    async with raw(double) as http:
        for headers in ({"PRIVATE-TOKEN": OPTIO_TOKEN}, {"Authorization": "Bearer alice-token"}):
            ok = await http.get("/projects/acme%2Fapp/repository/branches/main", headers=headers)
            assert ok.status_code == 200 and "ratelimit-remaining" in ok.headers
        anonymous = await http.get("/projects/acme%2Fapp/repository/branches/main")
        assert anonymous.status_code == 401
        numeric = await http.get(
            f"/projects/{project_of(double).id}/repository/branches/{BRANCH.replace('/', '%2F')}",
            headers={"PRIVATE-TOKEN": OPTIO_TOKEN},
        )
        assert numeric.json()["name"] == BRANCH
    with pytest.raises(ForgeError) as refused:
        await client(double, token="wrong").branch_sha("main")
    assert refused.value.status == 401

    double.throttle_next = 1
    with pytest.raises(RateLimited) as raised:
        await gl.branch_sha("main")
    assert raised.value.retry_after == 2  # Retry-After, as sent
    double.remaining[OPTIO_TOKEN] = 0
    with pytest.raises(RateLimited) as raised:
        await gl.branch_sha("main")
    assert 1 <= raised.value.retry_after <= 61
    double.remaining[OPTIO_TOKEN] = 100
    assert (
        await gl.branch_sha("main")
        == git(project_of(double).path, "rev-parse", "main").stdout.strip()
    )
    assert await gl.branch_sha("no-such-branch") is None


async def test_reviews_request_changes_then_approve(double: GitLabDouble) -> None:
    gl, alice = client(double), client(double, token=ALICE_TOKEN)
    pr = await gl.open_pr(head=BRANCH, base="main", title="t", body="b", draft=False)
    mr = project_of(double).mrs[pr.number]
    assert await gl.reviews(pr.number) == []
    draft = ReviewDraft(
        "REQUEST_CHANGES",
        "The answer is wrong.",
        [InlineComment("y", 1, "should be 42"), InlineComment("README.md", 1, "typo")],
    )
    await alice.submit_review(pr.number, draft=draft, sha=pr.head_sha)
    await alice.submit_review(pr.number, draft=draft, sha=pr.head_sha)  # a retried activity
    assert mr.reviewers == {"alice": "requested_changes"}  # the state GitLab shows
    reviews = await gl.reviews(pr.number)
    assert review_status(reviews)[0] == "changes_requested"
    assert reviews[0].author == "alice" and reviews[0].body.startswith("The answer is wrong.")
    comments = await gl.inline_comments(pr.number)
    assert [(c.path, c.line, c.body) for c in comments] == [("y", 1, "should be 42")]
    # README.md is not in the diff: GitLab refuses the position, so it is a plain note.
    talk = await gl.discussion(pr.number)
    assert "alice: README.md:1 - typo" in talk and len(talk) == 3

    await alice.submit_review(pr.number, draft=ReviewDraft("APPROVE", "ok"), sha=pr.head_sha)
    assert mr.reviewers == {"alice": "approved"} and await gl.approvals(pr.number) == 1
    status, review_id = review_status(await gl.reviews(pr.number))
    assert status == "approved" and review_id and review_id.startswith("alice:APPROVED")
    # The author may not approve its own MR (401): the review is still posted, once.
    own = ReviewDraft("APPROVE", "self")
    await gl.submit_review(pr.number, draft=own, sha=pr.head_sha)
    await gl.submit_review(pr.number, draft=own, sha=pr.head_sha)
    assert await gl.approvals(pr.number) == 1
    assert (
        sum(n["body"].startswith("self") for n in project_of(double).notes("MergeRequest", 1)) == 1
    )


async def test_pipeline_jobs_are_checks_with_their_trace(double: GitLabDouble) -> None:
    gl = client(double)
    project = project_of(double)
    project.ci_command = 'echo "answer is 41"; false'
    sha = git(project.path, "rev-parse", BRANCH).stdout.strip()
    assert await gl.checks(sha) == []
    double.events.start_ci(project, sha, BRANCH)
    checks = await gl.checks(sha)
    assert [(c.name, c.state) for c in checks] == [("test", "pending")]
    for _ in range(200):
        checks = await gl.checks(sha)
        if checks[0].state != "pending":
            break
        await asyncio.sleep(0.05)
    assert [(c.name, c.state) for c in checks] == [("test", "failure")]
    log = await gl.check_log_tail(checks[0], max_chars=3000)
    assert "answer is 41" in log and log.endswith("ERROR: Job failed: exit code 1")
