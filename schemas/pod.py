"""The layout of a run's pod: the contract between the kubernetes launcher and runner/pod.py.

A run's pod has three containers of the agent image (docs/deployment.md, "Kubernetes
launcher"): `prepare` (init: clone), `agent` (the agent's command and nothing else) and
`runner` (hands the agent its command, ships its logs, commits and pushes, reports the
result as its termination message). Neither side imports the other; both import this.
"""

from __future__ import annotations

from schemas.runner import RunResult

WORKSPACE = "/optio/workspace"  # volume "workspace": the mirror and the worktree
WORKTREE = f"{WORKSPACE}/worktree"
MIRRORS = f"{WORKSPACE}/mirrors"
SCRATCH = f"{WORKSPACE}/scratch"  # a standalone run's empty origin, made by the runner
HOME = "/optio/home"  # volume "home": the agent's per-run home
CONTROL = "/optio/control"  # volume "control" (memory): the agent's command and output
STATE = "/optio/state"  # volume "state": the runner's spool and progress, not the agent's
TERMINATION_LOG = "/dev/termination-log"

COMMAND_FILE = "command.json"
STDOUT_FIFO = "stdout"
STDERR_FIFO = "stderr"
EXIT_FILE = "exit"
STOP_FILE = "stop"  # the runner asks the agent container to stop its command (a stall)

PREPARE = "prepare"
AGENT = "agent"
RUNNER = "runner"

# Environment of the prepare and runner containers only (never the agent's).
SPEC_ENV = "OPTIO_RUN_SPEC"
SECRETS_ENV = "OPTIO_RUN_SECRETS"
SECRETS_KEY = "secrets.json"  # key of the run's Secret

# Labels on every pod and Secret of a run.
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "optio"
RUN_LABEL = "optio.dev/run-id"
TASK_LABEL = "optio.dev/task-id"
WORKSPACE_LABEL = "optio.dev/workspace-id"

# What the kubelet keeps of a termination message.
MAX_TERMINATION_MESSAGE = 4096


def termination_message(result: RunResult) -> str:
    """The result as JSON that fits a termination message: long texts are cut first."""
    text = result.model_dump_json(by_alias=True)
    if len(text.encode()) <= MAX_TERMINATION_MESSAGE:
        return text
    room = max(0, MAX_TERMINATION_MESSAGE - len(text.encode()) + len(result.summary) - 16)
    cut = result.model_copy(update={"summary": result.summary[: room // 4]})
    text = cut.model_dump_json(by_alias=True)
    if len(text.encode()) <= MAX_TERMINATION_MESSAGE:
        return text
    error = (cut.error or "")[:500]
    return cut.model_copy(update={"error": error, "summary": ""}).model_dump_json(by_alias=True)
