"""Which model an agent runs, and whether its CLI would accept it.

The model is the task's own (POST /api/tasks `model`, kept in the task's metadata),
else its repository's (`claudeModel`, `codexModel`, `copilotModel`, `opencodeModel`,
`geminiModel`), else the agent type's default (OPTIO_AGENT_MODELS), else the CLI's. Only
OpenCode refuses a model it does not know (its catalogue is built into the binary);
the others pass any name to the provider, which is the one to tell. `make agents`
writes OpenCode's list (`opencode models`) next to the CLIs, and a task naming a model
outside it is refused with the models of that provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

OPENCODE_MODELS_FILE = "opencode-models.txt"
MAX_LISTED = 40


# The repository setting that names each agent's model (inventory §3.10's claudeModel...).
REPO_MODEL_FIELDS = {
    "claude-code": "claude_model",
    "codex": "codex_model",
    "copilot": "copilot_model",
    "opencode": "opencode_model",
    "gemini": "gemini_model",
}


def repo_model(agent_type: str, repo: object | None) -> str | None:
    field = REPO_MODEL_FIELDS.get(agent_type)
    value = getattr(repo, field, None) if repo is not None and field else None
    return value if isinstance(value, str) and value else None


def task_model(metadata: Mapping[str, Any] | None) -> str | None:
    value = (metadata or {}).get("model")
    return value if isinstance(value, str) and value else None


def effective_model(
    agent_type: str,
    metadata: Mapping[str, Any] | None,
    defaults: Mapping[str, str],
    repo: object | None = None,
) -> str | None:
    """The task's own model, else its repository's, else the agent type's default."""
    return task_model(metadata) or repo_model(agent_type, repo) or defaults.get(agent_type)


def accepted_models(agent_type: str, agents_bin_dir: Path) -> list[str] | None:
    """The models the agent's CLI accepts, or None when it accepts any (or cannot tell)."""
    if agent_type != "opencode":
        return None
    # agents_bin_dir is <agents>/node_modules/.bin; the list sits in <agents>.
    listing = agents_bin_dir.parent.parent / OPENCODE_MODELS_FILE
    if not listing.is_file():
        return None
    models = [line.strip() for line in listing.read_text().splitlines() if "/" in line]
    return models or None


def unknown_model_error(agent_type: str, model: str, agents_bin_dir: Path) -> str | None:
    """A message naming what the CLI accepts, when it would refuse `model`; else None."""
    accepted = accepted_models(agent_type, agents_bin_dir)
    if accepted is None or model in accepted:
        return None
    provider = model.split("/", 1)[0] if "/" in model else ""
    same = [m for m in accepted if m.startswith(f"{provider}/")] if provider else []
    if same:
        listed = ", ".join(same[:MAX_LISTED]) + (" …" if len(same) > MAX_LISTED else "")
        return (
            f"{agent_type} does not know the model '{model}'; for {provider} it accepts: {listed}"
        )
    providers = ", ".join(sorted({m.split("/", 1)[0] for m in accepted}))
    return (
        f"{agent_type} does not know the model '{model}': name it as provider/model,"
        f" with one of the providers {providers}"
    )
