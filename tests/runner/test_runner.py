"""The runner as a real process: real git repos, real HTTP ingest, real scripts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.run_dir import read_progress, read_result, write_spec
from schemas.runner import RunResult, RunSpec
from tests.runner.helpers import IngestServer, git, make_spec, wait_for

Start = Callable[[RunSpec], tuple[Path, subprocess.Popen[bytes]]]


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(spec: RunSpec) -> tuple[Path, subprocess.Popen[bytes]]:
        run_dir = tmp_path / "runs" / spec.run_id
        run_dir.mkdir(parents=True)
        write_spec(run_dir, spec)  # as the launcher does: the secrets come on stdin
        with open(run_dir / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runner", str(run_dir)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert proc.stdin is not None
        with proc.stdin:
            proc.stdin.write(spec.secrets_json().encode())
        procs.append(proc)
        return run_dir, proc

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def finish(run_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 8.0) -> RunResult:
    assert proc.wait(timeout=timeout) == 0, (run_dir / "runner.log").read_text()
    result = read_result(run_dir)
    assert result is not None
    return result


SUCCESS_SCRIPT = """\
echo "hello" > hello.txt
printf '\\033[32mgreen\\033[0m\\n'
echo "to stderr" >&2
echo

echo "all done"
"""


def test_script_success_commits_pushes_and_streams_logs(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=SUCCESS_SCRIPT)
    run_dir, proc = start_runner(spec)
    result = finish(run_dir, proc)

    assert result.success, result
    assert (result.exit_code, result.summary, result.error) == (0, "all done", None)
    assert result.pushed and result.committed_changes
    assert result.head_sha == git("rev-parse", "optio/task-x", cwd=origin)
    assert git("show", "optio/task-x:hello.txt", cwd=origin) == "hello"
    assert git("log", "-1", "--format=%s|%an", "optio/task-x", cwd=origin) == (
        "optio: Do the thing|Optio Agent"
    )
    # The runner's own files never reach the repository.
    assert ".optio" not in git("ls-tree", "--name-only", "optio/task-x", cwd=origin)
    worktree = Path(spec.worktree_path)
    assert (worktree / ".optio" / "task.md").read_text().startswith("# Do the thing\n")
    assert (worktree / ".optio" / "agent-script.sh").read_text() == SUCCESS_SCRIPT

    events = ingest.events()
    assert [e["seq"] for e in events] == list(range(len(events)))
    stdout = [e["content"] for e in events if e["stream"] == "stdout"]
    assert stdout == ["green", "all done"]  # ANSI stripped, blank line skipped
    stderr = [e for e in events if e["stream"] == "stderr"]
    assert [(e["content"], e["logType"]) for e in stderr] == [("to stderr", "text")]
    assert set(ingest.auth) == {"Bearer tok-123"}
    progress = read_progress(run_dir)
    assert progress is not None and progress.phase == "done"
    assert progress.events_emitted == progress.events_delivered == 3
    # Delivered, the spool goes, and so does the spec: what remains holds no secret.
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "progress.json",
        "result.json",
        "runner.log",
    ]
    for leftover in run_dir.iterdir():
        assert "tok-123" not in leftover.read_text()


def test_script_failure_reports_exit_code_and_pushes_nothing(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    prompt = "echo partial work > f.txt\necho 'something broke'\nexit 3\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    result = finish(*start_runner(spec))

    assert not result.success
    assert result.exit_code == 3
    assert result.error == "Script exited with code 3"
    assert result.summary == "something broke"
    assert not result.pushed
    assert git("branch", "--list", "optio/task-x", cwd=origin) == ""


def test_unsupported_agent_fails_clearly_without_worktree(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="x", agent_type="openclaw")
    result = finish(*start_runner(spec))

    assert not result.success
    assert result.error == "Agent type 'openclaw' is accepted but its adapter is not available yet"
    assert not Path(spec.worktree_path).exists()
    assert [e["content"] for e in ingest.events()] == [result.error]


def test_many_lines_arrive_in_order_in_bounded_batches(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    prompt = "for i in $(seq 0 1499); do echo \"line $i\"; done\nprintf 'no newline'\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    result = finish(*start_runner(spec))

    assert result.success and result.summary == "no newline"
    events = ingest.events()
    assert [e["seq"] for e in events] == list(range(1501))
    assert [e["content"] for e in events[:1500]] == [f"line {i}" for i in range(1500)]
    assert events[-1]["content"] == "no newline"
    assert all(len(b) <= 200 for b in ingest.batches)
    assert len(ingest.batches) < 100  # lines travel in batches, not one request each


def test_events_from_an_outage_arrive_after_recovery(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    # The API records but answers 503 first (so the runner must re-send the same
    # seqs), then goes away entirely, then comes back on the same port.
    ingest.mode = "record-then-503"
    prompt = "echo one\necho two >&2\necho three\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    run_dir, proc = start_runner(spec)
    wait_for(lambda: read_result(run_dir), what="result.json")
    result = read_result(run_dir)
    assert result is not None and result.success  # the outage did not disturb the agent
    wait_for(lambda: len(ingest.raw_events()) > 3, what="a re-send")
    ingest.stop()
    assert proc.poll() is None  # still trying to deliver
    ingest.mode = "ok"
    ingest.start()
    assert proc.wait(timeout=8) == 0

    events = ingest.events()
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert {e["content"] for e in events} == {"one", "two", "three"}
    raw = [e["seq"] for e in ingest.raw_events()]
    assert raw[:3] == [0, 1, 2] and raw[3:6] == [0, 1, 2]  # whole batches re-sent
    progress = read_progress(run_dir)
    assert progress is not None and progress.events_delivered == 3
    assert "ingest answered 503" in (run_dir / "runner.log").read_text()


def test_revoked_run_drops_logs_and_exits(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    ingest.mode = "404"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo hi\n")
    run_dir, proc = start_runner(spec)
    result = finish(run_dir, proc)
    assert result.success
    assert ingest.events() == []
    assert "rejected seq 0..0 with 404" in (run_dir / "runner.log").read_text()


def _pid_running(argv: list[str]) -> int | None:
    wanted = "\0".join(argv).encode() + b"\0"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == wanted and _alive(int(cmdline.parent.name)):
                return int(cmdline.parent.name)
        except OSError:
            continue
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_kills_agent_group_and_reports_stopped(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    # The background child lives in the agent's sandbox, so it must die too. Its pid is
    # the sandbox's own: find it on the host by its command line.
    prompt = "sleep 61.25 &\necho started\nwait\n"
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt=prompt)
    run_dir, proc = start_runner(spec)
    wait_for(lambda: any(e["content"] == "started" for e in ingest.events()), what="output")
    progress = read_progress(run_dir)
    assert progress is not None and progress.phase == "running_agent" and progress.agent_pid
    agent = progress.agent_pid
    child = wait_for(lambda: _pid_running(["sleep", "61.25"]), what="background child")
    assert _alive(agent) and _alive(child)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=8) == 0
    result = read_result(run_dir)
    assert result is not None and not result.success and result.error == "Run stopped"
    wait_for(lambda: not _alive(child) and not _alive(agent), what="agent group to die")


def test_push_failure_is_a_failed_run_with_the_git_error(
    tmp_path: Path, origin: Path, ingest: IngestServer, start_runner: Start
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    spec = make_spec(tmp_path, origin=origin, server=ingest, prompt="echo x > x.txt\necho ok\n")
    result = finish(*start_runner(spec))

    assert not result.success and not result.pushed
    assert result.exit_code == 0 and result.summary == "ok"
    assert result.error is not None and result.error.startswith("Publishing the branch failed")
    assert "pushes are closed" in result.error
    wait_for(lambda: any(e["logType"] == "error" for e in ingest.events()), what="error event")
