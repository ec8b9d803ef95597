"""Where the `optio up` of this user keeps its data, for commands run from elsewhere.

The default data dir is relative to the working directory: `optio token create` run in
another directory would otherwise make a new, empty one and mint a token the running
server has never heard of.
"""

from __future__ import annotations

import os
from pathlib import Path

from cli.bootstrap import StartupError
from core.settings import Settings


def marker_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "optio" / "data-dir"


def remember(settings: Settings) -> None:
    """Record the data dir of the server being started (best effort)."""
    marker = marker_path()
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(settings.data_dir.resolve()) + "\n")
    except OSError:
        pass  # a read-only home: commands then need OPTIO_DATA_DIR, as they say


def locate(settings: Settings) -> Settings:
    """The settings of the server's data dir; never a new data dir made by accident."""
    explicit = {"data_dir", "database_url"} & settings.model_fields_set
    if explicit or settings.data_dir.exists():
        return settings
    try:
        remembered = Path(marker_path().read_text().strip())
    except OSError:
        remembered = None
    if remembered is not None and remembered.is_dir():
        return Settings(data_dir=remembered)
    raise StartupError(
        f"no Optio data dir at {settings.data_dir.resolve()}, and no `optio up` recorded "
        "one: run this where you ran `optio up`, or set OPTIO_DATA_DIR to its data dir"
    )
