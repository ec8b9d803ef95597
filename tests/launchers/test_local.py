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
from schemas.run_dir import read_pid
from tests.runner.helpers import IngestServer, git, make_spec, wait_for


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[LocalLauncher]:
    launcher = LocalLauncher(runs_root=tmp_path / "runs")
    yield launcher
    # Never leave a runner behind, whatever the test did.
    for run_dir in launcher.runs_root.glob("*"):
        launcher.stop(run_dir.name, grace=1.0)


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
        "LocalLauncher(runs_root=Path(sys.argv[1])).launch(spec)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(launcher.runs_root)],
        input=spec.public_json()[:-1] + "," + spec.secrets_json()[1:],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    run_id = spec.run_id
    assert launcher.attach(run_id)
    assert launcher.poll(run_id).state == "running"  # its launcher is gone

    status = wait_for(
        lambda: (s := launcher.poll(run_id)).state == "finished" and s, what="finished"
    )
    assert status.result.success and status.result.pushed
    assert git("show", "optio/task-x:x.txt", cwd=origin) == "x"
    wait_for(lambda: [e["content"] for e in ingest.events()] == ["done"], what="log delivery")


def test_launch_is_idempotent(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    prompt = "echo agent-start\nsleep 1\necho done\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    launcher.launch(spec)
    run_dir = launcher.run_dir(spec.run_id)
    pid = read_pid(run_dir)
    wait_for(lambda: ingest.events(), what="agent start")
    launcher.launch(spec)  # a retried activity re-attaches
    assert read_pid(run_dir) == pid

    wait_for(lambda: launcher.poll(spec.run_id).state == "finished", what="finished")
    launcher.launch(spec)  # finished runs are not started again either
    assert read_pid(run_dir) == pid
    starts = [e for e in ingest.raw_events() if e["content"] == "agent-start"]
    assert len(starts) == 1


def test_stop_kills_agent_and_runner(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    prompt = "sleep 60 &\necho started\nwait\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    launcher.launch(spec)
    run_dir, run_id = launcher.run_dir(spec.run_id), spec.run_id
    wait_for(lambda: ingest.events(), what="agent output")
    status = launcher.poll(run_id)
    assert status.state == "running" and status.progress is not None
    agent = status.progress.agent_pid
    runner = read_pid(run_dir)
    assert agent is not None and runner is not None and _alive(agent)

    launcher.stop(run_id)
    status = launcher.poll(run_id)
    assert status.state == "finished"
    assert status.result is not None and status.result.error == "Run stopped"
    assert not runner_alive(runner, run_dir)
    wait_for(lambda: not group_alive(agent), what="agent group to die")
    launcher.stop(run_id)  # idempotent


def test_dead_runner_without_result_is_lost_and_stop_cleans_up(
    tmp_path: Path, origin: Path, ingest: IngestServer, launcher: LocalLauncher
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo up\nsleep 60\n")
    launcher.launch(spec)
    run_dir, run_id = launcher.run_dir(spec.run_id), spec.run_id
    wait_for(lambda: ingest.events(), what="agent output")
    agent = launcher.poll(run_id).progress.agent_pid  # type: ignore[union-attr]
    runner = read_pid(run_dir)
    assert runner is not None and agent is not None
    os.kill(runner, signal.SIGKILL)  # the runner alone crashes

    wait_for(lambda: launcher.poll(run_id).state == "lost", what="lost")
    assert not launcher.attach(run_id)  # the activity must launch afresh
    # The sandbox dies with its runner (bwrap --die-with-parent): no orphaned agent keeps
    # working on a worktree that a fresh launch is about to reset.
    wait_for(lambda: not _alive(agent), what="orphaned agent to die")
    launcher.stop(run_id, grace=1.0)
    assert launcher.poll(run_id).state == "finished"
