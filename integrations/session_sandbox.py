"""Where an interactive session lives on disk, and the sandbox its terminal and agent run in.

A session's worktree (`<data>/worktrees/session-<id>`) is made by the worker's
SessionWorkflow and used by the API process, which holds the session's terminal and
chat processes (docs/api.md#interactive-sessions): both see the same data dir. Inside
the sandbox a session sees its worktree, its repository's mirror (to commit), a home of
its own and the agent CLIs, as a run does (integrations/sandbox.py).
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from integrations.git import mirror_path
from integrations.sandbox import Sandbox


def session_branch(*, user_id: str, session_id: str) -> str:
    # As the reference names them: session/<userId[0:8]>/<8-char id>.
    return f"session/{user_id.replace('-', '')[:8]}/{session_id.replace('-', '')[:8]}"


def session_worktree(settings: Settings, session_id: str) -> Path:
    return settings.worktrees_dir / f"session-{session_id}"


def session_home(settings: Settings, session_id: str) -> Path:
    return settings.data_dir / "agent-homes" / f"session-{session_id}"


def session_mirror(settings: Settings, *, workspace_id: str, repo_url: str) -> Path:
    return mirror_path(repo_url=repo_url, cache_dir=settings.workspace_mirrors(workspace_id))


def session_sandbox(
    settings: Settings, *, session_id: str, workspace_id: str, repo_url: str
) -> Sandbox:
    home = session_home(settings, session_id)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    agents = settings.agents_bin_dir
    while agents.name in (".bin", "bin", "node_modules") and agents.parent != agents:
        agents = agents.parent  # the install root: the CLIs' links point inside it
    return Sandbox(
        worktree=session_worktree(settings, session_id),
        home=home,
        git_dir=session_mirror(settings, workspace_id=workspace_id, repo_url=repo_url),
        read_only=[agents] if agents.is_dir() else [],
    )
