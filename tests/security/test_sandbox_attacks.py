"""A run is untrusted code: these tests are the attacks, made from inside a run.

Each probe runs as a `script` task (and, where the CLI is installed, through the real
Claude Code's Bash tool) against a running stack, and passes only because the sandbox
blocks it: the data dir (database, encryption key, other runs' specs, worktrees,
mirrors), another workspace's repository and secrets, and the run token that would buy
a forge credential are out of the run's sight. The host side is checked too: no file
under the data dir holds a secret value or a run token once the runs are over.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import Optio
from tests.identity.conftest import add_person
from tests.lifecycle_helpers import create_task, wait_for_state

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]
OTHER_SECRET = "other-workspace-secret-6d1f0c"
OWN_SECRET = "own-workspace-secret-a93e77"
# Built at run time so the probe's own text (in .optio/) does not match itself.
TOKEN_PATTERN = r'"optio_"run_[0-9a-f]{64}'


def probe_script(*, data_dir: Path, other_repo: Path, escape_marker: Path | None = None) -> str:
    """Everything a hostile run would try, each hit printed as a LEAK line."""
    d = str(data_dir)
    plant = (
        ""
        if escape_marker is None
        else f"""
# Last: a .git of the agent's own, whose fsmonitor would run when Optio uses git in this
# worktree outside the sandbox.
mv .git .git.ours && git init -q . && git config core.fsmonitor "touch {escape_marker}"
"""
    )
    return f"""
leak() {{ echo "LEAK: $1"; }}
echo probed > probe.txt
git log -1 --format=%H >/dev/null 2>&1 || echo "git unavailable"
own=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
echo "[core]" >> "$own/config" 2>/dev/null && leak "writes the repository's git config"
touch "$own/hooks/post-commit" 2>/dev/null && leak "plants a git hook"
find "{d}/mirrors" -mindepth 2 -maxdepth 2 2>/dev/null | grep -v -e "^$own\\$" -e '\\.lock$' \\
  | grep -q . && leak "sees other mirrors"
# The sandbox shows the data dir only as the empty directories above its own worktree,
# home and repository mirror (mount points): any file, or any other entry, is a leak.
for path in "{d}/encryption.key" "{d}/optio.db" "{other_repo}"; do
  [ -e "$path" ] && leak "sees $path"
done
find "{d}" -type f -not -path "$PWD/*" -not -path "$HOME/*" -not -path "$own/*" 2>/dev/null \\
  | grep -q . \\
  && leak "finds files of the data dir"
find "{d}/worktrees" "{d}/runs" -mindepth 1 -maxdepth 1 2>/dev/null \\
  | grep -v -e "^$PWD\\$" -e "^$(dirname "$HOME")\\$" | grep -q . && leak "lists other runs"
cat {d}/runs/*/spec.json >/dev/null 2>&1 && leak "reads a run spec"
echo pwned > "{other_repo}/pwned" 2>/dev/null && leak "writes another workspace's repo"
token=$(eval echo {TOKEN_PATTERN})
# Every place a file could be, but the read-only system and the CLIs' packages (slow).
places=$(for top in /*; do
  [ -L "$top" ] && continue
  case $top in /usr|/proc|/sys|/dev) ;; *) echo "$top";; esac
done)
for p in /proc/[0-9]*; do tr '\\0' '\\n' < "$p/environ" 2>/dev/null; done \\
  | grep -Eq "$token" && leak "finds a run token in an environment"
grep -rEsIl --exclude-dir=node_modules "$token" $places 2>/dev/null | grep -q . \\
  && leak "finds a run token in a file"
# Split so the probe's own text (the task's prompt, on disk) does not hold the value.
needle="{OTHER_SECRET[:10]}""{OTHER_SECRET[10:]}"
grep -rsIl --exclude-dir=node_modules "$needle" $places 2>/dev/null \\
  | grep -v '^'"$PWD"'/.optio/' | grep -q . && leak "reads another workspace's secret"
[ "$(id -u)" = 0 ] && leak "runs as root"
grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status || leak "holds capabilities"
runner="$(printf '%s' 'runner.fork')server"  # spelled so the probe does not match itself
for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done \\
  | grep -v '^grep ' | grep -q "$runner\\|python3* -m runner" && leak "sees the runner"
echo "probe finished"
{plant}"""


async def other_workspace_with_secret(optio: Optio, make_repo: MakeRepo) -> Path:
    """Workspace B: a secret, and a local repository of its own."""
    _, token, _ = await add_person(optio, "mallory's victim")
    async with httpx.AsyncClient(
        base_url=str(optio.client.base_url), headers={"Authorization": f"Bearer {token}"}
    ) as victim:
        body = {"name": "VICTIM_KEY", "value": OTHER_SECRET}
        assert (await victim.post("/api/secrets", json=body)).status_code == 201
        repo = make_repo()
        connected = await victim.post("/api/repos", json={"repoUrl": str(repo)})
        assert connected.status_code == 201, connected.text
    return repo


async def log_text(optio: Optio, task_id: str) -> str:
    """All of a task's log content once the runner has delivered every batch."""
    text = ""
    for _ in range(50):
        logs = (await optio.client.get(f"/api/tasks/{task_id}/logs")).json()["logs"]
        again = "\n".join(entry["content"] for entry in logs)
        if again == text and "probe finished" in text:
            return text
        text = again
        await asyncio.sleep(0.2)
    return text


def files_holding(root: Path, *needles: str) -> list[str]:
    """Files under `root` (the host's view) whose bytes contain a needle or a run token."""
    token = re.compile(rb"optio_run_[0-9a-f]{64}")
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if token.search(data) or any(n.encode() in data for n in needles):
            found.append(str(path.relative_to(root)))
    return found


async def test_a_script_run_sees_its_worktree_and_nothing_else(
    optio: Optio, make_repo: MakeRepo
) -> None:
    other_repo = await other_workspace_with_secret(optio, make_repo)
    own = {"name": "OWN_KEY", "value": OWN_SECRET}
    assert (await optio.client.post("/api/secrets", json=own)).status_code == 201
    repo = make_repo()
    response = await optio.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert response.status_code == 201, response.text
    # A run that is still going while the probe looks: its spec and token are live.
    neighbour = await create_task(optio.client, repo, "sleep 30")
    await wait_for_state(optio.client, neighbour["id"], "running")

    marker = optio.settings.data_dir.parent / "escaped"
    script = probe_script(
        data_dir=optio.settings.data_dir, other_repo=other_repo, escape_marker=marker
    )
    task = await create_task(optio.client, repo, script)
    await wait_for_state(optio.client, task["id"], "pr_opened", "completed", "failed")
    text = await log_text(optio, task["id"])

    assert "probe finished" in text, text
    assert "LEAK" not in text, text
    assert "git unavailable" not in text, text
    assert not marker.exists(), "the agent's .git ran a command outside the sandbox"
    assert not (other_repo / "pwned").exists()
    await optio.client.post(f"/api/tasks/{neighbour['id']}/cancel")
    await wait_for_state(optio.client, neighbour["id"], "cancelled")
    # Nothing on the host's disk holds a secret value or a run token.
    assert files_holding(optio.settings.data_dir, OWN_SECRET, OTHER_SECRET) == []
