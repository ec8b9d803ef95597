"""Sweeps over every route in the OpenAPI document, so routes added later are covered too.

- isolation: every route with a path parameter, every id of another workspace: 404, no data;
- roles: every write refused (403) to a viewer, every admin write refused to a member;
- authentication: every route but the public ones refused (401) without a credential.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from api.roles import PERSONAL, minimum_role
from tests.conftest import Optio
from tests.identity.conftest import Person
from tests.identity.sweep import WRITES, Op, crawl, get_briefly, operations, seed, uuids
from tests.live.helpers import close_code, ws

CANARY = "CANARY_B7Q"
# Routes anyone may call: what a signed-out browser needs, and receivers that check a
# signature of their own. Everything else needs a credential.
PUBLIC = {
    ("GET", "/api/health"),
    ("GET", "/api/auth/providers"),
    ("GET", "/api/auth/{provider}/login"),
    ("GET", "/api/auth/{provider}/callback"),
    ("GET", "/api/setup/status"),
    ("POST", "/api/setup/complete"),  # until setup is complete; then admins only (tested)
    ("POST", "/api/hooks/{path}"),  # webhook receiver: the path plus an HMAC signature
    ("POST", "/api/webhooks/github"),  # X-Hub-Signature-256 of the body
    ("POST", "/api/webhooks/gitlab"),  # X-Gitlab-Token
    ("POST", "/api/webhooks/slack/actions"),  # Slack v0 signature of the body
}
COUNTS: dict[str, Any] = {}
LAST_USED = re.compile(r'"lastUsedAt":"[^"]*"')
# Live measurements of the machine and its runs (GET /api/cluster/*), not data.
LIVE = re.compile(r'"(usage|allocatable)":\{[^}]*\}|"ageSeconds":[0-9.e+-]+')


@pytest.fixture
def ops() -> list[Op]:
    return operations()


@pytest.mark.timeout(900)
async def test_isolation_sweep(
    api_only: Optio, people: Callable[..., Any], make_repo: Callable[..., Any], ops: list[Op]
) -> None:
    a = api_only.client
    b: Person = await people("Workspace B admin")
    b_member: Person = await people("B member", member_of=b.workspace_id, role="member")
    a_seeds = await seed(a, make_repo(), "AAA_SEED") | {"ws": api_only.workspace_id}
    b_seeds = await seed(b.client, make_repo(), CANARY) | {"ws": b.workspace_id}
    b_before = await crawl(b.client, ops, b_seeds)
    # Ids B can see that A cannot (anything instance-wide A also sees is no leak).
    a_view = await crawl(a, ops, a_seeds)
    b_ids = sorted(uuids(b_before) - uuids(a_view) | {b.workspace_id, b_member.user_id})
    b_ids.append(f"{CANARY}_SECRET")
    assert len(b_ids) >= 15, b_ids
    a_own = set(a_seeds.values())

    tried, endpoints, statuses = 0, 0, {}  # type: ignore[var-annotated]
    for op in (op for op in ops if op.params):
        endpoints += 1
        combos = (
            [[i] for i in b_ids]
            if len(op.params) == 1
            else nested(op, a_seeds, b_seeds, a_view, b_before, b_ids)
        )
        for values in combos:
            response = await a.request(op.method, op.url(values), json=op.body)
            tried += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            where = f"{op.method} {op.url(values)} -> {response.status_code} {response.text[:200]}"
            # What we sent may be echoed ("... not found"); anything else of B's is a leak.
            echoed = response.text
            for value in values:
                echoed = echoed.replace(value, "")
            assert CANARY not in echoed, where
            leaked = set(uuids({"r": echoed})) & set(b_ids)
            assert not leaked, where
            if values[0] in a_own:
                # A's own parent with B's child: A may hear about its own row, never B's.
                assert response.status_code >= 400, where
            else:
                assert response.status_code == 404, where
    # B's session sockets are as unknown to A as its rows: 4404 before anything opens.
    api = str(api_only.client.base_url)
    for kind in ("terminal", "chat"):
        async with ws(api, f"/ws/sessions/{b_seeds['session']}/{kind}", api_only.token) as conn:
            assert await close_code(conn) == 4404, kind
    # Nothing of B's changed under A's attempts.
    assert stable(await crawl(b.client, ops, b_seeds)) == stable(b_before)
    # The header asking for B's workspace is ignored for a non-member: A sees only A.
    listed = await a.get("/api/tasks", headers={"x-workspace-id": b.workspace_id})
    assert CANARY not in listed.text and listed.status_code == 200
    COUNTS["isolation"] = {"requests": tried, "ids": len(b_ids), "statuses": statuses}
    print(
        f"\nisolation sweep: {endpoints} endpoints with ids, {tried} requests"
        f" ({len(b_ids)} ids of B), statuses {statuses}"
    )


def stable(pages: dict[str, str]) -> dict[str, str]:
    # B's own token is "last used" by B's own crawl.
    return {url: LIVE.sub("", LAST_USED.sub("", text)) for url, text in pages.items()}


def nested(
    op: Op,
    a_seeds: dict[str, str],
    b_seeds: dict[str, str],
    a_view: dict[str, str],
    b_view: dict[str, str],
    b_ids: list[str],
) -> list[list[str]]:
    """Parents of the right kind (their owner can GET them) from A and from B, each with
    every id of B's as the child: the unscoped-child IDOR and the foreign-parent one."""
    prefix = op.path[: op.path.index("}") + 1]
    parents = [
        v
        for v in {*a_seeds.values(), *b_seeds.values()}
        if Op("GET", prefix, None).url([v]) in a_view | b_view
    ] or sorted({*a_seeds.values(), *b_seeds.values()})
    middle = [b_ids[0]] * (len(op.params) - 2)
    return [[parent, *middle, child] for parent in sorted(parents) for child in b_ids]


@pytest.mark.timeout(300)
async def test_role_sweep(
    api_only: Optio, people: Callable[..., Any], make_repo: Callable[..., Any], ops: list[Op]
) -> None:
    a_seeds = await seed(api_only.client, make_repo(), "AAA_SEED")
    assert (await api_only.client.post("/api/setup/complete")).status_code == 200
    viewer: Person = await people("Viewer", member_of=api_only.workspace_id, role="viewer")
    member: Person = await people("Member", member_of=api_only.workspace_id, role="member")
    some_id = a_seeds["task"]
    refused = {"viewer": 0, "member": 0}
    personal = 0
    for op in ops:
        if op.method.lower() not in WRITES or (op.method, op.path) in PUBLIC - {
            ("POST", "/api/setup/complete")
        }:
            continue
        url = op.url([api_only.workspace_id if p == "workspace_id" else some_id for p in op.params])
        if (op.method, op.path) in PERSONAL:
            personal += 1
            continue
        response = await viewer.client.request(op.method, url, json=op.body)
        assert response.status_code == 403, f"viewer {op.method} {url}: {response.status_code}"
        refused["viewer"] += 1
        if minimum_role(op.method, op.path) == "admin":
            response = await member.client.request(op.method, url, json=op.body)
            assert response.status_code == 403, f"member {op.method} {url}"
            refused["member"] += 1
    # Viewers still read everything of their workspace.
    for op in ops:
        if op.method == "GET" and not op.params and minimum_role("GET", op.path) == "viewer":
            status, _ = await get_briefly(viewer.client, op.path)  # live streams: briefly
            assert status != 403, op.path
    assert refused["viewer"] >= 40
    COUNTS["roles"] = {**refused, "personal_routes_exempt": personal}
    print(f"\nrole sweep: refused {refused}, personal routes (any role) {personal}")


async def test_every_non_public_route_needs_a_credential(api_only: Optio, ops: list[Op]) -> None:
    checked = 0
    for op in ops:
        if (op.method, op.path) in PUBLIC:
            continue
        url = op.url(["00000000-0000-0000-0000-000000000000"] * len(op.params))
        response = await api_only.anon.request(op.method, url, json=op.body)
        assert response.status_code == 401, f"{op.method} {url}: {response.status_code}"
        checked += 1
    print(f"\nauthentication sweep: {checked} routes refused without a credential")


async def test_setup_complete_closes_to_anonymous_writes(
    api_only: Optio, people: Callable[..., Any]
) -> None:
    status = (await api_only.anon.get("/api/setup/status")).json()
    assert status["isSetUp"] is False
    assert set(status["steps"]) >= {"gitToken", "anyAgentKey"}
    assert (await api_only.anon.post("/api/setup/complete")).status_code == 200
    assert (await api_only.anon.get("/api/setup/status")).json()["isSetUp"] is True
    assert (await api_only.anon.post("/api/setup/complete")).status_code == 401
    viewer: Person = await people("Viewer", member_of=api_only.workspace_id, role="viewer")
    assert (await viewer.client.post("/api/setup/complete")).status_code == 403
    assert (await api_only.client.post("/api/setup/complete")).status_code == 200
