"""GET /metrics on the API: behind OPTIO_METRICS_TOKEN, tasks by state, the queue per
limiter with its wait, and the process's own counters (log ingest lag, run durations)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]
TOKEN = "metrics-token-for-the-test-0123456789"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(optio: Optio) -> str:
    response = await optio.anon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_are_off_without_a_token(api_only: Optio) -> None:
    response = await api_only.client.get("/metrics")  # an admin's token is not enough
    assert response.status_code == 404
    assert "OPTIO_METRICS_TOKEN" in response.json()["error"]


async def test_metrics_need_the_token(api_only: Optio) -> None:
    api_only.settings.metrics_token = SecretStr(TOKEN)
    assert (await api_only.anon.get("/metrics")).status_code == 401
    assert (await api_only.client.get("/metrics")).status_code == 401  # a person's token
    wrong = await api_only.anon.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    await scrape(api_only)


async def test_tasks_queue_and_ingest_are_measured(optio: Optio, make_repo: MakeRepo) -> None:
    optio.settings.metrics_token = SecretStr(TOKEN)
    optio.settings.max_concurrent = 1
    before = await scrape(optio)
    lag_before = samples(before, "optio_log_ingest_lag_seconds_count").get((), 0.0)
    done_before = sum(
        v
        for k, v in samples(before, "optio_run_duration_seconds_count").items()
        if ("outcome", "succeeded") in k
    )
    repo = make_repo()
    first = await create_task(optio.client, repo, "echo started\nsleep 60")
    await wait_for_logs(optio.client, first["id"], ["started"])
    second = await create_task(optio.client, repo, "echo ok > f")
    await wait_for_state(optio.client, second["id"], "queued")

    limiter = f"repo:{second['repoUrl']}"  # the repository as stored
    text = await scrape(optio)
    tasks = samples(text, "optio_tasks")
    assert tasks[(("state", "running"),)] >= 1
    assert tasks[(("state", "queued"),)] >= 1
    assert (("state", "completed"),) in tasks  # every state, zeros included
    depth = samples(text, "optio_queue_depth")
    assert depth[(("limiter", "global"),)] >= 1
    assert depth[(("limiter", limiter),)] == 1
    wait = samples(text, "optio_queue_oldest_wait_seconds")
    assert wait[(("limiter", limiter),)] >= 0
    assert samples(text, "optio_log_ingest_lag_seconds_count")[()] > lag_before

    await optio.client.post(f"/api/tasks/{first['id']}/cancel")
    await wait_for_state(optio.client, second["id"], "pr_opened", timeout=60)
    text = await scrape(optio)
    assert samples(text, "optio_queue_depth").get((("limiter", limiter),)) is None
    done = sum(
        v
        for k, v in samples(text, "optio_run_duration_seconds_count").items()
        if ("outcome", "succeeded") in k
    )
    assert done == done_before + 1  # the worker runs in this process here
    assert samples(text, "optio_queue_wait_seconds_count")[()] >= 2
