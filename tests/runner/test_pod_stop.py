"""The agent container stops its command when the pod's runner asks (a stall):
SIGTERM to the command's process group, SIGKILL after the grace if it does not end."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from runner.pod import STOP_GRACE, wait_or_stop


def ask_to_stop(stop_file: Path, after: float) -> None:
    threading.Timer(after, stop_file.write_text, ("stall\n",)).start()


def test_a_command_ends_with_its_own_exit_code_when_nobody_asks(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 0.2; exit 3"], start_new_session=True)
    assert wait_or_stop(proc, tmp_path / "stop") == 3


def test_a_stop_request_ends_the_whole_process_group(tmp_path: Path) -> None:
    marker = f"sleep {time.monotonic_ns() % 1_000_000 + 100_000}"
    proc = subprocess.Popen(["sh", "-c", f"{marker} & wait"], start_new_session=True)
    ask_to_stop(tmp_path / "stop", after=0.3)
    started = time.monotonic()
    assert wait_or_stop(proc, tmp_path / "stop") == -signal.SIGTERM
    assert time.monotonic() - started < STOP_GRACE
    time.sleep(0.2)
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False)
    assert found.returncode == 1  # the background child went with it


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    # Ignored signals stay ignored across exec: the shell and its sleep both ignore TERM.
    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], start_new_session=True
    )
    ask_to_stop(tmp_path / "stop", after=0.3)
    started = time.monotonic()
    assert wait_or_stop(proc, tmp_path / "stop") == -signal.SIGKILL
    assert STOP_GRACE <= time.monotonic() - started < STOP_GRACE + 3
