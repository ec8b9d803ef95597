"""USD prices per million tokens, for agents whose CLI reports tokens but no cost.

The one place prices live. Operators add or correct models with OPTIO_MODEL_PRICES
(settings.model_prices), which the run receives in its spec and which wins over this
table. Claude Code and OpenCode report their own cost; the Claude models are here for
Copilot CLI, which reports none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from integrations.agents.common import money


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    cached_input: Decimal


def _p(input: str, output: str, cached: str | None = None) -> Price:
    return Price(Decimal(input), Decimal(output), Decimal(cached if cached is not None else input))


# Reference table (inventory §4.1) plus the vendors' published list prices.
PRICES: dict[str, Price] = {
    "codex-mini-latest": _p("1.5", "6.0", "0.375"),
    "codex-mini": _p("1.5", "6.0", "0.375"),
    "o4-mini": _p("1.1", "4.4", "0.275"),
    "o3": _p("10", "40", "2.5"),
    "gpt-4.1": _p("2", "8", "0.5"),
    "gpt-4.1-mini": _p("0.4", "1.6", "0.1"),
    "gpt-4.1-nano": _p("0.1", "0.4", "0.025"),
    "gpt-5": _p("1.25", "10", "0.125"),
    "gpt-5-codex": _p("1.25", "10", "0.125"),
    "gpt-5-mini": _p("0.25", "2", "0.025"),
    "gpt-5-nano": _p("0.05", "0.4", "0.005"),
    "gemini-2.5-pro": _p("1.25", "10", "0.31"),
    "gemini-2.5-flash": _p("0.15", "0.6", "0.0375"),
    "gemini-2.0-flash": _p("0.1", "0.4", "0.025"),
    # Copilot CLI with a BYOK Anthropic provider reports tokens only (its own names
    # use dots); OpenCode prices these itself.
    "claude-sonnet-4.5": _p("3", "15", "0.3"),
    "claude-sonnet-4-5": _p("3", "15", "0.3"),
    "claude-opus-4.1": _p("15", "75", "1.5"),
    "claude-opus-4-1": _p("15", "75", "1.5"),
    "claude-haiku-4.5": _p("1", "5", "0.1"),
    "claude-haiku-4-5": _p("1", "5", "0.1"),
}

MILLION = Decimal(1_000_000)


def price_for(model: str | None, overrides: Mapping[str, list[float]]) -> Price | None:
    """The price of `model`: an override [input, output, cached_input?] or the table."""
    if not model:
        return None
    override = overrides.get(model)
    if override:
        values = [Decimal(str(v)) for v in override]
        return Price(values[0], values[1], values[2] if len(values) > 2 else values[0])
    return PRICES.get(model)


def cost(price: Price, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> str:
    """USD for one run; cached input tokens are part of input_tokens, billed at their rate."""
    fresh = max(0, input_tokens - cached_input_tokens)
    total = (
        price.input * fresh
        + price.cached_input * cached_input_tokens
        + price.output * output_tokens
    ) / MILLION
    return money(total)
