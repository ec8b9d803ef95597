"""Pure parts: cron and time zone checks, the params schema subset, user templates, money."""

from __future__ import annotations

import pytest

from core.budget import budget_reason, cost_in, over_budget
from core.params_schema import ParamsError, check_schema, validate_params
from core.prompt_chain import EffectivePrompt, choose_effective, render_user_template
from core.schedules import ScheduleError, validate_cron, validate_timezone
from core.templating import TemplateError


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "0 9 * * MON-FRI",
        "*/5 0-6,22 1 JAN,jul sun",
        "0 0 1 1 * 2030",
        "*/3 * * * * * *",
        "@daily",
        "@every 90s",
        "@every 1h/5m",
        "  0   9 * * 1 ",
    ],
)
def test_valid_cron(expression: str) -> None:
    assert validate_cron(expression) == " ".join(expression.split())


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "empty"),
        ("* * * *", "got 4"),
        ("60 * * * *", "minute 60"),
        ("* 24 * * *", "hour 24"),
        ("* * 0 * *", "day-of-month 0"),
        ("* * * 13 *", "month 13"),
        ("* * * * 8", "day-of-week 8"),
        ("5-1 * * * *", "backwards"),
        ("*/0 * * * *", "bad step"),
        ("x * * * *", "'x'"),
        ("@sometimes", "shorthand"),
        ("@every soon", "shorthand"),
    ],
)
def test_invalid_cron(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem):
        validate_cron(expression)


def test_timezones() -> None:
    assert validate_timezone("America/New_York") == "America/New_York"
    with pytest.raises(ScheduleError, match="time zone"):
        validate_timezone("Mars/Olympus")


def test_params_schema() -> None:
    schema = {
        "type": "object",
        "required": ["n"],
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "flag": {"type": ["boolean", "null"]},
        },
        "additionalProperties": False,
    }
    check_schema(schema)
    validate_params(schema, {"n": 2, "tags": ["a"], "flag": None})
    validate_params(None, {"anything": 1})
    with pytest.raises(ParamsError) as problems:
        validate_params(schema, {"n": True, "tags": ["c"], "extra": 1})
    assert str(problems.value) == (
        "params.n must be integer; params.tags[0] must be one of ['a', 'b']; "
        "params.extra is not allowed"
    )
    with pytest.raises(ParamsError):
        check_schema({"type": "object", "properties": {"x": {"type": "decimal"}}})


def test_user_templates_keep_unknown_placeholders() -> None:
    text = "{{a}} {{ b.c }} {{missing}}{{#if flag}} on{{/if}}{{#if missing}} never{{/if}}"
    assert (
        render_user_template(text, {"a": 1, "b": {"c": None}, "flag": "yes"}) == "1  {{missing}} on"
    )
    with pytest.raises(TemplateError):
        render_user_template("{{#if a}}", {})


def test_effective_chain_order() -> None:
    repo = EffectivePrompt(template="r", source="repo")
    ws = EffectivePrompt(template="w", source="workspace")
    assert choose_effective(repo_override=repo, workspace_default=ws) is repo
    assert choose_effective(repo_override=None, workspace_default=ws) is ws
    assert choose_effective(repo_override=None, workspace_default=None).source == "builtin"


def test_costs_and_budgets() -> None:
    assert cost_in({"costUsd": "0.5"}) == cost_in({"outcome": {"costUsd": 0.5}})
    assert cost_in({"total_cost_usd": "x"}) is None and cost_in(None) is None
    assert over_budget("0.05", "0.01") and not over_budget("0.01", "0.01")
    assert not over_budget(None, "0.01") and not over_budget("5", None)
    assert budget_reason("0.05", "0.01") == "Budget exceeded: spent $0.05 of a $0.01 budget"
