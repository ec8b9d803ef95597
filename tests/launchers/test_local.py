"""LocalLauncher with real detached runner processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.launchers.local import LocalLauncher, group_alive, runner_alive, sandbox_name
from runner.files import read_pid
from tests.runner.helpers import IngestServer, git, make_spec, wait_for


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[LocalLauncher]:
    launcher = LocalLauncher(runs_root=tmp_path / "runs")
    yield launcher
    # Never leave a runner behind, whatever the test did.
    for run_dir in launcher.runs_root.glob("*"):
        launcher.stop(run_dir, grace=1.0)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sandbox_name() -> None:
    assert sandbox_name("abc") == "optio-run-abc"


def test_runner_outlives_the_process_that_launched_it(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    spec = make_spec(
        tmp_path, origin=origin, server=ingest, prompt="sleep 1.5\necho x > x.txt\necho done\n"
    )
    code = (
        "import sys; from pathlib import Path\n"
        "from integrations.launchers.local import LocalLauncher\n"
        "from schemas.runner import RunSpec\n"
        "spec = RunSpec.model_validate_json(sys.stdin.read())\n"
        "print(LocalLauncher(runs_root=Path(sys.argv[1])).launch(spec))\n"
    )
    launched = subprocess.run(
        [sys.executable, "-c", code, str(launcher.runs_root)],
        input=spec.model_dump_json(by_alias=True),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    run_dir = Path(launched.stdout.strip())
    assert run_dir == launcher.run_dir(spec.run_id)
    assert launcher.poll(run_dir).state == "running"  # its launcher is gone

    status = wait_for(
        lambda: (s := launcher.poll(run_dir)).state == "finished" and s, what="finished"
    )
    assert status.result.success and status.result.pushed
    assert git("show", "optio/task-x:x.txt", cwd=origin) == "x"
    wait_for(lambda: [e["content"] for e in ingest.events()] == ["done"], what="log delivery")


def test_launch_is_idempotent(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    starts = tmp_path / "agent-starts"
    prompt = f"echo $$ >> {starts}\nsleep 1\necho done\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    run_dir = launcher.launch(spec)
    pid = read_pid(run_dir)
    wait_for(starts.exists, what="agent start")
    assert launcher.launch(spec) == run_dir  # a retried activity re-attaches
    assert read_pid(run_dir) == pid

    wait_for(lambda: launcher.poll(run_dir).state == "finished", what="finished")
    launcher.launch(spec)  # finished runs are not started again either
    assert read_pid(run_dir) == pid
    assert len(starts.read_text().split()) == 1


def test_stop_kills_agent_and_runner(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    prompt = "sleep 60 &\necho started\nwait\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    run_dir = launcher.launch(spec)
    wait_for(lambda: ingest.events(), what="agent output")
    status = launcher.poll(run_dir)
    assert status.state == "running" and status.progress is not None
    agent = status.progress.agent_pid
    runner = read_pid(run_dir)
    assert agent is not None and runner is not None and _alive(agent)

    launcher.stop(run_dir)
    status = launcher.poll(run_dir)
    assert status.state == "finished"
    assert status.result is not None and status.result.error == "Run stopped"
    assert not runner_alive(runner, run_dir)
    wait_for(lambda: not group_alive(agent), what="agent group to die")
    launcher.stop(run_dir)  # idempotent


def test_dead_runner_without_result_is_lost_and_stop_cleans_up(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo up\nsleep 60\n")
    run_dir = launcher.launch(spec)
    wait_for(lambda: ingest.events(), what="agent output")
    agent = launcher.poll(run_dir).progress.agent_pid  # type: ignore[union-attr]
    runner = read_pid(run_dir)
    assert runner is not None and agent is not None
    os.kill(runner, signal.SIGKILL)  # the runner alone crashes; its agent lives on

    wait_for(lambda: launcher.poll(run_dir).state == "lost", what="lost")
    assert _alive(agent)
    launcher.stop(run_dir, grace=1.0)
    wait_for(lambda: not _alive(agent), what="orphaned agent to die")
    assert launcher.poll(run_dir).state == "finished"
