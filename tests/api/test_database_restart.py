"""The API after its database dropped its connections (a PostgreSQL restart)."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import POSTGRES_URL, Optio


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_lost_connections_answer_503_once_then_recover(api_only: Optio) -> None:
    assert (await api_only.client.get("/api/tasks")).status_code == 200  # a pooled connection
    database = api_only.settings.database_url_resolved.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        terminated = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        ).fetchone()
    assert terminated is not None and terminated[0] >= 1

    lost = await api_only.client.get("/api/tasks")
    assert lost.status_code == 503, lost.text
    assert lost.json()["error"] == "The database connection was lost; try again"
    assert lost.headers["retry-after"] == "1"
    # The pool dropped the dead connections with the first failure: the retry succeeds.
    assert (await api_only.client.get("/api/tasks")).status_code == 200
