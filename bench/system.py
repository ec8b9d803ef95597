"""`optio up` as a subprocess, the way a user starts it, and its processes' memory."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OPTIO = ROOT / ".venv" / "bin" / "optio"
TOKEN_LINE = re.compile(r"export OPTIO_TOKEN=(\S+)")
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class BenchError(RuntimeError):
    """A failure of the benchmark run, with a message that says what to look at."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def git_revision(checkout: Path = ROOT) -> str:
    """HEAD of the checkout, with `+changes` when the working tree differs from it."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head or 'unknown'}{'+changes' if dirty else ''}"


def snapshot(target: Path, *, mode: str) -> str:
    """Freeze the code under test into target and return a label for it.

    mode "head": `git archive HEAD` (committed code only); mode "copy": the checkout's
    tracked and untracked, not ignored, files as they are now. Both are read-only for
    the repository. Runners import the code afresh for every task, so a checkout
    edited during a benchmark can break runs half way; a snapshot cannot change.
    """
    target.mkdir(parents=True)
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if mode == "head":
        archive = subprocess.Popen(
            ["git", "archive", "HEAD"], cwd=ROOT, env=env, stdout=subprocess.PIPE
        )
        extract = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout)
        assert archive.stdout is not None
        archive.stdout.close()
        if archive.wait(timeout=120) != 0 or extract.returncode != 0:
            raise BenchError(f"could not export HEAD of {ROOT} into {target}")
        _byte_compile(target)
        return head
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith("bench/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _byte_compile(target)
    return f"{head}+working-tree copy of {time.strftime('%H:%M:%S')}"


def _byte_compile(target: Path) -> None:
    """.pyc files, as `make run` and a wheel install have them (see the Makefile)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(target)], check=True)


def check_imports(env: dict[str, str], cwd: Path) -> None:
    """Fail early and clearly when the code under test does not even import."""
    modules = "cli.main, cli.up, api.main, worker.main, runner.main, activities, workflows"
    probe = subprocess.run(
        [str(OPTIO.parent / "python"), "-c", f"import {modules}; import cli; print(cli.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        raise BenchError(f"the code under test does not import:\n{probe.stderr.strip()[-1500:]}")
    wanted = env.get("PYTHONPATH")
    if wanted and not probe.stdout.strip().startswith(wanted):
        raise BenchError(f"expected the code from {wanted}, got {probe.stdout.strip()}")


# ---- /proc -----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        # After "comm)": state ppid pgrp ...; comm itself may contain spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def status_kib(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (runners and agents of a data dir)."""
    me = os.getpid()
    hits = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            pid = int(entry.name)
            if alive(pid) and any(text in part for part in cmdline(pid)):
                hits.append(pid)
    return hits


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(own, reaped children's) CPU seconds of a process, from /proc/<pid>/stat."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After "comm)": utime stime cutime cstime are fields 11-14.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    processes: dict[str, tuple[float, float]]
    machine: tuple[float, float]
    at: float

    @classmethod
    def take(cls, pids: dict[str, int]) -> CpuSnapshot:
        processes = {role: cpu_seconds(pid) for role, pid in pids.items()}
        return cls(
            processes={role: v for role, v in processes.items() if v is not None},
            machine=machine_cpu(),
            at=time.monotonic(),
        )

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """CPU seconds used between two snapshots; `machine busy %` is of all cores."""
        used: dict[str, float] = {}
        for role, (own, children) in self.processes.items():
            before = earlier.processes.get(role, (0.0, 0.0))
            used[role] = own - before[0]
            if role in ("worker", "runner server"):
                # Runners are reaped by the worker's runner fork server (or, when it is
                # unavailable, by the worker itself), and they reap their agents and git.
                used["worker children"] = used.get("worker children", 0.0) + children - before[1]
        busy = self.machine[0] - earlier.machine[0]
        total = self.machine[1] - earlier.machine[1]
        used["machine busy %"] = 100 * busy / total if total else 0.0
        used["wall"] = self.at - earlier.at
        return used


def role_of(pid: int) -> str | None:
    args = cmdline(pid)
    if not args:
        return None
    if Path(args[0]).name == "temporal":
        return "temporal"
    if "-m" in args and "cli.serve" in args:
        return "api"  # how `optio up` starts the API (cli/serve.py)
    if "-m" in args and "cli" in args:
        for role in ("worker", "api"):
            if role in args:
                return role
    return None


# ---- memory sampling -------------------------------------------------------------------


@dataclass
class MemorySampler:
    """Samples VmRSS of the named processes in a thread; `peak_mib` adds VmHWM at the end."""

    pids: dict[str, int]
    interval_s: float = 0.5
    max_rss_kib: dict[str, int] = field(default_factory=dict)
    max_runners: int = 0
    runner_marker: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bench-rss", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            if self.runner_marker:
                self.max_runners = max(self.max_runners, self.active_runs())
            self._stop.wait(self.interval_s)

    def active_runs(self) -> int:
        """Runners still working: alive and without a result.json in their run dir.

        A runner that has written its result only drains its logs; its slot is free.
        """
        assert self.runner_marker is not None
        active = 0
        for run_dir in self._run_dirs():
            if not (Path(run_dir) / "result.json").exists():
                active += 1
        return active

    def _run_dirs(self) -> list[str]:
        """Run dirs of live runners: `python -m runner <dir>`, or forked runners working in it."""
        assert self.runner_marker is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or not alive(int(entry.name)):
                continue
            args = cmdline(int(entry.name))
            if "runner" in args and args[-1].startswith(self.runner_marker):
                found.append(args[-1])
            elif "runner.forkserver" in args:
                with contextlib.suppress(OSError):
                    cwd = os.readlink(f"/proc/{entry.name}/cwd")
                    if cwd.startswith(self.runner_marker):
                        found.append(cwd)
        return found

    def sample(self) -> None:
        for role, pid in self.pids.items():
            rss = status_kib(pid, "VmRSS")
            if rss is not None:
                self.max_rss_kib[role] = max(self.max_rss_kib.get(role, 0), rss)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def peak_mib(self) -> dict[str, float]:
        """max(sampled VmRSS, VmHWM) per process, read while the processes still live."""
        self.sample()
        peaks: dict[str, float] = {}
        for role, pid in self.pids.items():
            hwm = status_kib(pid, "VmHWM") or 0
            peaks[role] = max(hwm, self.max_rss_kib.get(role, 0)) / 1024
        return peaks


# ---- optio up --------------------------------------------------------------------------


@dataclass
class OptioUp:
    """One `optio up` with a data dir, ports and (optionally) a database of its own."""

    data_dir: Path
    log_path: Path
    database_url: str | None
    max_concurrent: int = 20
    api_processes: int = 1  # OPTIO_API_PROCESSES
    # A frozen copy of the code to run instead of the checkout (see `snapshot`).
    source_dir: Path | None = None
    api_port: int = 0
    temporal_port: int = 0
    temporal_ui_port: int = 0
    temporal_metrics_port: int = 0
    temporal_http_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    children: dict[str, int] = field(default_factory=dict)  # role: pid (the first API's)
    api_pids: list[int] = field(default_factory=list)
    startup_s: float = 0.0
    leftovers: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        # Nothing from the caller's OPTIO_* may leak in (an OPTIO_TEMPORAL_ADDRESS, say).
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIO_")}
        env.update(
            OPTIO_DATA_DIR=str(self.data_dir),
            OPTIO_API_HOST="127.0.0.1",
            OPTIO_API_PORT=str(self.api_port),
            OPTIO_TEMPORAL_PORT=str(self.temporal_port),
            OPTIO_TEMPORAL_UI_PORT=str(self.temporal_ui_port),
            OPTIO_TEMPORAL_METRICS_PORT=str(self.temporal_metrics_port),
            OPTIO_TEMPORAL_HTTP_PORT=str(self.temporal_http_port),
            OPTIO_MAX_CONCURRENT=str(self.max_concurrent),
            OPTIO_API_PROCESSES=str(self.api_processes),
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["OPTIO_DATABASE_URL"] = self.database_url
        if self.source_dir is not None:
            # Ahead of the editable install's finder, for `optio up`, its children and runners.
            env["PYTHONPATH"] = str(self.source_dir)
        return env

    def start(self) -> None:
        if not OPTIO.exists():
            raise BenchError(f"{OPTIO} not found: run `make install` first")
        (
            self.api_port,
            self.temporal_port,
            self.temporal_ui_port,
            self.temporal_metrics_port,
            self.temporal_http_port,
        ) = free_ports(5)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        check_imports(self.env(), self.data_dir.parent)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(OPTIO), "up"],
                cwd=self.data_dir.parent,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Our own session: a Ctrl-C on the bench reaches it only through stop().
                start_new_session=True,
            )
        self.token = self._wait_for_token(started)
        self._wait_for_health(started)
        self.startup_s = time.monotonic() - started
        self.children = self._find_children()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _check_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise BenchError(
                f"`optio up` exited with code {self.process.returncode} while starting; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def _wait_for_token(self, started: float) -> str:
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            self._check_running()
            match = TOKEN_LINE.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            time.sleep(0.1)
        raise BenchError(
            f"no `export OPTIO_TOKEN=` line from `optio up` after {STARTUP_TIMEOUT_S:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _wait_for_health(self, started: float) -> None:
        url = f"{self.base_url}/api/health"
        last = "no answer"
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            self._check_running()
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise BenchError(f"GET {url} not 200 after {STARTUP_TIMEOUT_S:.0f} s ({last})")

    def _find_children(self) -> dict[str, int]:
        assert self.process is not None
        found: dict[str, int] = {}
        self.api_pids = []
        for pid in children_of(self.process.pid):
            role = role_of(pid)
            if role == "api":
                self.api_pids.append(pid)
            if role and role not in found:
                found[role] = pid
        if "worker" in found:
            # The worker's runner fork server forks and reaps every runner.
            for pid in children_of(found["worker"]):
                if "runner.forkserver" in cmdline(pid):
                    found["runner server"] = pid
        missing = {"worker", "api"} - set(found)
        if len(self.api_pids) != self.api_processes:
            missing.add(f"{self.api_processes} api")
        if missing:
            raise BenchError(
                f"could not find the {', '.join(sorted(missing))} process(es) among the children "
                f"of `optio up` (pid {self.process.pid})"
            )
        return found

    def stop(self) -> None:
        """SIGINT, wait; then make sure nothing started for this data dir is left running."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.leftovers.append(
                    f"`optio up` (pid {process.pid}) still running {STOP_TIMEOUT_S:.0f} s "
                    "after SIGINT; killed"
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=10)
        for role, pid in self.children.items():
            if alive(pid) and role_of(pid) == role:
                self.leftovers.append(f"{role} (pid {pid}) outlived `optio up`; killed")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # Runners and agents mention the data dir in their command line.
        deadline = time.monotonic() + 5
        stray = processes_mentioning(str(self.data_dir))
        while stray and time.monotonic() < deadline:
            time.sleep(0.2)
            stray = processes_mentioning(str(self.data_dir))
        for pid in stray:
            self.leftovers.append(f"pid {pid} ({' '.join(cmdline(pid))[:160]}) left behind; killed")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
