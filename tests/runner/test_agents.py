from __future__ import annotations

from pathlib import Path

import pytest

from integrations.agents import UnsupportedAgentError, get_adapter, strip_ansi
from integrations.agents.base import ParsedEntry
from integrations.agents.script import ScriptAdapter
from schemas.runner import RunSpec


def test_strip_ansi_removes_colours_cursor_moves_and_titles() -> None:
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b[2Kx\x1b]0;title\x07!") == "red x!"


def test_script_adapter_parses_lines() -> None:
    adapter = ScriptAdapter()
    assert adapter.parse_line("   ", "stdout") == []
    assert adapter.parse_line("\x1b[32mok\x1b[0m\r", "stdout") == [ParsedEntry("text", "ok")]
    assert adapter.parse_line("warn", "stderr") == [ParsedEntry("text", "warn", "stderr")]


def test_script_adapter_result_uses_last_stdout_line() -> None:
    adapter = ScriptAdapter()
    entries = [ParsedEntry("text", "x" * 3000), ParsedEntry("text", "err", "stderr")]
    ok = adapter.result(0, entries)
    assert ok.success and ok.summary == "x" * 2000 and ok.error is None
    failed = adapter.result(2, [])
    assert not failed.success
    assert failed.summary == failed.error == "Script exited with code 2"


def test_script_adapter_runs_the_prompt_file_with_bash(tmp_path: Path) -> None:
    spec = RunSpec.model_validate(
        {
            "runId": "r", "taskId": "t", "agentType": "script", "prompt": "echo",
            "repoUrl": "/x", "branch": "b", "worktreePath": "/w", "mirrorCacheDir": "/m",
            "ingestUrl": "http://127.0.0.1:1/", "runToken": "k",
        }
    )  # fmt: skip
    prompt = tmp_path / "agent-script.sh"
    assert ScriptAdapter().build_command(spec, prompt_file=prompt) == ["bash", str(prompt)]
    assert ScriptAdapter().env(spec)["OPTIO_RUN_ID"] == "r"


def test_registry() -> None:
    assert get_adapter("script").agent_type == "script"
    with pytest.raises(UnsupportedAgentError, match="'openclaw' is accepted but its adapter"):
        get_adapter("openclaw")
    with pytest.raises(UnsupportedAgentError, match="Unknown agent type 'nope'"):
        get_adapter("nope")
