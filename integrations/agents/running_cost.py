"""A run's cost while it works, estimated from the usage each model message reports.

For CLIs that state their cost only at the end (Claude Code's `result` line): without a
running figure a budget could stop such a run only after it finished. Each message is
counted once, by its id, with the latest usage seen for it (one message arrives as
several stream events), and priced with pricing.py (the operator's prices win).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from integrations.agents.common import money
from integrations.agents.pricing import cost, price_for

# What the estimate's usage entry carries: `costUsd` (what core.budget.cost_in reads) and
# the tokens so far, never an `outcome` (the final result's key).
ESTIMATE_KEY = "costEstimated"


@dataclass
class RunningCost:
    """Cumulative estimate over one run's Anthropic Messages usage blocks."""

    prices: Mapping[str, list[float]] = field(default_factory=dict)
    # message id -> (model, input tokens incl. cache, cached read tokens, output tokens)
    _messages: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    _reported: str | None = None

    def update(self, message_id: str, model: str, usage: Mapping[str, Any]) -> bool:
        """Take a message's usage; True when it changed what the run has used."""
        cached = _count(usage.get("cache_read_input_tokens"))
        fresh = _count(usage.get("input_tokens")) + _count(usage.get("cache_creation_input_tokens"))
        seen = (
            model,
            fresh + cached,
            cached,
            _count(usage.get("output_tokens")),
        )
        if self._messages.get(message_id) == seen:
            return False
        self._messages[message_id] = seen
        return True

    def metadata(self) -> dict[str, Any] | None:
        """The usage entry's metadata when the estimate grew and every model has a price."""
        total = Decimal(0)
        for model, input_tokens, cached, output_tokens in self._messages.values():
            price = price_for(model, self.prices)
            if price is None:
                return None  # a partial figure would understate the spend
            total += Decimal(
                cost(
                    price,
                    input_tokens=input_tokens,
                    cached_input_tokens=cached,
                    output_tokens=output_tokens,
                )
            )
        amount = money(total)
        if amount == self._reported:
            return None
        self._reported = amount
        models = [m for m, *_ in self._messages.values() if m]
        return {
            "costUsd": amount,
            ESTIMATE_KEY: True,
            "inputTokens": sum(m[1] for m in self._messages.values()),
            "outputTokens": sum(m[3] for m in self._messages.values()),
            "model": models[-1] if models else None,
        }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
