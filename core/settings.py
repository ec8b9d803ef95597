"""One typed settings object per process, read from `OPTIO_*` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SEARCH_ATTRIBUTES = ("OptioTaskState", "OptioRepo", "OptioWorkspace", "OptioTaskType", "OptioAgent")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPTIO_", extra="ignore")

    data_dir: Path = Field(default=Path(".optio-data"))
    database_url: str | None = None

    # None means "start our own dev server"; set it to use an existing Temporal.
    temporal_address: str | None = None
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    task_queue: str = "optio"

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Where sandboxes reach the API; defaults to http://<api_host>:<api_port>.
    api_internal_url: str | None = None

    # 64 hex chars, or any strong passphrase; generated into the data dir when unset.
    encryption_key: str | None = None

    max_concurrent: int = Field(default=5, ge=1, le=1000)
    stall_threshold_ms: int = Field(default=300_000, ge=1_000)
    pr_watch_interval_ms: int = Field(default=30_000, ge=100)
    max_auto_resumes: int = Field(default=10, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'optio.db'}"

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_base_url(self) -> str:
        return self.api_internal_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def mirrors_dir(self) -> Path:
        return self.data_dir / "mirrors"


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and pick our async drivers."""
    for prefix in ("postgresql+psycopg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    raise ValueError(
        f"Unsupported OPTIO_DATABASE_URL scheme in {url.split('://', 1)[0]!r}: "
        "use postgresql://... or sqlite:///path"
    )


def sync_database_url(async_url: str) -> str:
    """The same database for synchronous tools (Alembic)."""
    return async_url.replace("sqlite+aiosqlite://", "sqlite://")
