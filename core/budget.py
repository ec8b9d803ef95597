"""Money for budgets: USD amounts travel as decimal strings ("0.25"), never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Keys under which agent adapters report cumulative cost in a log event's metadata.
COST_KEYS = ("costUsd", "cost_usd", "totalCostUsd", "total_cost_usd")


def parse_usd(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def cost_in(metadata: dict[str, Any] | None) -> Decimal | None:
    """The cumulative cost an event reports, if it reports one.

    Adapters put it at the top of the metadata or, like Claude Code's usage entry,
    under `outcome`.
    """
    for source in (metadata or {}, (metadata or {}).get("outcome") or {}):
        if not isinstance(source, dict):
            continue
        for key in COST_KEYS:
            amount = parse_usd(source.get(key))
            if amount is not None:
                return amount
    return None


def over_budget(cost: object, budget: object) -> bool:
    spent, limit = parse_usd(cost), parse_usd(budget)
    return spent is not None and limit is not None and spent > limit


def budget_reason(cost: object, budget: object) -> str:
    return f"Budget exceeded: spent ${parse_usd(cost)} of a ${parse_usd(budget)} budget"
