"""One agent run, start to finish: worktree, agent, commit and push, result, log drain.

Invoked as `python -m runner <run_dir>` by a launcher, detached from the worker, so
everything it reports goes through files in run_dir and the ingest endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from integrations.agents import (
    AgentAdapter,
    ParsedEntry,
    UnsupportedAgentError,
    get_adapter,
    takes_input_mid_run,
)
from integrations.agents.base import Stream
from integrations.agents.stream_input import prompt_as_argument
from integrations.git import (
    GitError,
    commit_all,
    ensure_mirror,
    prepare_worktree,
    push_branch,
    repair_git_pointer,
)
from integrations.sandbox import Sandbox, SandboxUnavailableError, sandbox_env
from integrations.scratch_repo import make_scratch_repo, scratch_path
from integrations.tls import tls_context
from runner.delivery import EventSink
from runner.inbox import Inbox
from runner.process import run_agent
from runner.progress import ProgressTracker
from runner.secrets import MissingSecretError, Redactor, servers_for_agent
from runner.setup import SetupFiles, write_no_follow
from schemas.run_dir import read_progress, read_result, read_spec, strip_run_dir, write_result
from schemas.runner import RunResult, RunSpec

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 600.0  # keep delivering logs this long after the run, while the API is down
STOPPED = "Run stopped"

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking git work in a daemon thread.

    Unlike asyncio.to_thread, a daemon thread does not hold the process open when
    the run is stopped while git is still busy.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting coroutine was cancelled (run stopped)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def target() -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        # The loop is closed if the run was stopped and finished meanwhile.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, daemon=True).start()
    return await future


def agent_env(spec: RunSpec, adapter: AgentAdapter, *, home: Path) -> dict[str, str]:
    # The runner's own environment (the worker's) stays outside: see sandbox_env.
    env = sandbox_env(home=home, extra=spec.env)
    env["HOME"] = str(home)
    if spec.extra_path:
        env["PATH"] = os.pathsep.join([*spec.extra_path, env["PATH"]])
    env.update(adapter.env(spec))
    # Credentials last: nothing above may replace them, and only this process gets them.
    env.update({k: v.get_secret_value() for k, v in spec.secret_env.items()})
    return env


def sandbox_for(spec: RunSpec, *, home: Path, mirror: Path) -> Sandbox:
    """The run's view of the machine: its worktree, the repository's git data (so the agent
    can commit and rebase), its home, the agent CLIs read-only."""
    return Sandbox(
        worktree=Path(spec.worktree_path),
        home=home,
        git_dir=mirror,
        read_only=[install_root(Path(p)) for p in spec.extra_path],
    )


def install_root(bin_dir: Path) -> Path:
    """`.../.optio-agents` for `.../.optio-agents/node_modules/.bin`: the links' targets too."""
    while bin_dir.name in (".bin", "bin", "node_modules") and bin_dir.parent != bin_dir:
        bin_dir = bin_dir.parent
    return bin_dir


def agent_home(spec: RunSpec, run_dir: Path) -> Path:
    # Real agents keep one per task (their sessions live there); otherwise a fresh one in
    # the run directory, removed with everything else when the run ends.
    home = Path(spec.agent_home) if spec.agent_home else run_dir / "home"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def write_task_files(worktree: Path, spec: RunSpec, adapter: AgentAdapter) -> Path:
    # .optio/ is in the repository's info/exclude (integrations.git), never committed. An
    # earlier agent may have left a link there: this process writes outside the sandbox,
    # so it follows none.
    optio = worktree / ".optio"
    if optio.is_symlink() or (optio.exists() and not optio.is_dir()):
        optio.unlink()
    optio.mkdir(exist_ok=True)
    task = spec.task_file if spec.task_file is not None else f"# {spec.title}\n\n{spec.prompt}\n"
    write_no_follow(optio / "task.md", task)
    prompt_file = optio / adapter.prompt_filename
    write_no_follow(prompt_file, spec.prompt)
    return prompt_file


class Run:
    def __init__(self, *, run_dir: Path, spec: RunSpec) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.worktree = Path(spec.worktree_path)
        self.progress = ProgressTracker(
            run_dir=run_dir, counters=lambda: (self.sink.next_seq, self.sink.delivered)
        )
        self.sink = EventSink(
            run_dir=run_dir,
            ingest_url=spec.ingest_url,
            run_token=spec.run_token.get_secret_value(),
            on_change=self.progress.write,
        )
        # The run's own credentials, every other secret of its workspace, and its token.
        secrets = (*spec.secret_env.values(), *spec.secrets.values(), *spec.mask_values)
        self.redact = Redactor([v.get_secret_value() for v in (*secrets, spec.run_token)])
        self.setup = SetupFiles()
        self.start_sha: str | None = None
        # Set when the agent was stopped for its silence (runner/pod.py): the run fails.
        self.stall_error: str | None = None

    def fail(self, error: str, **fields: object) -> RunResult:
        error = self.redact.text(error)
        log.error("%s", error)
        self.sink.emit(content=error, log_type="error", stream="system")
        return RunResult.model_validate({"success": False, "error": error, **fields})

    def emit(self, entry: ParsedEntry) -> None:
        self.sink.emit(
            content=self.redact.text(entry.content),
            log_type=entry.log_type,
            stream=entry.stream,
            metadata=self.redact.data(entry.metadata),
        )

    async def execute(self) -> RunResult:
        spec = self.spec
        try:
            adapter = get_adapter(spec.agent_type)
        except UnsupportedAgentError as exc:
            return self.fail(str(exc), prepared=False)
        try:
            mirror = await self.prepare_git()
        except (GitError, httpx.HTTPError) as exc:
            return self.fail(f"Preparing the worktree failed: {exc}", prepared=False)
        prompt_file = write_task_files(self.worktree, spec, adapter)
        secrets = {k: v.get_secret_value() for k, v in spec.secrets.items()}
        try:
            # The agent's view of the spec: MCP config that names its secrets (their values
            # reach the agent's environment only) or, for CLIs that read no references,
            # holds them outside any file.
            servers, mcp_env = servers_for_agent(
                spec.mcp_servers, secrets, agent_type=spec.agent_type
            )
            agent_spec = spec.model_copy(update={"mcp_servers": servers})
        except MissingSecretError as exc:
            return self.fail(str(exc))
        home = agent_home(spec, self.run_dir)
        self.setup.write(adapter.setup_files(agent_spec), worktree=self.worktree, home=home)

        entries: list[ParsedEntry] = adapter.before_run(agent_spec, home=home)
        for entry in entries:
            self.emit(entry)

        inbox = self.inbox(agent_spec)

        def on_line(line: str, stream: Stream) -> None:
            self.progress.touch()
            if inbox is not None and stream == "stdout":
                inbox.observe(line)
            for entry in adapter.parse_line(line, stream):
                entries.append(entry)
                self.emit(entry)

        self.progress.set_phase("running_agent")
        try:
            command = adapter.build_command(agent_spec, prompt_file=prompt_file)
            if inbox is None and takes_input_mid_run(spec.agent_type):
                # No channel to the agent's stdin here (a pod): the prompt goes as before.
                command = prompt_as_argument(command, agent_spec.prompt)
            exit_code = await self.run_agent_process(
                command=command,
                home=home,
                mirror=mirror,
                env=agent_env(agent_spec, adapter, home=home) | mcp_env,
                on_line=on_line,
                inbox=inbox,
            )
        except SandboxUnavailableError as exc:
            return self.fail(str(exc))
        except OSError as exc:
            return self.fail(f"Could not start the {spec.agent_type} agent: {exc}")
        finally:
            self.setup.restore()
            # Whatever the agent did to the worktree's .git, ours is what git sees now.
            await in_thread(lambda: repair_git_pointer(mirror=mirror, worktree_path=self.worktree))
        if self.stall_error is not None:
            # Whatever the stopped agent's exit code says: nothing of it is published.
            return self.fail(self.stall_error, exit_code=exit_code, stalled=True)
        outcome = adapter.result(exit_code, entries)
        result = RunResult(
            success=outcome.success,
            exit_code=exit_code,
            summary=self.redact.text(outcome.summary),
            error=self.redact.text(outcome.error) if outcome.error else None,
            session_id=outcome.session_id,
            cost_usd=outcome.cost_usd,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            model=outcome.model,
        )
        if not outcome.success:
            return result
        if not spec.publish:
            # A review run only reads the PR's head: whatever it leaves behind stays local.
            return result.model_copy(update={"head_sha": self.start_sha})
        return await self.publish(result)

    def inbox(self, spec: RunSpec) -> Inbox | None:
        """The agent's input for messages sent while it runs, if it takes any."""
        if not takes_input_mid_run(spec.agent_type):
            return None
        url = spec.ingest_url.removesuffix("/events") + "/inbox"
        return Inbox(url=url, token=spec.run_token.get_secret_value(), prompt=spec.prompt)

    async def prepare_git(self) -> Path:
        """The repository's mirror, fresh, and the run's worktree on it; sets start_sha."""
        spec = self.spec
        needed = [spec.base_branch, *([spec.branch] if spec.from_existing_branch else [])]
        # Private repositories need the forge credential to be fetched at all; it stays
        # in this process (outside the sandbox) and in the one git process it is for.
        auth = await forge_authorization(spec)
        if spec.scratch:
            origin = scratch_path(spec.repo_url)
            await in_thread(lambda: make_scratch_repo(origin))
        mirror = await in_thread(
            lambda: ensure_mirror(
                repo_url=spec.repo_url,
                cache_dir=Path(spec.mirror_cache_dir),
                branches=needed,
                auth_header=auth,
            )
        )
        self.start_sha = await in_thread(
            lambda: prepare_worktree(
                mirror=mirror,
                worktree_path=self.worktree,
                branch=spec.branch,
                base_branch=spec.base_branch,
                from_existing_branch=spec.from_existing_branch,
            )
        )
        return mirror

    async def run_agent_process(
        self,
        *,
        command: list[str],
        home: Path,
        mirror: Path,
        env: dict[str, str],
        on_line: Callable[[str, Stream], None],
        inbox: Inbox | None = None,
    ) -> int:
        """Run the agent's command in its sandbox to its exit code (runner/pod.py hands it
        to the pod's agent container instead); `inbox` owns its stdin."""
        return await run_agent(
            command=sandbox_for(self.spec, home=home, mirror=mirror).command(command),
            cwd=self.worktree,
            env=env,
            on_line=on_line,
            on_start=self.progress.set_agent_pid,
            feed=inbox.feed if inbox is not None else None,
            on_exit=inbox.close if inbox is not None else None,
        )

    async def publish(self, result: RunResult) -> RunResult:
        spec = self.spec
        self.progress.set_phase("pushing")
        try:
            committed = await in_thread(
                lambda: commit_all(
                    worktree=self.worktree,
                    message=f"optio: {spec.title or spec.task_id}",
                    author_name=spec.commit_author_name,
                    author_email=spec.commit_author_email,
                )
            )
            # Asked for again now that the agent has exited (a short-lived token may have
            # expired meanwhile); the agent never held it.
            auth = await forge_authorization(spec)
            # A fresh start from the base branch replaces whatever an earlier attempt
            # pushed; resuming from the existing branch only ever fast-forwards it.
            sha = await in_thread(
                lambda: push_branch(
                    worktree=self.worktree,
                    remote_url=spec.repo_url,
                    branch=spec.branch,
                    force=not spec.from_existing_branch,
                    auth_header=auth,
                    lease=self.start_sha,
                )
            )
        except (GitError, httpx.HTTPError) as exc:
            fields = result.model_dump(exclude={"success", "error"})
            return self.fail(f"Publishing the branch failed: {exc}", **fields)
        return result.model_copy(
            update={"committed_changes": committed, "pushed": True, "head_sha": sha}
        )


async def forge_authorization(spec: RunSpec) -> str | None:
    """A Basic credential for fetching from and pushing to a forge over HTTP(S), from the
    control plane. Only this process (outside the sandbox) holds the run token to ask."""
    if not spec.repo_url.startswith(("http://", "https://")):
        return None
    url = spec.ingest_url.removesuffix("/events") + "/push-credential"
    token = spec.run_token.get_secret_value()
    async with httpx.AsyncClient(timeout=30, verify=tls_context()) as client:
        response = await client.post(url, headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 404:
        return None  # a repository that needs no credential (public, or not a known forge)
    response.raise_for_status()
    body = response.json()
    pair = f"{body['username']}:{body['password']}".encode()
    return f"Basic {base64.b64encode(pair).decode()}"


async def run(run_dir: Path, secrets: str | None) -> int:
    """Carry out the run in `run_dir`; `secrets` is the JSON the launcher piped to us."""
    if read_result(run_dir) is not None:
        log.info("result.json already exists, nothing to do")
        return 0
    spec = read_spec(run_dir, secrets)
    await carry_out(Run(run_dir=run_dir, spec=spec))
    return 0


async def carry_out(r: Run) -> RunResult:
    """Execute `r` while shipping its logs; write its result; drain the logs."""
    run_dir = r.run_dir
    previous = read_progress(run_dir)
    r.sink.recover(min_next_seq=previous.events_emitted if previous else 0)
    r.progress.write()
    ticker = asyncio.create_task(r.progress.run())
    delivery = asyncio.create_task(r.sink.run())
    work = asyncio.create_task(r.execute())
    stopping = False

    def on_sigterm() -> None:
        nonlocal stopping
        log.info("SIGTERM received")
        stopping = True
        work.cancel()
        delivery.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        result = await work
    except asyncio.CancelledError:
        result = RunResult(success=False, error=STOPPED)
    except Exception as exc:  # a result must exist, or the run is reported lost
        log.exception("runner failed")
        result = r.fail(f"Runner error: {exc!r}")
    r.progress.agent_pid = None
    write_result(run_dir, result)
    log.info("run finished: success=%s error=%s", result.success, result.error)
    r.progress.set_phase("done")
    if not stopping:
        r.sink.close()
        done, _ = await asyncio.wait({delivery}, timeout=DRAIN_TIMEOUT)
        if not done:
            log.error("gave up delivering %d log events", r.sink.pending)
    ticker.cancel()
    delivery.cancel()
    r.progress.write()
    # The result and the runner's own log stay for the launcher; the rest goes now.
    strip_run_dir(run_dir, keep_spool=r.sink.pending > 0)
    return result
