"""Setup files come and go around the agent; secrets are resolved late and never logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.agents import get_adapter
from integrations.agents.base import SetupFile
from integrations.agents.stream_input import STREAM_INPUT_FLAGS, prompt_as_argument
from runner.secrets import MissingSecretError, Redactor, resolve_servers, servers_for_agent
from runner.setup import SetupFiles
from schemas.agents import McpServerSpec, SkillFile, SkillSpec
from schemas.runner import RunSpec
from tests.agents.test_parsers import SPEC

SERVER = McpServerSpec(
    name="docs", command="npx", args=["-y", "docs-mcp", "--token=${{DOCS_TOKEN}}"],
    env={"API_KEY": "${{ DOCS_TOKEN }}", "MODE": "ro"},
)  # fmt: skip
SKILLS = [
    SkillSpec(name="greet", description="Say hi", prompt="Say hi to $ARGUMENTS"),
    SkillSpec(
        name="deploy",
        prompt="How to deploy",
        layout="skill-dir",
        files=[
            SkillFile(relative_path="scripts/run.sh", content="echo deploy\n"),
            SkillFile(relative_path="../escape.txt", content="no"),
        ],
    ),
]


def test_secret_references_resolve_and_unknown_ones_fail() -> None:
    [server] = resolve_servers([SERVER], {"DOCS_TOKEN": "tok-123456"})
    assert server.args[-1] == "--token=tok-123456"
    assert server.env == {"API_KEY": "tok-123456", "MODE": "ro"}
    with pytest.raises(MissingSecretError, match="MCP server 'docs' references the unknown secret"):
        resolve_servers([SERVER], {})


def test_config_files_name_secrets_and_the_values_stay_in_the_environment(
    tmp_path: Path,
) -> None:
    secrets = {"DOCS_TOKEN": "tok-123456", "UNUSED": "other-value"}
    servers, env = servers_for_agent([SERVER], secrets, agent_type="claude-code")
    assert servers[0].args[-1] == "--token=${DOCS_TOKEN}"
    assert servers[0].env == {"API_KEY": "${DOCS_TOKEN}", "MODE": "ro"}
    assert env == {"DOCS_TOKEN": "tok-123456"}
    spec = SPEC.model_copy(update={"mcp_servers": servers})
    SetupFiles().write(
        get_adapter("claude-code").setup_files(spec), worktree=tmp_path, home=tmp_path
    )
    assert "tok-123456" not in (tmp_path / ".mcp.json").read_text()
    opencode, _ = servers_for_agent([SERVER], secrets, agent_type="opencode")
    assert opencode[0].env["API_KEY"] == "{env:DOCS_TOKEN}"
    # Codex passes values through its environment, never a file: resolved in place.
    codex, none = servers_for_agent([SERVER], secrets, agent_type="codex")
    assert codex[0].env["API_KEY"] == "tok-123456" and none == {}
    with pytest.raises(MissingSecretError):
        servers_for_agent([SERVER], {}, agent_type="claude-code")


def test_redactor_masks_secret_values_everywhere() -> None:
    redact = Redactor(["tok-123456", "abc"])  # too short to mask safely: kept
    assert redact.text("token tok-123456 abc") == "token *** abc"
    assert redact.data({"a": ["x tok-123456"], "n": 1}) == {"a": ["x ***"], "n": 1}


def test_secrets_never_appear_in_the_spec_repr() -> None:
    spec = SPEC.model_copy()
    spec = RunSpec.model_validate(spec.model_dump() | {"secret_env": {"K": "sekrit-value"}})
    assert "sekrit-value" not in repr(spec)
    assert json.loads(spec.model_dump_json(by_alias=True))["secretEnv"] == {"K": "sekrit-value"}


def test_claude_files_are_written_merged_and_restored(tmp_path: Path) -> None:
    worktree, home = tmp_path / "wt", tmp_path / "home"
    worktree.mkdir()
    home.mkdir()
    theirs = {"mcpServers": {"repo-own": {"command": "x"}}}
    (worktree / ".mcp.json").write_text(json.dumps(theirs))
    spec = SPEC.model_copy(update={"mcp_servers": [SERVER], "skills": SKILLS})
    files = get_adapter("claude-code").setup_files(spec)
    setup = SetupFiles()
    setup.write(files, worktree=worktree, home=home)
    merged = json.loads((worktree / ".mcp.json").read_text())
    assert set(merged["mcpServers"]) == {"repo-own", "docs"}
    assert (worktree / ".mcp.json").stat().st_mode & 0o777 == 0o600
    greet = (worktree / ".claude/commands/greet.md").read_text()
    assert greet.startswith('---\ndescription: "Say hi"\n---\n') and greet.endswith("$ARGUMENTS")
    assert (
        (worktree / ".claude/skills/deploy/SKILL.md").read_text().startswith('---\nname: "deploy"')
    )
    assert (worktree / ".claude/skills/deploy/scripts/run.sh").exists()
    assert not (worktree / ".claude/skills/escape.txt").exists()
    setup.restore()
    assert json.loads((worktree / ".mcp.json").read_text()) == theirs
    assert sorted(p.name for p in worktree.iterdir()) == [".mcp.json"]


def test_setup_files_cannot_escape_the_worktree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        SetupFiles().write([SetupFile("../x", "y")], worktree=tmp_path, home=tmp_path)


def test_codex_gets_mcp_by_config_flags_with_values_in_its_environment() -> None:
    [server] = resolve_servers([SERVER], {"DOCS_TOKEN": "tok-123456"})
    spec = SPEC.model_copy(update={"mcp_servers": [server], "skills": SKILLS, "agent_home": "/h"})
    adapter = get_adapter("codex")
    command = adapter.build_command(spec, prompt_file=Path("/p"))
    flag = next(c for c in command if c.startswith("mcp_servers.docs="))
    assert 'env_vars=["API_KEY", "MODE"]' in flag and "tok-123456" not in flag.split("args=")[0]
    env = adapter.env(spec)
    assert env["API_KEY"] == "tok-123456" and env["CODEX_HOME"] == "/h/.codex"
    paths = [f.path for f in adapter.setup_files(spec)]
    assert ".agents/skills/greet/SKILL.md" in paths


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("gemini", ".gemini/settings.json"),
        ("opencode", "opencode.json"),
        ("copilot", ".github/skills/greet/SKILL.md"),
    ],
)
def test_other_agents_get_their_own_config_files(agent: str, expected: str) -> None:
    spec = SPEC.model_copy(update={"mcp_servers": [SERVER], "skills": SKILLS})
    assert expected in [f.path for f in get_adapter(agent).setup_files(spec)]


def test_commands_name_the_model_session_and_turn_limit() -> None:
    spec = SPEC.model_copy(
        update={"model": "m1", "effort": "high", "resume_session_id": "s1", "max_turns": 7}
    )
    claude = get_adapter("claude-code").build_command(spec, prompt_file=Path("/p"))
    # Claude's prompt travels on stdin (stream-json), never on its command line.
    assert claude[:4] == ["claude", "-p", "--input-format", "stream-json"] and "p" not in claude
    for pair in (["--max-turns", "7"], ["--model", "m1"], ["--effort", "high"], ["--resume", "s1"]):
        assert pair[0] in claude and claude[claude.index(pair[0]) + 1] == pair[1]
    codex = get_adapter("codex").build_command(spec, prompt_file=Path("/p"))
    assert codex[:3] == ["codex", "exec", "resume"] and codex[-3:] == ["--", "s1", "p"]
    assert "analytics.enabled=false" in codex and "plugins" in codex
    gemini = get_adapter("gemini").build_command(spec, prompt_file=Path("/p"))
    assert gemini[:5] == ["gemini", "-p", "p", "--output-format", "stream-json"]
    opencode = get_adapter("opencode").build_command(spec, prompt_file=Path("/p"))
    assert opencode[-2:] == ["--", "p"] and "--session" in opencode
    copilot = get_adapter("copilot").build_command(spec, prompt_file=Path("/p"))
    assert copilot[:5] == ["copilot", "-p", "p", "--output-format", "json"]


def test_gemini_opencode_copilot_are_pointed_at_the_endpoint_without_the_command_line() -> None:
    [server] = resolve_servers([SERVER], {"DOCS_TOKEN": "tok-123456"})
    spec = SPEC.model_copy(
        update={
            "mcp_servers": [server],
            "model_base_url": "http://127.0.0.1:9",
            "model": "anthropic/claude-sonnet-4-5",
            "worktree_path": "/w",
        }
    )
    gemini = {(f.base, f.path): f.content for f in get_adapter("gemini").setup_files(spec)}
    user = json.loads(gemini[("home", ".gemini/settings.json")])
    # The base URL is honoured only with the API-key auth type; nothing phones home.
    assert user["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert user["privacy"]["usageStatisticsEnabled"] is False
    assert user["telemetry"]["enabled"] is False and user["general"]["disableAutoUpdate"]
    assert "docs" in json.loads(gemini[("worktree", ".gemini/settings.json")])["mcpServers"]
    assert get_adapter("gemini").env(spec)["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9"

    opencode = get_adapter("opencode")
    config = json.loads(opencode.setup_files(spec)[0].content)
    assert config["provider"] == {"anthropic": {"options": {"baseURL": "http://127.0.0.1:9/v1"}}}
    env = opencode.env(spec)
    assert env["npm_config_offline"] == "true" and env["OPENCODE_DISABLE_MODELS_FETCH"] == "true"
    assert env["PWD"] == "/w"

    copilot = get_adapter("copilot")
    command = copilot.build_command(spec, prompt_file=Path("/p"))
    assert "tok-123456" not in " ".join(command)
    [mcp] = [f for f in copilot.setup_files(spec) if f.path == ".copilot/mcp-config.json"]
    assert mcp.base == "home" and "tok-123456" in mcp.content
    assert copilot.env(spec)["COPILOT_OFFLINE"] == "true"


def test_claude_without_a_channel_to_its_stdin_gets_the_prompt_after_p() -> None:
    # A pod's agent container: nobody writes its stdin, so no stream-json input there.
    command = get_adapter("claude-code").build_command(SPEC, prompt_file=Path("/p"))
    plain = prompt_as_argument(command, "do it")
    assert plain[:3] == ["claude", "-p", "do it"]
    assert "--input-format" not in plain and "--replay-user-messages" not in plain
    assert plain[3:] == [a for a in command[2:] if a not in STREAM_INPUT_FLAGS]
