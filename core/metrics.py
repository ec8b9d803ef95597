"""Optio's own Prometheus metrics, kept by each process (docs/deployment.md#metrics).

Counters and histograms live here, in one registry per process; the API's /metrics adds
what it reads from the database at scrape time (tasks by state, queue depth and wait),
and a worker's /metrics adds the Temporal SDK's own metrics. Labels stay few and bounded:
agent types, outcomes, forge kinds, HTTP status classes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RUN_DURATION = Histogram(
    "optio_run_duration_seconds",
    "Agent runs from launch to their result, by agent type and outcome",
    ["agent", "outcome"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400),
    registry=REGISTRY,
)
AGENT_COST = Counter(
    "optio_agent_cost_usd",
    "What finished agent runs cost, in USD, by agent type",
    ["agent"],
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "optio_queue_wait_seconds",
    "From entering the queue to holding a slot (global and repository limiters)",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400, 86400),
    registry=REGISTRY,
)
FORGE_REQUESTS = Counter(
    "optio_forge_requests",
    "Requests to a forge's REST API, by forge and answer (2xx, 3xx, 4xx, 5xx, error)",
    ["forge", "status"],
    registry=REGISTRY,
)
FORGE_RATE_LIMIT_REMAINING = Gauge(
    "optio_forge_rate_limit_remaining",
    "Requests left in the forge's current rate-limit window, as its last answer said",
    ["forge"],
    registry=REGISTRY,
)
FORGE_RATE_LIMIT_RESET = Gauge(
    "optio_forge_rate_limit_reset_timestamp_seconds",
    "When the forge's current rate-limit window ends (Unix time), as its last answer said",
    ["forge"],
    registry=REGISTRY,
)
LOG_INGEST_LAG = Histogram(
    "optio_log_ingest_lag_seconds",
    "From a log entry's timestamp in the run to its storage by the API",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
RUNS_FAILED_OVER = Counter(
    "optio_runs_failed_over",
    "Runs recorded lost because their worker was gone past OPTIO_WORKER_FAILOVER_SECONDS",
    registry=REGISTRY,
)


def status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"


def observe_forge_answer(forge: str, status: int | None, headers: dict[str, str]) -> None:
    """Count one forge request and note the rate-limit headroom its answer reports
    (GitHub: x-ratelimit-*, GitLab: ratelimit-*)."""
    FORGE_REQUESTS.labels(forge=forge, status=status_class(status)).inc()
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if remaining is not None and remaining.isdigit():
        FORGE_RATE_LIMIT_REMAINING.labels(forge=forge).set(int(remaining))
    if reset is not None and reset.isdigit():
        FORGE_RATE_LIMIT_RESET.labels(forge=forge).set(int(reset))
