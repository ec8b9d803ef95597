"""The Prometheus exposition of a scrape: our registry, what the database says now, and
(on a worker) the Temporal SDK's own metrics, concatenated."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.metrics import REGISTRY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Snapshot(Collector):
    """Gauges of one scrape, from values read just before."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def queue_families(
    *,
    tasks_by_state: dict[str, int],
    queued: list[tuple[str, int, datetime | None]],
    now: datetime,
    states: Iterable[str],
) -> list[Metric]:
    """Tasks by state (every state, zeros included), and the queue per limiter: the global
    one holds every queued task, each repository's limiter its own."""
    by_state = GaugeMetricFamily("optio_tasks", "Tasks by state", labels=["state"])
    for state in states:
        by_state.add_metric([state], tasks_by_state.get(state, 0))
    depth = GaugeMetricFamily(
        "optio_queue_depth", "Queued tasks per limiter (global, repo:<url>)", labels=["limiter"]
    )
    oldest = GaugeMetricFamily(
        "optio_queue_oldest_wait_seconds",
        "How long the longest-waiting queued task of each limiter has waited",
        labels=["limiter"],
    )
    depth.add_metric(["global"], sum(count for _, count, _ in queued))
    stamps = [stamp for _, _, stamp in queued if stamp is not None]
    oldest.add_metric(["global"], max(((now - s).total_seconds() for s in stamps), default=0.0))
    for repo_url, count, stamp in queued:
        depth.add_metric([f"repo:{repo_url}"], count)
        oldest.add_metric(
            [f"repo:{repo_url}"], (now - stamp).total_seconds() if stamp is not None else 0.0
        )
    return [by_state, depth, oldest]


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(Snapshot(extra))
    return generate_latest(scrape) + generate_latest(REGISTRY)


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
