"""Live streams against the running API: real WebSocket and SSE clients, both databases."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from websockets.exceptions import InvalidStatus

from tests.conftest import Optio
from tests.identity.conftest import add_person
from tests.live.helpers import (
    SseReader,
    StuckClient,
    close_code,
    frames,
    post_lines,
    running_task,
    seq_of,
    subscribed,
    transition,
    ws,
)


def base(optio: Optio) -> str:
    return str(optio.client.base_url).rstrip("/")


async def test_task_logs_catch_up_then_live_then_end(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    await post_lines(api, run, range(1, 61))
    async with ws(api, f"/ws/logs/{run.task_id}", api_only.token) as conn:
        assert conn.subprotocol == "optio-ws-v1"
        catch_up = await frames(conn, 50)
        assert [seq_of(f) for f in catch_up] == list(range(11, 61))  # the last 50
        assert all(f["type"] == "task:log" and f["catchUp"] for f in catch_up)
        assert catch_up[0]["taskId"] == run.task_id and catch_up[0]["stream"] == "stdout"
        await post_lines(api, run, range(61, 71))
        await post_lines(api, run, range(55, 71))  # a runner re-sending: no news
        live = await frames(conn, 10)
        assert [seq_of(f) for f in live] == list(range(61, 71))
        assert not any(f.get("catchUp") for f in live)
        ids = [f["eventId"] for f in catch_up + live]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        # The worker (another process, another engine) records the end: the stream ends.
        await transition(url, run, seq=1, to_state="completed")
        (ended,) = await frames(conn, 1)
        assert ended["type"] == "task:state_changed" and ended["toState"] == "completed"
        assert await close_code(conn) == 1000


async def test_reconnect_resumes_with_no_gap_and_no_duplicate(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    await post_lines(api, run, range(1, 6))
    path = f"/ws/logs/{run.task_id}"
    async with ws(api, path, api_only.token) as conn:
        got = await frames(conn, 5)
        await post_lines(api, run, range(6, 9))
        got += await frames(conn, 3)
    # Lines keep coming while the client is away.
    await post_lines(api, run, range(9, 300))
    last = got[-1]["eventId"]
    async with ws(api, f"{path}?lastEventId={last}", api_only.token) as conn:
        resumed = await frames(conn, 291)
        await post_lines(api, run, range(300, 310))
        resumed += await frames(conn, 10)
    seqs = [seq_of(f) for f in got + resumed]
    assert seqs == list(range(1, 310))
    # The SSE stream resumes the same way from Last-Event-ID.
    async with api_only.client.stream(
        "GET", f"/api/tasks/{run.task_id}/logs/stream", headers={"Last-Event-ID": str(last)}
    ) as response:
        assert response.status_code == 200
        reader = SseReader(response)
        events = [await reader.next() for _ in range(301)]
    assert [seq_of(e["data"]) for e in events] == list(range(9, 310))
    assert all(e["event"] == "task:log" for e in events)
    assert [e["id"] for e in events] == [e["data"]["eventId"] for e in events]


async def test_sse_logs_catch_up_live_and_end(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    await post_lines(api, run, range(1, 4))
    async with api_only.client.stream("GET", f"/api/tasks/{run.task_id}/logs/stream") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(resp)
        first = [await reader.next() for _ in range(3)]
        assert all(e["data"]["catchUp"] for e in first)
        await post_lines(api, run, range(4, 6))
        live = [await reader.next() for _ in range(2)]
        assert [seq_of(e["data"]) for e in first + live] == [1, 2, 3, 4, 5]
        await transition(url, run, seq=1, to_state="failed")
        assert (await reader.next())["data"]["toState"] == "failed"
        try:
            extra = await reader.next()
        except EOFError:
            extra = None
        assert extra is None
    # An ended task's stream, resumed with nothing newer: 204 stops EventSource.
    done = await api_only.client.get(
        f"/api/tasks/{run.task_id}/logs/stream", headers={"Last-Event-ID": "999999999"}
    )
    assert done.status_code == 204
    bad = await api_only.client.get(
        f"/api/tasks/{run.task_id}/logs/stream", headers={"Last-Event-ID": "yesterday"}
    )
    assert bad.status_code == 400 and "Last-Event-ID" in bad.text


async def test_a_workspace_hears_only_its_own_events(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    _, b_token, b_ws = await add_person(api_only, "B")
    a_run = await running_task(url, workspace_id=api_only.workspace_id)
    b_run = await running_task(url, workspace_id=b_ws)
    b_http = httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {b_token}"})
    async with (
        ws(api, "/ws/events", api_only.token) as a_conn,
        ws(api, "/ws/events", b_token) as b_conn,
        b_http.stream("GET", "/api/events/stream") as b_sse,
    ):
        b_reader = SseReader(b_sse)
        await subscribed(api_only, 3)
        await api_only.client.post(
            f"/api/tasks/{a_run.task_id}/comments", json={"content": "A_SECRET"}
        )
        await transition(url, a_run, seq=1, to_state="needs_attention")
        await post_lines(api, a_run, range(1, 5))
        await b_http.post(f"/api/tasks/{b_run.task_id}/comments", json={"content": "b note"})
        await transition(url, b_run, seq=1, to_state="completed")
        a_frames = await frames(a_conn, 2)
        b_frames = await frames(b_conn, 2)
        b_events = [await b_reader.next() for _ in range(2)]
    assert [f["type"] for f in a_frames] == ["task:comment", "task:state_changed"]
    assert {f["taskId"] for f in a_frames} == {a_run.task_id}
    assert [f["type"] for f in b_frames] == ["task:comment", "task:state_changed"]
    assert {f["taskId"] for f in b_frames} == {b_run.task_id}
    assert [e["data"] for e in b_events] == b_frames
    assert "A_SECRET" not in str(b_frames)
    # A's task's stream is not B's to open: not found, on both transports.
    async with ws(api, f"/ws/logs/{a_run.task_id}", b_token) as conn:
        assert await close_code(conn) == 4404
    foreign = await b_http.get(f"/api/tasks/{a_run.task_id}/logs/stream")
    assert foreign.status_code == 404
    # B reconnecting with an id of A's stream gets B's events after it, never A's.
    async with ws(api, f"/ws/events?lastEventId={a_frames[0]['eventId'] - 1}", b_token) as conn:
        again = await frames(conn, 2)
    assert again == [{**f, "catchUp": True} for f in b_frames]
    await b_http.aclose()


async def test_events_catch_up_is_the_last_20_transitions(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    runs = [await running_task(url, workspace_id=api_only.workspace_id) for _ in range(25)]
    for run in runs:
        await transition(url, run, seq=1, to_state="failed")
    async with ws(api, "/ws/events", api_only.token) as conn:
        got = await frames(conn, 20)
    assert [f["taskId"] for f in got] == [r.task_id for r in runs[5:]]
    assert all(f["catchUp"] and f["type"] == "task:state_changed" for f in got)


async def test_close_codes(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    path = f"/ws/logs/{run.task_id}"
    async with ws(api, path, None) as conn:
        assert await close_code(conn) == 4401
    async with ws(api, path, "not-a-token") as conn:
        assert await close_code(conn) == 4401
    # Never a token in the query string (it ends up in access logs), even a valid one.
    async with ws(api, f"{path}?token={api_only.token}", None) as conn:
        assert await close_code(conn) == 4401
    # The session cookie from a page of another origin: refused.
    cookie = {"Cookie": f"optio_session={api_only.token}"}
    async with ws(api, path, None, additional_headers=cookie, origin="http://evil.example") as c:  # type: ignore[arg-type]
        assert await close_code(c) == 4403
    async with ws(api, path, None, additional_headers=cookie) as conn:  # no Origin: not a browser
        await post_lines(api, run, range(1, 2))
        assert seq_of((await frames(conn, 1))[0]) == 1
    async with ws(api, "/ws/logs/00000000-0000-0000-0000-000000000000", api_only.token) as c:
        assert await close_code(c) == 4404
    async with ws(api, path, api_only.token, max_size=None) as conn:
        await conn.send("x" * (1024 * 1024 + 1))
        assert await close_code(conn) == 4413


async def test_too_many_connections_from_one_ip(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    limit = api_only.settings.live_max_connections_per_ip
    run = await running_task(url, workspace_id=api_only.workspace_id)
    path = f"/ws/logs/{run.task_id}"
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(ws(api, path, api_only.token)) for _ in range(limit)
        ]
        await post_lines(api, run, range(1, 2))
        for conn in opened:  # all of them served
            assert seq_of((await frames(conn, 1))[0]) == 1
        async with ws(api, path, api_only.token) as extra:
            assert await close_code(extra) == 4429
        sse = await api_only.client.get(f"/api/tasks/{run.task_id}/logs/stream")
        assert sse.status_code == 429
    # Closing frees the places.
    async with ws(api, path, api_only.token) as conn:
        assert seq_of((await frames(conn, 1))[0]) == 1


async def test_a_client_that_falls_behind_reads_on_from_the_database(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    buffer = api_only.settings.live_client_buffer
    async with ws(api, f"/ws/logs/{run.task_id}", api_only.token) as conn:
        # One batch of 5 buffers' worth reaches the bus at once: the client's queue
        # overflows, and the rest comes from the database, in order.
        await post_lines(api, run, range(1, 5 * buffer + 1))
        got = await frames(conn, 5 * buffer)
        await post_lines(api, run, range(5 * buffer + 1, 5 * buffer + 4))
        got += await frames(conn, 3)
    assert [seq_of(f) for f in got] == list(range(1, 5 * buffer + 4))
    assert not any(f.get("catchUp") for f in got)


async def test_a_client_that_does_not_read_is_dropped(api_only: Optio) -> None:
    api, url = base(api_only), api_only.settings.database_url_resolved
    run = await running_task(url, workspace_id=api_only.workspace_id)
    state = api_only.server._server.config.app.state.optio  # type: ignore[union-attr]
    stuck = await asyncio.to_thread(
        StuckClient, api_only.settings.api_port, f"/ws/logs/{run.task_id}", api_only.token
    )
    # More than the socket buffers hold: a send waits past the send timeout, and the
    # server drops the client, holding nothing more for it.
    for start in range(1, 201, 50):
        await post_lines(api, run, range(start, start + 50), size=50_000)
    async with asyncio.timeout(60):
        while state.live.subscribers or state.live_limit.open:
            await asyncio.sleep(0.1)
    # The close frame follows what was already on its way, when the client reads again.
    code, reason, received = await asyncio.to_thread(stuck.read_until_close)
    assert code == 4408 and "lastEventId" in reason
    assert 0 < received < 200


async def test_websocket_without_upgrade_is_refused(api_only: Optio) -> None:
    try:
        async with ws(base(api_only), "/ws/nowhere", api_only.token):
            raise AssertionError("connected to a route that does not exist")
    except InvalidStatus as exc:
        assert exc.response.status_code in (403, 404)
