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


# The marker's second line, when the server keeps its rows in a database of its own
# (PostgreSQL): its URL holds a password, so only the fact is recorded, never the URL.
EXTERNAL = "database: external"


def remember(settings: Settings) -> None:
    """Record the data dir of the server being started (best effort)."""
    marker = marker_path()
    lines = [str(settings.data_dir.resolve())]
    if settings.database_url:
        lines.append(EXTERNAL)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("\n".join(lines) + "\n")
    except OSError:
        pass  # a read-only home: commands then need OPTIO_DATA_DIR, as they say


def locate(settings: Settings) -> Settings:
    """The settings of the server's data dir; never a new data dir made by accident."""
    explicit = {"data_dir", "database_url"} & settings.model_fields_set
    if explicit or settings.data_dir.exists():
        return settings
    try:
        first, *rest = marker_path().read_text().splitlines()
        remembered: Path | None = Path(first.strip())
    except (OSError, ValueError):
        remembered, rest = None, []
    if remembered is not None and remembered.is_dir():
        if EXTERNAL in rest:
            # The data dir alone would open an empty SQLite database beside it.
            raise StartupError(
                f"the Optio server of {remembered} keeps its data in an external database: "
                "set OPTIO_DATABASE_URL (and OPTIO_DATA_DIR) as for `optio up`"
            )
        return Settings(data_dir=remembered)
    raise StartupError(
        f"no Optio data dir at {settings.data_dir.resolve()}, and no `optio up` recorded "
        "one: run this where you ran `optio up`, or set OPTIO_DATA_DIR to its data dir"
    )
