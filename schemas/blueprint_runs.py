"""Payloads of BlueprintRunWorkflow, StandaloneRunWorkflow and their activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BlueprintRunInput:
    config_id: str
    trigger_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Chosen by the API for manual/webhook runs so it can answer with the id at once;
    # a schedule-started run derives it from its own (deterministic) workflow uuid.
    task_id: str | None = None


@dataclass
class InstantiateInput:
    config_id: str
    task_id: str
    trigger_id: str | None
    params: dict[str, Any]


@dataclass
class InstantiateResult:
    task_id: str
    created: bool
    skipped: str | None = None


@dataclass
class AwaitTaskInput:
    task_id: str
    poll_seconds: float = 1.0


@dataclass
class AwaitTaskResult:
    state: str | None  # None: the task was deleted


@dataclass
class StandaloneRunInput:
    standalone_id: str
    trigger_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # None for schedule-started runs: the run id is then the workflow id minus "run-".
    run_id: str | None = None


@dataclass
class OpenStandaloneInput:
    run_id: str
    standalone_id: str
    trigger_id: str | None
    params: dict[str, Any]


@dataclass
class StandalonePlan:
    run_id: str
    max_concurrent: int
    max_retries: int
    refused: str | None = None  # why the run fails before it starts (disabled, bad params)


@dataclass
class StandaloneAttemptInput:
    run_id: str
    attempt: int
    stall_threshold_ms: int


@dataclass
class StandaloneAttemptResult:
    success: bool
    summary: str = ""
    error: str | None = None
    over_budget: bool = False
    cost_usd: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    session_id: str | None = None


@dataclass
class FinishStandaloneInput:
    run_id: str
    state: str  # running | completed | failed | queued
    result: StandaloneAttemptResult | None = None
    error: str | None = None
    retry_count: int | None = None
