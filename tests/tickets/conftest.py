"""Jira, Linear and Notion doubles on loopback, and settings that let Optio reach them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import ScheduleActionStartWorkflow

from core.settings import Settings
from tests.conftest import Optio, free_port
from tests.forges.conftest import github, serve
from tests.tickets.jira_double import JiraDouble
from tests.tickets.linear_double import LinearDouble
from tests.tickets.notion_double import NotionDouble

JIRA_EMAIL = "bot@example.com"
JIRA_TOKEN = "jira-api-token-0123"
LINEAR_KEY = "lin_api_0123456789"
NOTION_TOKEN = "secret_notion_0123"
NOTION_DB = "0c1d2e3f-0000-4000-8000-00000000db01"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The doubles listen on 127.0.0.1, which providers may not use unless this is set.
    settings.ticket_allow_private_hosts = True
    settings.ticket_sync_interval_seconds = 3600  # schedules exist; tests sync by hand
    return settings


@pytest.fixture
async def optio(optio: Optio) -> AsyncIterator[Optio]:
    """`optio`, and at the end the sync schedules this test made deleted (the dev server
    outlives the test; its task queue does not)."""
    yield optio
    async for listed in await optio.temporal.list_schedules():
        handle = optio.temporal.get_schedule_handle(listed.id)
        try:
            action = (await handle.describe()).schedule.action
        except Exception:
            continue
        if (
            isinstance(action, ScheduleActionStartWorkflow)
            and action.task_queue == optio.settings.task_queue
        ):
            await handle.delete()


@pytest.fixture
async def jira() -> AsyncIterator[JiraDouble]:
    double = JiraDouble(users={JIRA_EMAIL: JIRA_TOKEN})
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task


@pytest.fixture
async def linear_server() -> AsyncIterator[LinearDouble]:
    double = LinearDouble(keys={LINEAR_KEY})
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task


@pytest.fixture
async def notion_server() -> AsyncIterator[NotionDouble]:
    double = NotionDouble(tokens={NOTION_TOKEN}, database_id=NOTION_DB)
    port = free_port()
    double.base_url = f"http://127.0.0.1:{port}"
    server, task = await serve(double.app, port)
    yield double
    server.should_exit = True
    await task


# With Optio: request these before `optio`, so the API and worker start pointed at them.
@pytest.fixture
def linear(linear_server: LinearDouble, settings: Settings) -> LinearDouble:
    settings.linear_api_url = f"{linear_server.base_url}/graphql"
    return linear_server


@pytest.fixture
def notion(notion_server: NotionDouble, settings: Settings) -> NotionDouble:
    settings.notion_api_url = notion_server.base_url
    return notion_server


__all__ = ["github"]
