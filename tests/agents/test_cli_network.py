"""Each real CLI, started the way the runner starts it, contacts loopback addresses only.

The adapter's command line, environment and setup files (the switches that turn off
telemetry, update checks, catalogue fetches and plugin installs) run the CLI under
strace against the scripted endpoint; every connect() must go to 127.0.0.0/8, ::1
or a local socket. A DNS lookup of a vendor's host would show as a connect to the
resolver, so it fails the test too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core.settings import Settings
from integrations.agents import get_adapter
from integrations.agents.credentials import agent_access
from integrations.agents.stream_input import takes_input_mid_run, user_message
from runner.main import agent_env
from runner.setup import SetupFiles
from schemas.runner import RunSpec
from tests.agents.conftest import AGENT_MODELS, AGENTS_BIN, CLI, need_cli, pointed_at
from tests.agents.model_endpoint import Endpoint

CONNECT = re.compile(r"connect\(\d+, \{sa_family=(AF_\w+)(.*?)\}")
LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "(::1|::ffff:127\.)')


def outside_connects(trace: str) -> list[str]:
    """The connect() calls to anything but loopback or a local (unix, netlink) socket."""
    bad = []
    for family, address in CONNECT.findall(trace):
        if family in ("AF_UNIX", "AF_NETLINK", "AF_UNSPEC"):
            continue
        if not LOOPBACK.search(address):
            bad.append(f"{family}{address}")
    return bad


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


# Under strace OpenCode (Bun, many threads) takes a minute or more on a loaded machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("agent", sorted(CLI))
def test_the_cli_contacts_only_loopback(
    agent: str, tmp_path: Path, model_endpoint: Endpoint
) -> None:
    need_cli(CLI[agent])
    strace = shutil.which("strace")
    if strace is None:
        print("SKIPPED: strace is not installed (.ci/run installs it)")
        pytest.skip("strace is not installed (.ci/run installs it)")
    worktree, home = tmp_path / "work", tmp_path / "home"
    worktree.mkdir()
    home.mkdir()
    git("init", "-q", "-b", "main", cwd=worktree)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "i", cwd=worktree)  # fmt: skip  # noqa: E501
    model = AGENT_MODELS.get(agent)
    settings = pointed_at(Settings(data_dir=tmp_path / "data"), model_endpoint)
    access = agent_access(agent, settings, model)
    spec = RunSpec(
        run_id="r",
        task_id="t",
        agent_type=agent,
        prompt='Create the file hello.txt containing "hi"',
        repo_url=str(worktree),
        branch="optio/task-t",
        worktree_path=str(worktree),
        mirror_cache_dir=str(tmp_path / "m"),
        ingest_url="http://127.0.0.1:1/",
        run_token="k",
        model=model,
        model_base_url=access.base_url,
        agent_max_retries=0,
        agent_home=str(home),
        extra_path=[str(AGENTS_BIN)],
        secret_env=access.secret_env,
    )
    adapter = get_adapter(agent)
    SetupFiles().write(adapter.setup_files(spec), worktree=worktree, home=home)
    adapter.before_run(spec, home=home)
    command = adapter.build_command(spec, prompt_file=worktree / ".optio" / "prompt.md")
    env = agent_env(spec, adapter, home=home)
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable, command[0]
    trace = tmp_path / "connect.trace"
    done = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), executable, *command[1:]],
        cwd=worktree,
        env=env,
        # A CLI that reads its prompt as streaming input gets it there, as from the runner.
        input=user_message(spec.prompt).decode() if takes_input_mid_run(agent) else "",
        capture_output=True,
        text=True,
        timeout=240,
    )
    written = worktree / "hello.txt"
    assert written.is_file() and written.read_text() == "hi\n", (done.stdout[-3000:], done.stderr)
    assert model_endpoint.requests
    assert outside_connects(trace.read_text()) == []
