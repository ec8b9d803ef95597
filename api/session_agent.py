"""One chat turn of a session's agent: Claude Code in the session's sandbox, continuing
the agent's own session (`--resume`), its output parsed as a run's is.

Run by the API process that holds the chat WebSocket, like the terminal (docs/api.md):
a turn is short, streams to one client, and an interrupt must reach it at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from integrations.agents.base import ParsedEntry
from integrations.agents.claude_code import ClaudeCodeAdapter
from integrations.agents.credentials import SECRET_ENV, agent_access, with_stored_secrets
from integrations.agents.stream_input import STREAM_INPUT_FLAGS, user_message
from integrations.sandbox import sandbox_env
from integrations.session_sandbox import session_sandbox
from runner.process import terminate_group
from store.secrets import resolve_secret
from store.sessions import InteractiveSession

MAX_TURNS = 50  # model requests per chat message
CHUNK_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class TurnSetup:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    secrets: list[str]  # to mask in what the agent prints


async def turn_setup(
    session: AsyncSession, settings: Settings, row: InteractiveSession
) -> TurnSetup:
    stored = {}
    for name in SECRET_ENV["claude-code"]:
        value = await resolve_secret(
            session, workspace_id=row.workspace_id, name=name, repo_url=row.repo_url,
            user_id=row.user_id, settings=settings,
        )  # fmt: skip
        if value is not None:
            stored[name] = value
    model = row.model or settings.agent_models.get("claude-code")
    access = with_stored_secrets(
        agent_access("claude-code", settings, model), stored, "claude-code"
    )
    sandbox = session_sandbox(
        settings, session_id=row.id, workspace_id=row.workspace_id, repo_url=row.repo_url
    )
    command = ["claude", "-p", *STREAM_INPUT_FLAGS, "--output-format", "stream-json", "--verbose"]
    command += ["--dangerously-skip-permissions", "--max-turns", str(MAX_TURNS)]
    if model:
        command += ["--model", model]
    if row.agent_session_id:
        command += ["--resume", row.agent_session_id]
    env = sandbox_env(home=str(sandbox.home))
    if settings.agents_bin_dir.is_dir():
        env["PATH"] = f"{settings.agents_bin_dir}:{env['PATH']}"
    env.update({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"})
    if access.base_url:
        env["ANTHROPIC_BASE_URL"] = access.base_url
    if settings.agent_max_retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(settings.agent_max_retries)
    if os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"  # the CLI's own check; Optio's sandbox is bwrap
    secrets = dict(access.secret_env)
    env.update(secrets)
    argv = await asyncio.to_thread(sandbox.command, command)
    return TurnSetup(argv=argv, env=env, cwd=str(sandbox.worktree), secrets=list(secrets.values()))


async def run_turn(setup: TurnSetup, prompt: str) -> AsyncIterator[ParsedEntry]:
    """The agent's entries for one message, as they come; cancelling stops the agent."""
    adapter = ClaudeCodeAdapter()
    proc = await asyncio.create_subprocess_exec(
        *setup.argv, cwd=setup.cwd, env=setup.env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, limit=CHUNK_LIMIT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        # One message, then end of input: the agent answers it and exits.
        proc.stdin.write(user_message(prompt))
        await proc.stdin.drain()
        proc.stdin.close()
        stderr = asyncio.create_task(proc.stderr.read())
        while line := await proc.stdout.readline():
            for entry in adapter.parse_line(line.decode("utf-8", errors="replace"), "stdout"):
                yield entry
        code = await proc.wait()
        if code != 0:
            detail = (await stderr).decode("utf-8", errors="replace").strip()[-2000:]
            yield ParsedEntry("error", f"The agent exited with {code}: {detail}".strip(), "stderr")
    finally:
        if proc.returncode is None:
            await terminate_group(proc, grace=2.0)
