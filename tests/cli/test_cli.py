"""The `optio` command as a user runs it: real processes, real ports on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

OPTIO = str(Path(sys.executable).parent / "optio")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIO_")}
    env.update(extra)
    return env


def descendants(pid: int) -> set[int]:
    """Every process whose ancestry leads to pid (children start their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.api_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.metrics_port = free_port()
        self.env = clean_env(
            OPTIO_DATA_DIR=str(data_dir),
            OPTIO_API_PORT=str(self.api_port),
            OPTIO_TEMPORAL_PORT=str(self.temporal_port),
            OPTIO_TEMPORAL_UI_PORT=str(self.ui_port),
            OPTIO_TEMPORAL_METRICS_PORT=str(self.metrics_port),
            OPTIO_TEMPORAL_HTTP_PORT=str(free_port()),
            XDG_STATE_HOME=str(data_dir.parent / "state"),
        )
        self.out = data_dir.parent / f"up-{self.api_port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60) -> str:
        with open(self.out, "wb") as out:
            self.process = subprocess.Popen(
                [OPTIO, "up"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if "Press Ctrl-C to stop." in text:
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"optio up exited early:\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"optio up not ready:\n{self.out.read_text()}")

    def interrupt(self) -> float:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=15)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for pid in descendants(self.process.pid):
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    runner = Up(tmp_path / "data")
    try:
        yield runner
    finally:
        runner.kill()


def test_up_serves_everything_stops_cleanly_and_keeps_data(up: Up) -> None:
    banner = up.start()
    token = re.search(r"OPTIO_TOKEN=(optio_pat_[0-9a-f]{64})", banner)
    assert token, banner
    api = f"http://127.0.0.1:{up.api_port}"
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    assert httpx.get(f"{api}/api/tasks").status_code == 401
    listed = httpx.get(f"{api}/api/tasks", headers=headers)
    assert listed.status_code == 200 and listed.json()["tasks"] == []
    assert httpx.get(f"{api}/api/health").json()["healthy"] is True
    assert httpx.get(f"{api}/docs").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{up.ui_port}/").status_code == 200
    # The embedded Temporal's metrics are where the setting says, not on a random port.
    assert httpx.get(f"http://127.0.0.1:{up.metrics_port}/metrics").status_code == 200
    # A token made from another directory is one the running server accepts.
    elsewhere = Path(up.env["OPTIO_DATA_DIR"]).parent / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in up.env.items() if k != "OPTIO_DATA_DIR"}
    minted = subprocess.run(
        [OPTIO, "token", "create", "--name", "elsewhere"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert not (elsewhere / ".optio-data").exists()
    mine = {"Authorization": f"Bearer {minted}"}
    assert httpx.get(f"{api}/api/tasks", headers=mine).status_code == 200
    repo = Path(up.env["OPTIO_DATA_DIR"]).parent / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    created = httpx.post(f"{api}/api/repos", json={"repoUrl": str(repo)}, headers=headers)
    assert created.status_code == 201

    assert up.process is not None
    children = descendants(up.process.pid)
    assert len(children) >= 3  # temporal, worker, api
    assert up.interrupt() < 10
    assert not [pid for pid in children if alive(pid)]

    again = up.start()
    assert "Local admin exists" in again and "optio_pat_" not in again
    repos = httpx.get(f"{api}/api/repos", headers=headers).json()["repos"]
    assert [r["repoUrl"] for r in repos] == [f"file://{repo}"]
    up.interrupt()


def test_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [OPTIO, "up"],
            env=clean_env(OPTIO_DATA_DIR=str(tmp_path / "d"), OPTIO_API_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"optio: API port 127.0.0.1:{port} is already in use; stop what holds it or set "
        "the matching OPTIO_* port setting (see docs/configuration.md)"
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [OPTIO, "migrate"],
        env=clean_env(
            OPTIO_DATA_DIR=str(tmp_path / "d"),
            OPTIO_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optio: database unreachable"), done.stderr
    assert "Traceback" not in done.stderr


def test_openapi_prints_the_document_without_starting_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [OPTIO, "openapi"],
        env=clean_env(OPTIO_DATA_DIR=str(tmp_path / "never-created")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document = json.loads(done.stdout)
    assert document["info"]["title"] == "Optio"
    assert "/api/tasks" in document["paths"] and "/api/health" in document["paths"]
    assert not (tmp_path / "never-created").exists()


def test_token_create_mints_a_working_token(tmp_path: Path) -> None:
    env = clean_env(OPTIO_DATA_DIR=str(tmp_path / "d"))
    done = subprocess.run(
        [OPTIO, "token", "create", "--name", "ci"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert re.fullmatch(r"optio_pat_[0-9a-f]{64}", done.stdout.strip())


def test_token_create_without_a_data_dir_says_what_to_set(tmp_path: Path) -> None:
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    done = subprocess.run(
        [OPTIO, "token", "create"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "set OPTIO_DATA_DIR" in done.stderr
    assert not (tmp_path / ".optio-data").exists()


def test_token_create_for_a_server_on_an_external_database_asks_for_its_url(
    tmp_path: Path,
) -> None:
    """The marker of an `optio up` on PostgreSQL says so (never the URL): a token minted
    in a new SQLite file beside its data dir would be one the server rejects."""
    from cli.locate import EXTERNAL

    data = tmp_path / "server-data"
    data.mkdir()
    marker = tmp_path / "state" / "optio" / "data-dir"
    marker.parent.mkdir(parents=True)
    marker.write_text(f"{data}\n{EXTERNAL}\n")
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    done = subprocess.run(
        [OPTIO, "token", "create"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "set OPTIO_DATABASE_URL" in done.stderr
    assert list(data.iterdir()) == []


def test_up_uses_an_existing_temporal(tmp_path: Path) -> None:
    """OPTIO_TEMPORAL_ADDRESS: no dev server of our own, the given one is used."""
    own = Up(tmp_path / "temporal-data")
    own.env["OPTIO_API_PORT"] = str(free_port())
    temporal = subprocess.Popen(
        [OPTIO, "temporal"], env=own.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", own.temporal_port)) == 0:
                    break
            time.sleep(0.1)
        runner = Up(tmp_path / "data")
        runner.env["OPTIO_TEMPORAL_ADDRESS"] = f"127.0.0.1:{own.temporal_port}"
        try:
            banner = runner.start()
            assert f"Temporal:    127.0.0.1:{own.temporal_port}" in banner
            assert "Temporal UI" not in banner
            assert runner.process is not None
            commands = [
                Path(f"/proc/{pid}/cmdline").read_bytes() for pid in descendants(runner.process.pid)
            ]
            assert not [c for c in commands if b"start-dev" in c]
            health = httpx.get(f"http://127.0.0.1:{runner.api_port}/api/health").json()
            assert health["checks"]["temporal"] == "ok"
            runner.interrupt()
        finally:
            runner.kill()
    finally:
        temporal.terminate()
        temporal.wait(timeout=15)
