"""Real agent CLIs against the scripted model endpoint, through the real workflow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus

from core.settings import Settings
from tests.agents.model_endpoint import Endpoint
from tests.conftest import Optio

AGENTS_BIN = Path(__file__).resolve().parents[2] / ".optio-agents" / "node_modules" / ".bin"
FIXTURES = Path(__file__).parent / "fixtures"
# A catalog slug, so Codex offers apply_patch; priced here because the table has no entry.
CODEX_MODEL = "gpt-5.5"
CODEX_PRICE = [1.25, 10.0, 0.125]
# The model each agent runs in the suite: in the price table (Gemini, Copilot) or in
# OpenCode's own catalogue, so every run has a cost.
AGENT_MODELS = {
    "codex": CODEX_MODEL,
    "gemini": "gemini-2.5-pro",
    "opencode": "anthropic/claude-sonnet-4-5",
    "copilot": "claude-sonnet-4.5",
}
# agentType -> the CLI that `make agents` installs for it.
CLI = {
    "claude-code": "claude",
    "codex": "codex",
    "gemini": "gemini",
    "opencode": "opencode",
    "copilot": "copilot",
}


def need_cli(name: str) -> None:
    if not (AGENTS_BIN / name).exists():
        reason = f"{name} is not installed in {AGENTS_BIN}: `make agents` could not install it"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)


@pytest.fixture
def model_endpoint() -> Iterator[Endpoint]:
    endpoint = Endpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


def pointed_at(settings: Settings, endpoint: Endpoint) -> Settings:
    """These settings, with every agent pointed at the scripted endpoint."""
    return settings.model_copy(
        update={
            "anthropic_api_key": SecretStr("test-key"),
            "anthropic_base_url": endpoint.url,
            "openai_api_key": SecretStr("test-key"),
            "openai_base_url": f"{endpoint.url}/v1",
            "gemini_api_key": SecretStr("test-key"),
            "gemini_base_url": endpoint.url,
            # Copilot CLI with a BYOK Anthropic provider: no GitHub sign-in, no telemetry.
            "copilot_provider_base_url": endpoint.url,
            "copilot_provider_type": "anthropic",
            "copilot_provider_api_key": SecretStr("test-key"),
            "agent_models": AGENT_MODELS,
            "model_prices": {CODEX_MODEL: CODEX_PRICE},
            # An error test must not sit in the CLIs' own backoff.
            "agent_max_retries": 0,
            "agents_bin_dir": AGENTS_BIN,
            "secrets": {"DOCS_TOKEN": SecretStr("s3cret-docs-token")},
        }
    )


@pytest.fixture
def settings(settings: Settings, model_endpoint: Endpoint) -> Settings:
    """The suite's settings, with every agent pointed at the scripted endpoint."""
    return pointed_at(settings, model_endpoint)


@pytest.fixture
async def settled(optio: Optio) -> AsyncIterator[Optio]:
    """Before `optio` terminates what still runs, let visibility catch up with closed runs.

    A task workflow that just completed can still be listed as Running for a moment on a
    busy machine, and terminating it then fails the teardown.
    """
    yield optio
    query = f"TaskQueue = '{optio.settings.task_queue}' AND ExecutionStatus = 'Running'"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stale = False
        async for execution in optio.temporal.list_workflows(query):
            handle = optio.temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                stale = True
        if not stale:
            return
        await asyncio.sleep(0.2)
