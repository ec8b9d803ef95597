"""Shared test fixtures: a real bare origin repo and a real ingest HTTP server."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from schemas.runner import RunSpec


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_origin(root: Path) -> Path:
    """A bare repository whose main branch has one commit."""
    work = root / "seed"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init", cwd=work)
    origin = root / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=root)
    git("push", "-q", str(origin), "main", cwd=work)
    return origin


class IngestServer:
    """Records POSTed batches; `mode` switches between ok, failing and revoking."""

    def __init__(self) -> None:
        self.mode = "ok"  # ok | 503 | 404 | record-then-503
        self.batches: list[list[dict[str, Any]]] = []
        self.auth: list[str | None] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def url(self, run_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/internal/runs/{run_id}/events"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mode = outer.mode
                with outer._lock:
                    outer.auth.append(self.headers.get("Authorization"))
                    if mode in ("ok", "record-then-503"):
                        outer.batches.append(body["events"])
                status = {"ok": 200, "404": 404}.get(mode, 503)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        """Events as the API would store them: deduplicated by seq, in arrival order."""
        seen: dict[int, dict[str, Any]] = {}
        with self._lock:
            for batch in self.batches:
                for event in batch:
                    seen.setdefault(event["seq"], event)
        return list(seen.values())

    def raw_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for b in self.batches for e in b]


def make_spec(
    tmp: Path,
    *,
    origin: Path,
    server: IngestServer,
    prompt: str,
    run_id: str = "run-1",
    agent_type: str = "script",
) -> RunSpec:
    return RunSpec(
        run_id=run_id,
        task_id="x",
        agent_type=agent_type,
        prompt=prompt,
        title="Do the thing",
        repo_url=str(origin),
        branch="optio/task-x",
        worktree_path=str(tmp / "worktrees" / run_id),
        mirror_cache_dir=str(tmp / "mirrors"),
        ingest_url=server.url(run_id),
        run_token="tok-123",
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float = 8.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")
