"""The running cost estimate: each message once, at its latest usage, priced or nothing."""

from __future__ import annotations

from integrations.agents.running_cost import RunningCost

SONNET = "claude-sonnet-4-5"  # $3 in, $15 out, $0.30 cache read per million


def test_a_message_counts_once_at_its_latest_usage() -> None:
    spent = RunningCost()
    assert spent.update("m1", SONNET, {"input_tokens": 1000, "output_tokens": 1})
    first = spent.metadata()
    assert first is not None and first["costUsd"] == "0.003015"
    assert not spent.update("m1", SONNET, {"input_tokens": 1000, "output_tokens": 1})
    # The same message, its usage grown: replaced, not added.
    assert spent.update("m1", SONNET, {"input_tokens": 1000, "output_tokens": 100})
    grown = spent.metadata()
    assert grown is not None and grown["costUsd"] == "0.0045"
    assert (grown["inputTokens"], grown["outputTokens"]) == (1000, 100)
    assert spent.metadata() is None  # nothing new to report


def test_cache_reads_are_billed_at_the_cached_rate_and_writes_as_input() -> None:
    spent = RunningCost()
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 990,
        "cache_read_input_tokens": 10_000,
        "output_tokens": 0,
    }
    spent.update("m1", SONNET, usage)
    meta = spent.metadata()
    # 1,000 fresh at $3 + 10,000 cached at $0.30, per million.
    assert meta is not None and meta["costUsd"] == "0.006" and meta["inputTokens"] == 11_000


def test_no_estimate_while_a_model_has_no_price_and_overrides_win() -> None:
    spent = RunningCost()
    spent.update("m1", SONNET, {"input_tokens": 1000})
    spent.update("m2", "claude-unknown-9", {"input_tokens": 1000})
    assert spent.metadata() is None  # a partial figure would understate the spend
    priced = RunningCost(prices={"claude-unknown-9": [1, 2]})
    priced.update("m2", "claude-unknown-9", {"input_tokens": 1000, "output_tokens": 1000})
    meta = priced.metadata()
    assert meta is not None and meta["costUsd"] == "0.003" and meta["model"] == "claude-unknown-9"
