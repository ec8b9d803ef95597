"""Response shapes of the performance, agents, failures and PR analytics (inventory §3.15)."""

from __future__ import annotations

from schemas.common import ApiOut


class Durations(ApiOut):
    """Seconds over the window's finished tasks (wall clock: created to finished)."""

    avg_wall_clock: float
    p50_wall_clock: float
    p95_wall_clock: float
    avg_execution: float
    p50_execution: float
    p95_execution: float
    avg_queue_wait: float
    task_count: int


class TasksOfDay(ApiOut):
    date: str
    total: int
    succeeded: int
    failed: int


class PerformanceReport(ApiOut):
    durations: Durations
    success_rate: float
    success_rate_trend: float
    tasks_per_day: list[TasksOfDay]


class AgentStats(ApiOut):
    agent_type: str
    task_count: int
    success_rate: float
    avg_duration: float
    avg_cost: str
    avg_retries: float
    models: list[str]


class AgentsReport(ApiOut):
    agents: list[AgentStats]


class ErrorCount(ApiOut):
    message: str
    count: int


class RepoCount(ApiOut):
    repo_url: str
    count: int


class AgentCount(ApiOut):
    agent_type: str
    count: int


class ModelCount(ApiOut):
    model: str
    count: int


class FailuresReport(ApiOut):
    error_messages: list[ErrorCount]
    failure_by_repo: list[RepoCount]
    failure_by_agent: list[AgentCount]
    failure_by_model: list[ModelCount]
    failure_count: int
    retried_count: int
    retry_succeeded_count: int
    retry_success_rate: float
    stall_count: int
    stall_recovery_rate: float


class PrFunnel(ApiOut):
    pr_opened: int
    ci_passed: int
    review_approved: int
    merged: int


class PrsReport(ApiOut):
    total_prs: int
    open: int
    merged: int
    closed: int
    ci_pass_rate: float
    review_approval_rate: float
    auto_merge_rate: float
    avg_merge_time: float
    merge_count: int
    funnel: PrFunnel


class CostSummary(ApiOut):
    total_cost: str
    task_count: int
    tasks_with_cost: int
    average_cost: str
    avg_cost: str
    cost_trend: float
    prev_period_cost: str
    days: int


class CostForecast(ApiOut):
    daily_avg_cost: str
    month_cost_so_far: str
    forecasted_month_total: str
    days_remaining: int


class DailyCost(ApiOut):
    date: str
    cost: str
    task_count: int


class _CostGroup(ApiOut):
    cost: str
    total_cost: str
    task_count: int


class CostOfRepo(_CostGroup):
    repo_url: str


class CostOfType(_CostGroup):
    task_type: str


class CostOfModel(ApiOut):
    model: str
    total_cost: str
    task_count: int
    success_rate: float
    avg_cost: str
    total_input_tokens: int
    total_output_tokens: int


class CostOfBlueprint(ApiOut):
    id: str
    name: str
    type: str
    total_cost: str
    run_count: int


class CostlyTask(ApiOut):
    id: str
    title: str
    repo_url: str | None
    task_type: str
    state: str
    cost_usd: str
    model_used: str | None
    # As the report writes it (ISO 8601, with the offset).
    created_at: str


class CostAnomaly(CostlyTask):
    repo_avg_cost: str
    cost_ratio: float


class ModelSuggestion(ApiOut):
    repo_url: str
    current_model: str
    task_count: int
    avg_cost: str
    cheaper_model_avg_cost: str


class CostsReport(ApiOut):
    """GET /api/analytics/costs; amounts are USD as decimal strings (docs/costs.md)."""

    summary: CostSummary
    forecast: CostForecast
    daily_costs: list[DailyCost]
    cost_by_repo: list[CostOfRepo]
    cost_by_type: list[CostOfType]
    cost_by_model: list[CostOfModel]
    cost_by_blueprint: list[CostOfBlueprint]
    anomalies: list[CostAnomaly]
    model_suggestions: list[ModelSuggestion]
    top_tasks: list[CostlyTask]
