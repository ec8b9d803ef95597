"""`optio up` with OPTIO_API_PROCESSES=2: real processes on one loopback port.

Which process answers a connection is read from the kernel, not from the API: the
server's end of the connection (in /proc/net/tcp) is a socket open in exactly one of the
API processes (/proc/<pid>/fd). A connection stays with the process that accepted it,
so a test can speak to each process on purpose.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from store.auth_cache import TTL_S
from tests.cli.test_cli import Up, alive, descendants

PROCESSES = 2


class Pinned:
    """One keep-alive connection, and the API process that holds its other end."""

    def __init__(self, up: Up, token: str, api_pids: set[int]) -> None:
        self.up, self.token = up, token
        self.conn = http.client.HTTPConnection("127.0.0.1", up.api_port, timeout=30)
        status, _ = self.call("GET", "/api/health")  # answered: accepted by a process
        assert status == 200
        self.pid = _server_pid(up.api_port, self.conn, api_pids)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def _server_pid(api_port: int, conn: http.client.HTTPConnection, api_pids: set[int]) -> int:
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == api_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
    holders = [pid for pid in api_pids if f"socket:[{inode}]" in _sockets_of(pid)]
    assert len(holders) == 1, holders
    return holders[0]


def _sockets_of(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return found


class Two:
    def __init__(self, up: Up, token: str) -> None:
        assert up.process is not None
        self.up, self.token = up, token
        self.api_pids = {
            pid
            for pid in descendants(up.process.pid)
            if b"cli.serve\x00--fd\x00" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        self._open: list[Pinned] = []

    def connect(self) -> Pinned:
        pinned = Pinned(self.up, self.token, self.api_pids)
        self._open.append(pinned)
        return pinned

    def pinned_to(self, pid: int) -> Pinned:
        """A connection the given process holds (the kernel hashes each new one)."""
        for _ in range(64):
            pinned = self.connect()
            if pinned.pid == pid:
                return pinned
            pinned.close()
        raise AssertionError(f"64 connections, none to process {pid}")

    def close(self) -> None:
        for pinned in self._open:
            pinned.close()


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    up = Up(tmp_path_factory.mktemp("procs") / "data")
    up.env["OPTIO_API_PROCESSES"] = str(PROCESSES)
    try:
        banner = up.start(timeout=120)  # optio up allows 30 s per API process
        token = re.search(r"OPTIO_TOKEN=(optio_pat_[0-9a-f]{64})", banner)
        assert token, banner
        running = Two(up, token.group(1))
        yield running
        running.close()
    finally:
        up.kill()


def test_every_api_process_serves_the_port(two: Two) -> None:
    assert len(two.api_pids) == PROCESSES
    seen: Counter[int] = Counter()
    for _ in range(40):
        pinned = two.connect()
        status, listed = pinned.call("GET", "/api/tasks")
        assert status == 200 and "tasks" in listed
        seen[pinned.pid] += 1
        pinned.close()
        if len(seen) == PROCESSES:
            break
    assert set(seen) == two.api_pids


def test_a_write_in_one_process_reaches_streams_in_each(two: Two, tmp_path: Path) -> None:
    first, second = sorted(two.api_pids)
    writers = {pid: two.pinned_to(pid) for pid in (first, second)}
    repo = _repo(two, tmp_path)
    streams = {pid: _EventStream(two.pinned_to(pid)) for pid in (first, second)}
    # The streams subscribe to their process's bus just after their headers: a task
    # created before that would be missed (the catch-up replays state changes only).
    time.sleep(1.0)
    created = []
    for pid, writer in writers.items():
        status, body = writer.call("POST", "/api/tasks", _task(repo, f"written by {pid}"))
        assert status == 201, body
        created.append(body["task"]["id"])
    for stream in streams.values():
        frames = stream.until_created(set(created))
        # Delivered live by the process's own bus, whichever process took the write.
        assert [f["taskId"] for f in frames] == created
        assert not [f for f in frames if f.get("catchUp")]


def test_a_revoked_key_is_refused_by_every_process(two: Two) -> None:
    first, second = sorted(two.api_pids)
    one, other = two.pinned_to(first), two.pinned_to(second)
    status, minted = one.call("POST", "/api/auth/api-keys", {"name": "to revoke"})
    assert status == 201, minted
    key = minted["token"]
    # Both processes have resolved (and remembered) the key.
    assert one.call("GET", "/api/tasks", token=key)[0] == 200
    assert other.call("GET", "/api/tasks", token=key)[0] == 200
    status, _ = one.call("DELETE", f"/api/auth/api-keys/{minted['tokenId']}")
    assert status == 200
    revoked = time.monotonic()
    # The process that took the revocation forgets at once; the other within TTL_S.
    assert one.call("GET", "/api/tasks", token=key)[0] == 401
    while other.call("GET", "/api/tasks", token=key)[0] != 401:
        assert time.monotonic() - revoked < TTL_S + 2, "still accepted past the cache's TTL"
        time.sleep(0.1)
    assert one.call("GET", "/api/tasks", token=key)[0] == 401


def test_concurrent_posts_to_both_processes_are_each_stored_once(two: Two, tmp_path: Path) -> None:
    pids = sorted(two.api_pids)
    repo = _repo(two, tmp_path)
    connections = [two.pinned_to(pids[i % len(pids)]) for i in range(20)]
    titles = [f"concurrent {i}" for i in range(len(connections))]

    def post(i: int) -> tuple[int, Any]:
        return connections[i].call("POST", "/api/tasks", _task(repo, titles[i]))

    with ThreadPoolExecutor(len(connections)) as pool:
        answers = list(pool.map(post, range(len(connections))))
    assert [status for status, _ in answers] == [201] * len(connections), answers
    ids = [body["task"]["id"] for _, body in answers]
    assert len(set(ids)) == len(ids)
    status, listed = connections[0].call("GET", "/api/tasks?limit=200")
    assert status == 200
    stored = Counter(t["title"] for t in listed["tasks"] if t["title"].startswith("concurrent"))
    assert stored == Counter(titles)


def test_ctrl_c_stops_every_api_process(two: Two) -> None:
    """Last in the module: it stops the `optio up` the others share."""
    assert two.up.process is not None
    children = descendants(two.up.process.pid)
    assert two.api_pids <= children
    two.close()
    assert two.up.interrupt() < 10
    assert not [pid for pid in children if alive(pid)]


# ---- helpers ---------------------------------------------------------------------------


def _repo(two: Two, tmp_path: Path) -> str:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    status, body = two.connect().call("POST", "/api/repos", {"repoUrl": str(path)})
    assert status == 201, body
    return str(body["repo"]["repoUrl"])


def _task(repo_url: str, title: str) -> dict[str, Any]:
    return {
        "title": title,
        "prompt": "echo done",
        "repoUrl": repo_url,
        "agentType": "script",
        "maxRetries": 0,
    }


class _EventStream:
    """`GET /api/events/stream` on a pinned connection, read line by line."""

    def __init__(self, pinned: Pinned) -> None:
        pinned.conn.request(
            "GET",
            "/api/events/stream",
            headers={"Authorization": f"Bearer {pinned.token}", "Accept": "text/event-stream"},
        )
        self.response = pinned.conn.getresponse()
        assert self.response.status == 200

    def until_created(self, task_ids: set[str]) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while {f["taskId"] for f in frames} != task_ids:
            assert time.monotonic() < deadline, f"only {frames} within 20 s"
            line = self.response.readline().decode().strip()
            if line.startswith("data:"):
                frame = json.loads(line[5:])
                if frame.get("type") == "task:created" and frame.get("taskId") in task_ids:
                    frames.append(frame)
        return frames
