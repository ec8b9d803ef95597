"""Where the client finds its server: contexts in a 0600 file, OPTIO_* variables over them.

The file is `$XDG_CONFIG_HOME/optio/config.json` (`~/.config/optio/config.json`). It
holds tokens, so it is written with mode 0600 inside a 0700 directory, replaced
atomically, and a copy that others can read is reported.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from cli.client.exits import ClientError, Exit

DEFAULT_URL = "http://127.0.0.1:8080"


class ContextEntry(BaseModel):
    url: str
    token: str
    workspace: str | None = None  # a workspace id, sent as X-Workspace-Id


class ClientConfig(BaseModel):
    current: str | None = None
    contexts: dict[str, ContextEntry] = {}


@dataclass(frozen=True)
class Target:
    """The server one command talks to."""

    url: str
    token: str
    workspace: str | None
    context: str | None


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "optio" / "config.json"


def load() -> ClientConfig:
    path = config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ClientConfig()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"optio: warning: {path} holds tokens and others can read it; run `chmod 600 {path}`",
            file=sys.stderr,
        )
    try:
        return ClientConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ClientError(f"{path} is not a valid optio config ({exc}); fix or remove it") from None


def save(config: ClientConfig) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)  # ours alone, even when something else made it first
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask, and an older file's mode
        with os.fdopen(fd, "w") as out:
            out.write(config.model_dump_json(indent=2) + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path


def resolve(context: str | None = None) -> Target:
    """The target of a command: OPTIO_URL/OPTIO_TOKEN/OPTIO_WORKSPACE win over the context
    (OPTIO_CONTEXT or the current one)."""
    config = load()
    name = context or os.environ.get("OPTIO_CONTEXT") or config.current
    entry = config.contexts.get(name) if name else None
    if name and entry is None and (context or os.environ.get("OPTIO_CONTEXT")):
        known = ", ".join(sorted(config.contexts)) or "none"
        raise ClientError(f"no context named '{name}' (known: {known})", Exit.USAGE)
    url = os.environ.get("OPTIO_URL") or (entry.url if entry else DEFAULT_URL)
    token = os.environ.get("OPTIO_TOKEN") or (entry.token if entry else "")
    if not token:
        raise ClientError(
            "not logged in: run `optio login` (or set OPTIO_URL and OPTIO_TOKEN)", Exit.AUTH
        )
    workspace = os.environ.get("OPTIO_WORKSPACE") or (entry.workspace if entry else None)
    return Target(url=url.rstrip("/"), token=token, workspace=workspace, context=name)
