"""What activities need from a launcher: start a run's sandbox, find it again, stop it.

Runs are named by their run id (the sandbox name derives from it), so a retried activity
on any worker finds the run an earlier attempt launched instead of starting a second
agent. Launchers and the runner share their contract (spec, progress, result) through
`schemas/`, never by importing each other.
"""

from __future__ import annotations

from typing import Protocol

from schemas.runner import RunSpec, RunStatus


def sandbox_name(run_id: str) -> str:
    return f"optio-run-{run_id}"


class Launcher(Protocol):
    def warm(self) -> None:
        """Prepare ahead of the first run (a fork server, a pulled image)."""

    def attach(self, run_id: str) -> bool:
        """True if a run was launched under `run_id` and is alive or has a result: the
        caller then polls it instead of launching again."""

    def launch(self, spec: RunSpec) -> None:
        """Start the run unless it runs or has finished already; idempotent."""

    def poll(self, run_id: str) -> RunStatus:
        """Where the run stands; cheap enough to call several times a second."""

    def stop(self, run_id: str, grace: float = 5.0) -> None:
        """Stop the run and everything it started; leaves a failed result. Idempotent."""

    def stop_all(self, grace: float = 3.0) -> int:
        """Stop every run still alive (the whole system is stopping)."""

    def sweep(self, *, older_than_seconds: float) -> int:
        """Remove what finished runs left behind, past the retention."""
