"""/ws/sessions/:id/terminal: a login shell in the session's sandbox, on a PTY.

Bytes go both ways as they are (binary frames; a text frame that is not a control
message is typed input too); `{"type": "resize", "cols": N, "rows": N}` resizes the
terminal; errors come as `{"error": "..."}` text frames. Owner only.

The PTY and its shell live in the API process that holds the WebSocket: the bytes then
take no extra hop, and nothing outlives the connection by accident (bwrap dies with us,
and the shell is hung up when the socket closes). The session itself (branch, worktree,
idle timeout) is the worker's SessionWorkflow's, so an API restart only closes open
terminals; reconnecting opens a new shell in the same worktree.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from api.live.access import NOT_FOUND, SLOW_CLIENT, TOO_LARGE
from api.live.session_socket import SessionSocket, serve_session_socket
from api.live.ws import MAX_MESSAGE, NORMAL
from integrations.sandbox import SandboxUnavailableError, sandbox_env
from integrations.session_sandbox import session_sandbox
from schemas.sessions import TerminalResize
from store.db import transaction
from store.session_rows import add_session_pr

router = APIRouter()
CHUNK = 64 * 1024
QUEUED_CHUNKS = 64  # output waiting for a slow client; the shell blocks beyond it
HANGUP_GRACE = 2.0
PR_URL = re.compile(rb"https://github\.com/[\w.-]+/[\w.-]+/pull/(\d+)")


@router.websocket("/ws/sessions/{session_id}/terminal")
async def terminal(websocket: WebSocket, session_id: str) -> None:
    await serve_session_socket(websocket, session_id, _run_terminal)


async def _run_terminal(sock: SessionSocket) -> tuple[int, str]:
    settings = sock.state.settings
    row = sock.row
    sandbox = session_sandbox(
        settings, session_id=row.id, workspace_id=row.workspace_id, repo_url=row.repo_url
    )
    if not sandbox.worktree.is_dir():
        return NOT_FOUND, "The session's worktree is gone"
    env = sandbox_env(
        home=str(sandbox.home), extra={"TERM": "xterm-256color", "SHELL": "/bin/bash"}
    )
    if settings.agents_bin_dir.is_dir():
        env["PATH"] = f"{settings.agents_bin_dir}:{env['PATH']}"
    master, slave = pty.openpty()
    _resize(master, rows=24, cols=80)
    try:
        # `setsid -c` makes the PTY the shell's controlling terminal inside bwrap's own
        # session: job control and SIGWINCH work, and only on this PTY.
        argv = await asyncio.to_thread(sandbox.command, ["setsid", "-c", "/bin/bash", "-l"])
        proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=sandbox.worktree,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    except (OSError, SandboxUnavailableError) as exc:
        os.close(master)
        await sock.websocket.send_text(json.dumps({"error": f"Could not start a shell: {exc}"}))
        return NORMAL, "No shell"
    finally:
        os.close(slave)
    # From here on the shell is hung up however this ends: a failed or cancelled `touch`
    # (a database write and a signal) left it running with init as its parent before.
    pipe: _Output | None = None
    tasks: list[asyncio.Task[tuple[int, str]]] = []
    try:
        os.set_blocking(master, False)
        await sock.touch()
        pipe = _Output(master)
        sender = asyncio.create_task(_send(sock, pipe))
        receiver = asyncio.create_task(_receive(sock, master))
        tasks = [sender, receiver]
        done, _ = await asyncio.wait({sender, receiver}, return_when="FIRST_COMPLETED")
    finally:
        for task in tasks:
            task.cancel()
        if pipe is not None:
            pipe.close()
        await asyncio.to_thread(_hang_up, proc)
        os.close(master)
    finished = sender if sender in done else receiver
    if finished.cancelled() or finished.exception() is not None:
        return NORMAL, ""
    return finished.result()


class _Output:
    """The PTY's output as chunks; reading pauses while a slow client has QUEUED_CHUNKS."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.reading = True
        self.loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the shell and everything on the PTY exited
            data = b""
        if not data:
            self.close()
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(data)
        if self.queue.qsize() >= QUEUED_CHUNKS:
            self._pause()

    def _pause(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False

    async def get(self) -> bytes | None:
        data = await self.queue.get()
        if data is not None and not self.reading and self.queue.qsize() < QUEUED_CHUNKS // 2:
            self.reading = True
            self.loop.add_reader(self.fd, self._readable)
        return data

    def close(self) -> None:
        self._pause()


async def _send(sock: SessionSocket, pipe: _Output) -> tuple[int, str]:
    timeout = sock.state.settings.live_send_timeout_seconds
    tail = b""
    while (data := await pipe.get()) is not None:
        try:
            await asyncio.wait_for(sock.websocket.send_bytes(data), timeout=timeout)
        except TimeoutError:
            return SLOW_CLIENT, "Client too slow"
        tail = (tail + data)[-4096:]
        if b"/pull/" in tail:
            tail = await _register_prs(sock, tail)
    return NORMAL, "Shell exited"


async def _register_prs(sock: SessionSocket, text: bytes) -> bytes:
    """PRs the session opened, as their URLs scroll by (the reference does the same)."""
    found = list(PR_URL.finditer(text))
    for match in found:
        async with transaction(sock.state.sessions) as session:
            await add_session_pr(
                session, session_id=sock.row.id, pr_url=match.group(0).decode(),
                pr_number=int(match.group(1)),
            )  # fmt: skip
    return text[found[-1].end() :] if found else text


async def _receive(sock: SessionSocket, master: int) -> tuple[int, str]:
    while True:
        message = await sock.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return NORMAL, ""
        data: bytes | None = message.get("bytes")
        text: str | None = message.get("text")
        if len(data or b"") + len((text or "").encode()) > MAX_MESSAGE:
            return TOO_LARGE, "Message larger than 1 MB"
        if text is not None and text.startswith("{"):
            control = _control(text)
            if control is not None:
                _resize(master, rows=control.rows, cols=control.cols)
                continue
        payload = data if data is not None else (text or "").encode()
        await _write_all(master, payload)
        await sock.touch()


def _control(text: str) -> TerminalResize | None:
    """A resize message, or None for typed input that happens to start with `{`."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("type") != "resize":
        return None
    try:
        return TerminalResize.model_validate(value)
    except ValidationError:
        return None


def _resize(fd: int, *, rows: int, cols: int) -> None:
    # The kernel sends SIGWINCH to the terminal's foreground process group.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await asyncio.sleep(0.01)  # the shell is not reading: wait for room
            continue
        view = view[written:]


def _hang_up(proc: subprocess.Popen[bytes]) -> None:
    """As a terminal closing does: SIGHUP to the shell's group, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGHUP)
    try:
        proc.wait(timeout=HANGUP_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
