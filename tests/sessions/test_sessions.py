"""Interactive sessions: REST, the SessionWorkflow's life, and the terminal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from integrations.session_sandbox import session_worktree
from tests.conftest import Optio, git
from tests.identity.conftest import add_person
from tests.live.helpers import close_code, ws
from tests.sessions.helpers import active_session, until, wait_session

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")

MakeRepo = Callable[..., Path]


def api(optio: Optio) -> str:
    return f"http://127.0.0.1:{optio.settings.api_port}"


async def test_a_session_gets_its_branch_and_worktree_and_ends_cleanly(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    session = await active_session(optio, repo)
    worktree = session_worktree(optio.settings, session["id"])
    assert (worktree / "README.md").read_text() == "# test repo\n"
    assert session["branch"].startswith("session/") and session["baseBranch"] == "main"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree) == session["branch"]

    listed = (await optio.client.get("/api/sessions", params={"state": "active"})).json()
    assert [s["id"] for s in listed["sessions"]] == [session["id"]] and listed["activeCount"] == 1
    other = (await optio.client.get("/api/sessions", params={"repoUrl": "/nowhere"})).json()
    assert other == {"sessions": [], "activeCount": 0}
    assert (await optio.client.get("/api/sessions", params={"state": "bogus"})).status_code == 400

    ended = await optio.client.post(f"/api/sessions/{session['id']}/end")
    assert ended.status_code == 200 and ended.json()["session"]["state"] == "ended"
    again = await optio.client.post(f"/api/sessions/{session['id']}/end")  # safe to retry
    assert again.status_code == 200 and again.json()["session"]["endedAt"]
    await until(lambda: not worktree.exists())
    listed = (await optio.client.get("/api/sessions")).json()
    assert listed["activeCount"] == 0 and listed["sessions"][0]["endReason"] == "ended"


async def test_bad_requests_are_refused_clearly(optio: Optio, make_repo: MakeRepo) -> None:
    unconnected = await optio.client.post("/api/sessions", json={"repoUrl": str(make_repo())})
    assert unconnected.status_code == 400 and "POST /api/repos" in unconnected.text
    assert (await optio.client.post("/api/sessions", json={})).status_code == 400
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await optio.client.get(f"/api/sessions/{missing}")).status_code == 404
    assert (await optio.client.post(f"/api/sessions/{missing}/end")).status_code == 404
    async with ws(api(optio), f"/ws/sessions/{missing}/terminal", optio.token) as conn:
        assert await close_code(conn) == 4404
    async with ws(api(optio), f"/ws/sessions/{missing}/chat", None) as conn:
        assert await close_code(conn) == 4401


async def test_an_idle_session_ends_by_itself(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.session_idle_timeout_seconds = 1.5
    session = await active_session(optio, make_repo())
    ended = await wait_session(optio, session["id"], "ended", timeout=30)
    assert ended["endReason"] == "idle"
    await until(lambda: not session_worktree(optio.settings, session["id"]).exists())


async def _read_until(conn: ClientConnection, needle: bytes, *, timeout: float = 20) -> bytes:
    seen = b""
    try:
        async with asyncio.timeout(timeout):
            while needle not in seen:
                frame = await conn.recv()
                seen += frame if isinstance(frame, bytes) else frame.encode()
    except TimeoutError:
        raise AssertionError(f"{needle!r} not in {seen[-2000:]!r}") from None
    return seen


async def test_the_terminal_runs_a_shell_in_the_sandbox(
    optio: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    session = await active_session(optio, repo)
    secret_file = tmp_path / "outside.txt"
    secret_file.write_text("not for the sandbox")
    path = f"/ws/sessions/{session['id']}/terminal"
    async with ws(api(optio), path, optio.token) as conn:
        # Quotes split the word, so the echo of what we type does not match.
        await conn.send(b"echo hel''lo-from-$(id -u)\r")
        await _read_until(conn, b"hello-from-1000")
        await conn.send(json.dumps({"type": "resize", "cols": 123, "rows": 45}))
        await conn.send("stty size; echo size''-done\r")
        out = await _read_until(conn, b"size-done")
        assert b"45 123" in out
        # It sees its worktree, and nothing of this machine's data.
        await conn.send(f"cat README.md; cat {secret_file} || echo hid''den\r".encode())
        out = await _read_until(conn, b"hidden")
        assert b"# test repo" in out and b"not for the sandbox" not in out
        await conn.send(f"ls {optio.settings.data_dir / 'runs'} || echo no''-runs\r".encode())
        await _read_until(conn, b"no-runs")
        # The URL of a PR it opened registers with the session.
        await conn.send(b"echo https://github.com/o/r/pu''ll/7 https://github.com/o/r/pull/7\r")
        await _read_until(conn, b"pull/7")
        prs = await until_prs(optio, session["id"])
        assert prs == [("https://github.com/o/r/pull/7", 7)]
        await conn.send(b"exit\r")
        assert await close_code(conn) == 1000


async def until_prs(optio: Optio, session_id: str) -> list[tuple[str, int]]:
    for _ in range(100):
        body = (await optio.client.get(f"/api/sessions/{session_id}/prs")).json()
        if body["prs"]:
            return [(p["prUrl"], p["prNumber"]) for p in body["prs"]]
        await asyncio.sleep(0.1)
    return []


async def test_only_the_owner_opens_the_terminal(optio: Optio, make_repo: MakeRepo) -> None:
    session = await active_session(optio, make_repo())
    _, token, _ = await add_person(optio, "colleague", member_of=optio.workspace_id)
    path = f"/ws/sessions/{session['id']}/terminal"
    async with ws(api(optio), path, token) as conn:
        assert await close_code(conn) == 4403
    # Oversized input closes the terminal with 4413.
    async with ws(api(optio), path, optio.token, max_size=None) as conn:
        try:
            await conn.send(b"x" * (1024 * 1024 + 1))
        except ConnectionClosed:
            pass
        assert await close_code(conn) == 4413


async def test_a_single_use_ws_token_opens_one_connection(
    optio: Optio, make_repo: MakeRepo
) -> None:
    session = await active_session(optio, make_repo())
    minted = await optio.client.post("/api/auth/ws-token")
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    assert token.startswith("optio_ws_") and minted.json()["expiresAt"]
    # Not a credential for the HTTP API.
    plain = await optio.anon.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
    assert plain.status_code == 401
    path = f"/ws/sessions/{session['id']}/terminal"
    async with ws(api(optio), path, token) as conn:
        await conn.send(b"echo to''ken-ok\r")
        await _read_until(conn, b"token-ok")
    async with ws(api(optio), path, token) as conn:  # used already
        assert await close_code(conn) == 4401
    optio.settings.ws_token_ttl_seconds = 0.001
    expired = (await optio.client.post("/api/auth/ws-token")).json()["token"]
    async with ws(api(optio), path, expired) as conn:
        assert await close_code(conn) == 4401


def _shells_in(worktree: Path) -> list[int]:
    """Processes whose command line names the worktree: the terminal's bwrap and shell."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        if str(worktree).encode() in cmdline and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


async def test_a_terminal_that_fails_after_its_shell_started_leaves_no_shell(
    optio: Optio, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shell is started, then the session's idle clock is restarted (a database write and
    a signal): a failure or a cancel there (a client gone, the API stopping) hung nobody up,
    and the sandboxed shell lived on with init as its parent."""
    from api.live.session_socket import SessionSocket

    session = await active_session(optio, make_repo())
    worktree = session_worktree(optio.settings, session["id"])

    async def database_gone(self: SessionSocket) -> None:
        assert _shells_in(worktree), "the shell should be running by now"
        raise RuntimeError("the database went away")

    monkeypatch.setattr(SessionSocket, "touch", database_gone)
    async with ws(api(optio), f"/ws/sessions/{session['id']}/terminal", optio.token) as conn:
        await close_code(conn)
    assert await until(lambda: not _shells_in(worktree), timeout=10), _shells_in(worktree)
