"""One typed settings object per process, read from `OPTIO_*` environment variables."""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.crypto import check_key
from core.names import SEARCH_ATTRIBUTES

_PROJECT_ROOT = Path(__file__).resolve().parent.parent

__all__ = ["SEARCH_ATTRIBUTES", "Settings"]


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected key or token must not be echoed to the terminal.
    model_config = SettingsConfigDict(
        env_prefix="OPTIO_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(default=Path(".optio-data"))
    database_url: str | None = None

    # None means "start our own dev server"; set it to use an existing Temporal.
    temporal_address: str | None = None
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    # The embedded server's Prometheus endpoint and HTTP API, on 127.0.0.1. The
    # `temporal` CLI has no switch to turn them off (a port of 0 means "any free
    # port"), so they get fixed ports that a firewall rule or a clash check can name.
    temporal_metrics_port: int = Field(default=7235, ge=1, le=65535)
    temporal_http_port: int = Field(default=7243, ge=1, le=65535)
    temporal_namespace: str = "default"
    # An existing Temporal over TLS (docs/deployment.md#temporal): TLS alone, mutual TLS
    # with a client certificate and key (PEM files), a private CA; or a Temporal Cloud API
    # key (which implies TLS).
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "optio"
    # ---- workers on several machines (docs/deployment.md#workers-on-several-machines).
    # This worker's name: its own task queue `<task_queue>@<worker_id>` carries every
    # activity of the runs it holds. Default: generated once into the data dir.
    worker_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    # How long the worker holding a run may be unreachable before the run is failed over
    # (recorded as lost, with the reason) and started again on another worker.
    worker_failover_seconds: float = Field(default=120.0, ge=5)
    # Worker Versioning (docs/temporal.md): set, the worker polls as build <id> of the
    # deployment named after the task queue, and runs stay on the build they began on.
    worker_build_id: str | None = Field(default=None, min_length=1, max_length=255)
    # ---- metrics (docs/deployment.md#metrics). Scrapers send it as a bearer token to the
    # API's /metrics and each worker's; without it the API's /metrics is off.
    metrics_token: SecretStr | None = None
    # host:port of a worker's /metrics (ours plus the Temporal SDK's); unset: none.
    worker_metrics_address: str | None = None
    # ---- traces (docs/deployment.md#traces): "none" (off), "console" (spans printed on
    # stderr) or "otlp" (OTLP over HTTP to otel_endpoint, else the standard
    # OTEL_EXPORTER_OTLP_* variables, else http://localhost:4318/v1/traces).
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    # The collector's traces URL, e.g. http://otel-collector:4318/v1/traces.
    otel_endpoint: str | None = Field(default=None, pattern=r"^https?://")

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # `optio up`: API processes sharing the port (each its own listening socket, the
    # kernel spreads connections over them); see docs/deployment.md#api-processes.
    api_processes: int = Field(default=1, ge=1, le=32)
    # Where sandboxes reach the API; defaults to http://<api_host>:<api_port>.
    api_internal_url: str | None = None

    # Where local-path / file:// repositories may live (docs/configuration.md). Never inside
    # data_dir, whatever this says; `[]` turns local repositories off (a shared server).
    local_repo_roots: list[Path] = Field(
        default_factory=lambda: [Path("/tmp"), Path(tempfile.gettempdir())]
    )

    # 64 hex chars, or any strong passphrase; generated into the data dir when unset.
    encryption_key: str | None = None

    max_concurrent: int = Field(default=5, ge=1, le=1000)
    stall_threshold_ms: int = Field(default=300_000, ge=1_000)
    pr_watch_interval_ms: int = Field(default=30_000, ge=100)
    max_auto_resumes: int = Field(default=10, ge=0)

    # ---- remote forges (docs/forges.md). Tokens here are the fallback when the workspace
    # has no GITHUB_TOKEN / GITLAB_TOKEN secret.
    github_token: SecretStr | None = None
    gitlab_token: SecretStr | None = None
    github_webhook_secret: SecretStr | None = None
    gitlab_webhook_secret: SecretStr | None = None
    # Polling of remote PRs: fast while CI runs, backing off to the idle ceiling, and
    # only a safety net while webhooks arrive.
    forge_poll_max_idle_seconds: float = Field(default=600.0, ge=1)
    forge_poll_webhook_seconds: float = Field(default=21600.0, ge=1)
    # Deliveries older than this are refused as replays (GitHub's delivery timestamp).
    webhook_max_age_seconds: int = Field(default=600, ge=10)
    # POST /api/hooks/<path>: how far X-Optio-Timestamp may be from our clock; delivery
    # ids are remembered for twice this long (docs/blueprints.md).
    hook_tolerance_seconds: int = Field(default=300, ge=30, le=3600)

    # ---- notifications (docs/notifications.md): outgoing webhooks and Slack.
    # Targets on private, loopback or link-local addresses are refused unless listed
    # here (IP addresses or CIDR networks, e.g. ["127.0.0.1"]; "*" allows every one).
    webhook_private_allowlist: list[str] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Retries of a failed delivery: exponential backoff from the first interval.
    webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    webhook_retry_initial_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_interval_seconds: float = Field(default=600.0, gt=0)
    # Verifies Slack's button clicks when the workspace has no SLACK_SIGNING_SECRET secret.
    slack_signing_secret: SecretStr | None = None
    # Slack's own rule: a request signed more than five minutes ago is a replay.
    slack_max_age_seconds: int = Field(default=300, ge=10)

    # ---- ticket sync (docs/tickets.md). A provider may set its own interval.
    ticket_sync_interval_seconds: int = Field(default=60, ge=10, le=86_400)
    # Provider hosts (Jira baseUrl, GitLab host, GitHub apiUrl) on private, loopback or
    # link-local addresses are refused unless this is set (an on-premises tracker, tests).
    ticket_allow_private_hosts: bool = False
    # A rate-limit answer asking to wait longer than this ends the sync run instead.
    ticket_max_retry_after_seconds: float = Field(default=60.0, ge=0)
    linear_api_url: str = "https://api.linear.app/graphql"
    notion_api_url: str = "https://api.notion.com"

    # ---- agents (docs/agents.md). Credentials reach only the agent process of a run.
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    claude_code_oauth_token: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    copilot_github_token: SecretStr | None = None
    # A BYOK provider for Copilot (COPILOT_PROVIDER_*); no GitHub sign-in when set.
    copilot_provider_base_url: str | None = None
    copilot_provider_type: str = "openai"
    copilot_provider_api_key: SecretStr | None = None
    # Default model per agent type, e.g. {"codex": "gpt-5-codex"}; a task may not say.
    agent_models: dict[str, str] = Field(default_factory=dict)
    agent_effort: str | None = None
    # Retries of a failed model request inside the agent CLI (claude-code, codex): their
    # own defaults back off for minutes (Claude: 10 retries), so a bad key or a broken
    # endpoint took that long to fail. None keeps the CLI's default.
    agent_max_retries: int | None = Field(default=2, ge=0, le=20)
    # HOME of agent processes; default: one per task under the data dir, so sessions
    # (and so resumes) survive between runs and the agent never sees the user's dotfiles.
    agent_home: Path | None = None
    # Where the agent CLIs are installed (`make agents`); put first on the agent's PATH.
    agents_bin_dir: Path = Field(default=_PROJECT_ROOT / ".optio-agents" / "node_modules" / ".bin")
    # How long a finished run's directory (its result and runner log, nothing secret) is
    # kept for a retried activity to read; a sweep in the worker removes it after that.
    run_retention_seconds: float = Field(default=86_400.0, ge=60)
    # USD per million tokens {model: [input, output, cached_input]}, over pricing.py.
    model_prices: dict[str, list[float]] = Field(default_factory=dict)
    # Values of `${{NAME}}` references in MCP config until the secrets store lands.
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    # ---- where runs execute (docs/deployment.md): "local" processes in bubblewrap on the
    # worker's machine, or "kubernetes": one pod per run ("Kubernetes launcher").
    launcher: Literal["local", "kubernetes"] = "local"
    # None: in-cluster config when running in a pod, else ~/.kube/config (or $KUBECONFIG).
    k8s_kubeconfig: Path | None = None
    k8s_namespace: str = "optio-runs"
    k8s_image: str = "optio-agent:latest"
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    k8s_image_pull_secrets: list[str] = Field(default_factory=list)
    # A container's resources, e.g. {"requests": {"cpu": "500m"}, "limits": {"memory": "4Gi"}}.
    k8s_resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    k8s_node_selector: dict[str, str] = Field(default_factory=dict)
    k8s_tolerations: list[dict[str, Any]] = Field(default_factory=list)
    # Per repository URL, any of image, resources, nodeSelector, tolerations, imagePullSecrets.
    k8s_repo_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The runner's command in the agent image (its Python and `-m runner.pod`).
    k8s_runner_command: list[str] = Field(default_factory=lambda: ["python", "-m", "runner.pod"])
    # Where the agent CLIs are on the image's PATH.
    k8s_agent_path: list[str] = Field(default_factory=list)
    k8s_run_as_user: int = Field(default=1000, ge=1)
    # A pod not running by then (unschedulable, slow pull) fails its run with the reason.
    k8s_pending_timeout_seconds: float = Field(default=300.0, gt=0)
    k8s_termination_grace_seconds: int = Field(default=10, ge=0)
    # How long a finished pod (its result, its logs) stays before the worker's sweep.
    k8s_finished_pod_seconds: float = Field(default=900.0, ge=0)

    # ---- live streams (docs/api.md#live-streams): /ws/* and the SSE endpoints.
    # SQLite: how often each API process looks for new events (PostgreSQL NOTIFYs).
    live_poll_seconds: float = Field(default=0.05, gt=0, le=5)
    # A frame (or SSE comment) at least this often, so proxies keep idle connections.
    live_heartbeat_seconds: float = Field(default=25.0, gt=0)
    # Events queued for one client; a client further behind reads on from the database.
    live_client_buffer: int = Field(default=2000, ge=10)
    # A client that has not taken a frame for this long is dropped as too slow (4408).
    live_send_timeout_seconds: float = Field(default=10.0, gt=0)
    # Open live streams per client IP and API process (4429 / HTTP 429 beyond).
    live_max_connections_per_ip: int = Field(default=50, ge=1)
    # A task's or run's stream stays open this long after it ended, for late log entries.
    live_end_grace_seconds: float = Field(default=2.0, ge=0)
    # How long events are kept for catch-up and Last-Event-ID resumes.
    live_retention_hours: float = Field(default=168.0, gt=0)
    # Interactive sessions (docs/api.md#interactive-sessions): one without terminal or
    # chat activity for this long ends, and its worktree goes.
    session_idle_timeout_seconds: float = Field(default=3600.0, gt=0)
    # Single-use WebSocket tokens (POST /api/auth/ws-token) are good for this long.
    ws_token_ttl_seconds: float = Field(default=60.0, gt=0, le=3600)

    # ---- sign-in (docs/identity.md): each provider is enabled by its client id and secret.
    # The URL people reach the API at; OAuth callbacks and the Secure cookie flag follow it.
    public_url: str | None = None
    # Where the browser lands after sign-in (and /login?error=... on failure); default public_url.
    web_url: str | None = None
    github_oauth_client_id: str | None = None
    github_oauth_client_secret: SecretStr | None = None
    github_oauth_base_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    google_oauth_client_id: str | None = None
    google_oauth_client_secret: SecretStr | None = None
    gitlab_oauth_client_id: str | None = None
    gitlab_oauth_client_secret: SecretStr | None = None
    gitlab_oauth_base_url: str = "https://gitlab.com"
    oidc_issuer_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_display_name: str = "SSO"
    oidc_scopes: str = "openid email profile"

    @field_validator("encryption_key")
    @classmethod
    def _strong_key(cls, value: str | None) -> str | None:
        # Unset is fine here: `optio` generates one into the data dir (cli/bootstrap.py).
        if not value:
            return None
        check_key(value)
        return value

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
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def mirrors_dir(self) -> Path:
        return self.data_dir / "mirrors"

    def workspace_mirrors(self, workspace_id: str) -> Path:
        """A workspace's own mirrors: a run's sandbox sees its repository's mirror, so no
        two workspaces share one (docs/deployment.md, "What a run can see")."""
        return self.mirrors_dir / workspace_id


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
