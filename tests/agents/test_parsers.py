"""The five output formats, parsed from recorded output (see fixtures/README.md).

Claude Code, Codex and Copilot fixtures were recorded from the real CLIs run against
the scripted endpoint; Gemini and OpenCode were written from the CLIs' own source.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from core.budget import cost_in
from integrations.agents import AgentAdapter, ParsedEntry, get_adapter
from schemas.runner import RunSpec
from tests.agents.conftest import FIXTURES

SPEC = RunSpec.model_validate(
    {
        "runId": "r", "taskId": "t", "agentType": "x", "prompt": "p", "repoUrl": "/x",
        "branch": "b", "worktreePath": "/w", "mirrorCacheDir": "/m",
        "ingestUrl": "http://127.0.0.1:1/", "runToken": "k",
    }
)  # fmt: skip


def parse(adapter: AgentAdapter, name: str, seed: Sequence[ParsedEntry] = ()) -> list[ParsedEntry]:
    entries = list(seed)
    for line in (FIXTURES / name).read_text().splitlines():
        entries.extend(adapter.parse_line(line, "stdout"))
    return entries


def kinds(entries: Sequence[ParsedEntry]) -> list[tuple[str, str]]:
    return [(e.log_type, e.content) for e in entries]


def test_claude_code_successful_run(tmp_path: Path) -> None:
    adapter = get_adapter("claude-code")
    entries = parse(adapter, "claude_write.jsonl")
    assert entries[0].log_type == "system" and entries[0].content.startswith(
        "Session started · claude-opus-4-8 · "
    )
    tools = [c for t, c in kinds(entries) if t == "tool_use"]
    assert tools[0].startswith("Read /") and tools[0].endswith("/.optio/task.md")
    assert tools[1].startswith("Write /") and tools[1].endswith("/hello.txt")
    results = [e for e in entries if e.log_type == "tool_result"]
    assert "Create the file hello.txt" in results[0].content and not results[0].metadata["isError"]
    assert entries[-1].log_type == "usage" and entries[-1].content.startswith("3 turns · ")
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.cost_usd == "0.003"
    assert (outcome.input_tokens, outcome.output_tokens) == (300, 60)
    assert outcome.model == "claude-opus-4-8" and outcome.session_id
    assert outcome.summary == "All done: wrote hello.txt."


def test_claude_code_reports_a_running_cost_estimate_per_model_message() -> None:
    """The CLI states its cost only in its result line: each model message (several
    stream events share one id) adds to an estimate priced like the CLI does."""
    adapter = get_adapter("claude-code")
    spec = SPEC.model_copy(update={"model_prices": {"claude-opus-4-8": [5, 25]}})
    entries = parse(adapter, "claude_write.jsonl", adapter.before_run(spec, home=Path("/x")))
    estimates = [e for e in entries if e.metadata.get("costEstimated")]
    assert [e.log_type for e in estimates] == ["usage"] * 3  # three messages, five events
    assert [cost_in(e.metadata) for e in estimates] == [
        Decimal("0.001"),
        Decimal("0.002"),
        Decimal("0.003"),
    ]
    assert (estimates[-1].metadata["inputTokens"], estimates[-1].metadata["outputTokens"]) == (
        300,
        60,
    )
    assert estimates[0].content == "≈ $0.001 so far (estimate)"
    # The result line stays the final word: the estimates are not mistaken for it.
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.cost_usd == "0.003" and outcome.summary.startswith("All")


def test_claude_code_estimates_nothing_for_a_model_without_a_price() -> None:
    adapter = get_adapter("claude-code")
    entries = parse(adapter, "claude_write.jsonl", adapter.before_run(SPEC, home=Path("/x")))
    assert [e for e in entries if e.metadata.get("costEstimated")] == []
    # A fresh adapter per run: another run's tally never leaks into this one.
    assert get_adapter("claude-code") is not adapter


def test_claude_code_auth_error_hides_under_success_subtype() -> None:
    adapter = get_adapter("claude-code")
    spec = SPEC.model_copy(update={"model_base_url": "http://127.0.0.1:9/"})
    entries = parse(adapter, "claude_auth_error.jsonl", adapter.before_run(spec, home=Path("/x")))
    outcome = adapter.result(1, entries)
    assert not outcome.success
    # The provider, the status and the endpoint: enough to tell a bad key from a bad proxy.
    assert outcome.error == (
        "Agent authentication failed: Invalid API key · Fix external API key"
        " (Anthropic, HTTP 401, http://127.0.0.1:9/v1/messages)"
    )
    assert [e.log_type for e in entries].count("error") == 2


def test_claude_code_max_turns() -> None:
    adapter = get_adapter("claude-code")
    outcome = adapter.result(1, parse(adapter, "claude_max_turns.jsonl"))
    assert outcome.error == "Agent stopped: Reached maximum number of turns (3)"
    assert outcome.cost_usd == "0.003"


def test_codex_run_and_resume_count_only_new_usage() -> None:
    adapter = get_adapter("codex")
    spec = SPEC.model_copy(update={"model": "gpt-5", "agent_type": "codex"})
    seed = adapter.before_run(spec, home=Path("/nonexistent"))
    entries = parse(adapter, "codex_apply_patch.jsonl", seed)
    assert ("tool_use", "$ /bin/bash -lc 'cat .optio/task.md'") in kinds(entries)
    assert any(t == "tool_use" and c.startswith("Write /") for t, c in kinds(entries))
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.summary == "All done: wrote hello.txt."
    assert (outcome.input_tokens, outcome.output_tokens) == (300, 60)
    assert outcome.cost_usd == "0.000975" and outcome.model == "gpt-5"
    assert outcome.session_id == "01a227a5-494f-7342-8462-7ebdd35fb8d1"


def test_codex_resume_subtracts_the_threads_earlier_usage(tmp_path: Path) -> None:
    thread = "01a227a5-494f-7342-8462-7ebdd35fb8d1"
    rollout = tmp_path / ".codex" / "sessions" / "2026" / "11" / "29" / f"rollout-x-{thread}.jsonl"
    rollout.parent.mkdir(parents=True)
    usage = {"input_tokens": 300, "cached_input_tokens": 0, "output_tokens": 60}
    event = {
        "type": "event_msg",
        "payload": {"type": "token_count", "info": {"total_token_usage": usage}},
    }
    import json

    rollout.write_text(json.dumps(event) + "\n")
    adapter = get_adapter("codex")
    spec = SPEC.model_copy(update={"model": "gpt-5", "resume_session_id": thread})
    entries = parse(adapter, "codex_resume.jsonl", adapter.before_run(spec, home=tmp_path))
    outcome = adapter.result(0, entries)
    # The thread's total is 500/100 after the resume; this run used 200/40 of it.
    assert (outcome.input_tokens, outcome.output_tokens) == (200, 40)
    assert outcome.cost_usd == "0.00065"


def test_codex_auth_error(tmp_path: Path) -> None:
    adapter = get_adapter("codex")
    spec = SPEC.model_copy(update={"agent_type": "codex"})
    seed = adapter.before_run(spec, home=tmp_path)
    outcome = adapter.result(1, parse(adapter, "codex_auth_error.jsonl", seed))
    assert not outcome.success
    assert outcome.error is not None
    assert outcome.error.startswith(
        "Agent authentication failed: unexpected status 401 Unauthorized"
    )
    assert outcome.error.endswith("(OpenAI, HTTP 401, https://api.openai.com/v1/responses)")


def test_copilot_run_and_auth_error() -> None:
    adapter = get_adapter("copilot")
    entries = parse(adapter, "copilot_write.jsonl")
    tools = [c for t, c in kinds(entries) if t == "tool_use"]
    assert tools[0].startswith("Read /") and tools[1].startswith("Write /")
    assert not any(e.metadata.get("raw") for e in entries)
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.summary == "All done: wrote hello.txt."
    assert outcome.model == "claude-sonnet-4.5" and outcome.cost_usd is None
    failed = adapter.result(1, parse(adapter, "copilot_auth_error.jsonl"))
    assert failed.error is not None
    assert failed.error.startswith(
        "Agent authentication failed: Authentication failed with provider"
    )


def test_gemini_stream_json() -> None:
    adapter = get_adapter("gemini")
    spec = SPEC.model_copy(update={"model": "gemini-2.5-pro"})
    entries = parse(adapter, "gemini_stream.jsonl", adapter.before_run(spec, home=Path("/x")))
    tools = [c for t, c in kinds(entries) if t == "tool_use"]
    assert tools == ["Read .optio/task.md", "Write hello.txt", "$ npm test"]
    errors = [e for e in entries if e.log_type == "tool_result" and e.metadata["isError"]]
    assert errors[0].content == "Command exited with code 1"
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.summary == "All done: wrote hello.txt."
    assert (outcome.input_tokens, outcome.output_tokens) == (1200, 180)
    # 1000 fresh in at 1.25, 200 cached at 0.31, 180 out at 10 (USD per million).
    assert outcome.cost_usd == "0.003112"
    failed = adapter.result(1, parse(adapter, "gemini_auth_error.jsonl"))
    assert failed.error == (
        "Agent authentication failed: [API Error: API key not valid. Please pass a valid API key.]"
    )


def test_opencode_json() -> None:
    adapter = get_adapter("opencode")
    entries = parse(adapter, "opencode_run.jsonl")
    tools = [c for t, c in kinds(entries) if t == "tool_use"]
    assert tools == ["Read /repo/.optio/task.md", "Write /repo/hello.txt", "$ npm test"]
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.cost_usd == "0.0035"
    assert (outcome.input_tokens, outcome.output_tokens) == (1550, 92)
    assert outcome.session_id == "ses_5a1b2c3d4effFgH1iJ2kL3mN4"
    failed = adapter.result(1, parse(adapter, "opencode_auth_error.jsonl"))
    assert (
        failed.error
        == "Agent authentication failed: HTTP 401: Incorrect API key provided: sk-no-ke***ired."
    )


def test_gemini_real_run_is_priced_per_model_and_its_api_error_named() -> None:
    adapter = get_adapter("gemini")
    spec = SPEC.model_copy(update={"model": "gemini-2.5-pro"})
    entries = parse(adapter, "gemini_real_write.jsonl", adapter.before_run(spec, home=Path("/x")))
    tools = [c for t, c in kinds(entries) if t == "tool_use"]
    assert len(tools) == 1 and tools[0].startswith("Write /") and tools[0].endswith("/hello.txt")
    outcome = adapter.result(0, entries)
    assert outcome.success and outcome.summary == "All done: wrote hello.txt."
    assert (outcome.input_tokens, outcome.output_tokens) == (200, 40)
    # 200 in at $1.25/M and 40 out at $10/M: the CLI reports no cost.
    assert outcome.cost_usd == "0.00065" and outcome.model == "gemini-2.5-pro"
    # An operator's price wins over the table.
    priced = SPEC.model_copy(update={"model_prices": {"gemini-2.5-pro": [1, 1]}})
    entries = parse(adapter, "gemini_real_write.jsonl", adapter.before_run(priced, home=Path("/x")))
    assert adapter.result(0, entries).cost_usd == "0.00024"
    failed = adapter.result(145, parse(adapter, "gemini_real_401.jsonl"))
    assert failed.error == (
        "Agent authentication failed: Gemini API: HTTP 401 UNAUTHENTICATED:"
        " API key not valid. Please pass a valid API key."
    )


def test_opencode_real_run_and_its_auth_error_names_the_provider() -> None:
    adapter = get_adapter("opencode")
    spec = SPEC.model_copy(update={"model": "anthropic/claude-sonnet-4-5"})
    seed = adapter.before_run(spec, home=Path("/x"))
    outcome = adapter.result(0, parse(adapter, "opencode_real_write.jsonl", seed))
    assert outcome.success and outcome.cost_usd == "0.0012"
    assert (outcome.input_tokens, outcome.output_tokens) == (200, 40)
    assert outcome.model == "anthropic/claude-sonnet-4-5"
    failed = adapter.result(1, parse(adapter, "opencode_real_401.jsonl", seed))
    assert failed.error == (
        "Agent authentication failed: HTTP 401 from the anthropic provider"
        " (http://127.0.0.1:18903/v1/messages): invalid x-api-key"
    )


def test_copilot_tokens_come_from_its_session_log_and_are_priced(tmp_path: Path) -> None:
    adapter = get_adapter("copilot")
    session = "95c7a3a3-f489-478f-9e1b-d485d1f2d3cf"
    log = tmp_path / ".copilot" / "session-state" / session / "events.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text((FIXTURES / "copilot_session_events.jsonl").read_text())
    seed = adapter.before_run(SPEC, home=tmp_path)
    outcome = adapter.result(0, parse(adapter, "copilot_real_write.jsonl", seed))
    assert outcome.success and outcome.session_id == session
    assert (outcome.input_tokens, outcome.output_tokens) == (200, 40)
    # claude-sonnet-4.5 at $3/M in and $15/M out (BYOK: the CLI says cost 0).
    assert outcome.cost_usd == "0.0012"
    # A resumed session counts only the records its own run adds.
    resumed = SPEC.model_copy(update={"resume_session_id": session})
    seed = adapter.before_run(resumed, home=tmp_path)
    outcome = adapter.result(0, parse(adapter, "copilot_real_write.jsonl", seed))
    assert outcome.input_tokens is None and outcome.cost_usd is None


@pytest.mark.parametrize("agent", ["claude-code", "codex", "gemini", "opencode", "copilot"])
def test_malformed_and_truncated_lines_are_kept_raw(agent: str) -> None:
    adapter = get_adapter(agent)
    fixture = {
        "claude-code": "claude_write.jsonl",
        "codex": "codex_apply_patch.jsonl",
        "gemini": "gemini_stream.jsonl",
        "opencode": "opencode_run.jsonl",
        "copilot": "copilot_write.jsonl",
    }[agent]
    last = (FIXTURES / fixture).read_text().splitlines()[-1]
    for line in (last[: len(last) // 2], "not json at all", '{"type": 42, "weird": [', "[1, 2]"):
        entries = adapter.parse_line(line, "stdout")
        assert entries == [ParsedEntry("text", line, "stdout", {"raw": True})]
    assert adapter.parse_line("{}", "stdout")[0].metadata == {"raw": True}
    assert adapter.parse_line("", "stdout") == []
    assert adapter.parse_line("\x1b[31mwarning: x\x1b[0m", "stderr") == [
        ParsedEntry("text", "warning: x", "stderr", {"raw": True})
    ]
    # A run that printed only garbage fails with a message, never an exception.
    outcome = adapter.result(3, adapter.parse_line("garbage", "stdout"))
    assert not outcome.success and outcome.error


def test_permanent_failures_are_recognised() -> None:
    from integrations.agents.common import classify_failure, is_permanent

    assert is_permanent(classify_failure("Error: 401 Unauthorized"))
    assert is_permanent(classify_failure("You exceeded your current quota"))
    assert not is_permanent(classify_failure("Command failed"))
    assert not is_permanent(None)
