"""`optio up`: Temporal, worker and API process(es) as children, stopped together within 10 s."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from cli import api_sockets
from cli.bootstrap import (
    StartupError,
    bootstrap,
    ensure_data_dir,
    ensure_encryption_key,
    migrate,
)
from cli.locate import remember
from core.settings import Settings
from integrations.sandbox import SandboxUnavailableError, check_sandbox
from temporal.devserver import TemporalBinaryMissing, dev_server_command, port_in_use

READY_TIMEOUT_S = 30.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None


def _spawn(
    name: str,
    command: list[str],
    *,
    log_path: Path | None,
    env: dict[str, str],
    pass_fds: tuple[int, ...] = (),
) -> Child:
    log = log_path.open("ab") if log_path else None
    # Own session: Ctrl-C reaches only us, and we stop children in a deliberate order.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log or None,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
        env=env,
        pass_fds=pass_fds,
    )
    return Child(name=name, process=process, log=log)


def _stop(children: list[Child], *, budget_s: float = 9.0) -> None:
    deadline = time.monotonic() + budget_s
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        if child.log:
            child.log.close()


def _check_ports(settings: Settings, *, own_temporal: bool) -> None:
    wanted = [("API", settings.api_host, settings.api_port)]
    if own_temporal:
        wanted += [
            ("Temporal", "127.0.0.1", settings.temporal_port),
            ("Temporal UI", "127.0.0.1", settings.temporal_ui_port),
            ("Temporal metrics", "127.0.0.1", settings.temporal_metrics_port),
            ("Temporal HTTP API", "127.0.0.1", settings.temporal_http_port),
        ]
    for label, host, port in wanted:
        if port_in_use(host, port):
            raise StartupError(
                f"{label} port {host}:{port} is already in use; stop what holds it or set "
                f"the matching OPTIO_* port setting (see docs/configuration.md)"
            )


def _wait_until(
    check: object, *, what: str, children: list[Child], timeout: float = READY_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.process.poll() is not None:
                raise StartupError(
                    f"{child.name} exited with code {child.process.returncode} while starting; "
                    f"see its log in the data dir"
                )
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise StartupError(f"{what} not ready after {timeout:.0f} s")


def _bind_api(settings: Settings) -> list[socket.socket]:
    try:
        return api_sockets.bind(settings.api_host, settings.api_port, settings.api_processes)
    except OSError as exc:
        raise StartupError(
            f"API port {settings.api_host}:{settings.api_port} cannot be bound: {exc.strerror}"
        ) from exc


def _api_healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_up(settings: Settings) -> int:
    own_temporal = settings.temporal_address is None
    try:
        check_sandbox()
    except SandboxUnavailableError as exc:
        raise StartupError(str(exc)) from exc
    ensure_data_dir(settings)
    ensure_encryption_key(settings)
    _check_ports(settings, own_temporal=own_temporal)
    migrate(settings)
    admin = bootstrap(settings)
    remember(settings)  # for `optio token create` run from another directory

    env = dict(os.environ)
    env["OPTIO_DATA_DIR"] = str(settings.data_dir)
    env["OPTIO_ENCRYPTION_KEY"] = settings.encryption_key or ""
    children: list[Child] = []
    listeners: list[socket.socket] = []
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        if own_temporal:
            try:
                command = dev_server_command(settings)
            except TemporalBinaryMissing as exc:
                raise StartupError(str(exc)) from exc
            children.append(
                _spawn("temporal", command, log_path=settings.data_dir / "temporal.log", env=env)
            )
            _wait_until(
                lambda: port_in_use("127.0.0.1", settings.temporal_port),
                what="Temporal",
                children=children,
            )
        me = [sys.executable, "-m", "cli"]
        children.append(_spawn("worker", [*me, "worker", "--no-migrate"], log_path=None, env=env))
        listeners += _bind_api(settings)
        # `optio api` without the CLI around it (cli/serve.py): a few MiB less resident.
        serve = [sys.executable, "-m", "cli.serve"]
        for number, listener in enumerate(listeners, start=1):
            name = "api" if len(listeners) == 1 else f"api {number}"
            command = [*serve, "--fd", str(listener.fileno())]
            children.append(
                _spawn(name, command, log_path=None, env=env, pass_fds=(listener.fileno(),))
            )
        health = f"http://{settings.api_host}:{settings.api_port}/api/health"
        _wait_until(
            lambda: all(map(api_sockets.listening, listeners)) and _api_healthy(health),
            what="API",
            children=children,
            # The API processes start at once, on the same cores as the worker: their
            # imports and startup are CPU-bound, so N of them take up to N times as long.
            timeout=READY_TIMEOUT_S * len(listeners),
        )
        # Each socket is now only its process's: one that dies takes its socket with it,
        # and no connection waits on a socket nobody accepts from.
        api_sockets.close(listeners)
        _banner(settings, admin.token, elapsed=time.monotonic() - started)
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    print(
                        f"optio: {child.name} exited with code {child.process.returncode}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        api_sockets.close(listeners)
        # API first (no new work), then the worker, then Temporal.
        _stop(list(reversed(children)))
        _stop_sandboxes(settings)


def _stop_sandboxes(settings: Settings) -> None:
    from integrations.launchers.local import LocalLauncher

    LocalLauncher(runs_root=settings.runs_dir).stop_all()


def _banner(settings: Settings, token: str | None, *, elapsed: float) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    lines = [
        f"Optio is ready ({elapsed:.1f} s)",
        f"  Dashboard:   {api}/",
        f"  API:         {api}",
        f"  API docs:    {api}/docs",
    ]
    if settings.temporal_address is None:
        lines.append(f"  Temporal UI: http://127.0.0.1:{settings.temporal_ui_port}")
    else:
        lines.append(f"  Temporal:    {settings.temporal_address}")
    lines.append(f"  Data dir:    {settings.data_dir}")
    if token:
        lines += [
            "",
            "Local admin API token (shown once, stored only as a hash):",
            f"  export OPTIO_TOKEN={token}",
        ]
    else:
        lines += ["", "Local admin exists; mint another token with: optio token create"]
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
