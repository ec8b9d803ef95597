"""MCP servers and skills in the form each agent reads them (inventory §3.21).

By the time these run, `${{SECRET}}` references are already resolved (runner.secrets);
the files are written into the worktree and taken away again before the commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from integrations.agents.base import SetupFile
from schemas.agents import McpServerSpec, SkillSpec


def _frontmatter(fields: dict[str, str | None]) -> str:
    lines = [f"{k}: {json.dumps(v)}" for k, v in fields.items() if v]
    return "---\n" + "\n".join(lines) + "\n---\n\n" if lines else ""


def mcp_json(servers: Sequence[McpServerSpec], *, path: str = ".mcp.json") -> list[SetupFile]:
    """`{mcpServers: {name: {command, args, env}}}`: Claude Code's .mcp.json, Gemini's too."""
    if not servers:
        return []
    body = {
        "mcpServers": {
            s.name: {"command": s.command, "args": s.args, "env": s.env} for s in servers
        }
    }
    return [SetupFile(path, json.dumps(body, indent=2) + "\n", mode=0o600)]


def skill_files(skills: Sequence[SkillSpec], *, root: str) -> list[SetupFile]:
    """Skills as `<root>/commands/<name>.md` or `<root>/skills/<name>/SKILL.md` (+ files)."""
    files: list[SetupFile] = []
    for skill in skills:
        if skill.layout == "commands":
            head = _frontmatter({"description": skill.description})
            files.append(SetupFile(f"{root}/commands/{skill.name}.md", head + skill.prompt))
            continue
        base = f"{root}/skills/{skill.name}"
        head = _frontmatter({"name": skill.name, "description": skill.description or skill.name})
        files.append(SetupFile(f"{base}/SKILL.md", head + skill.prompt))
        for extra in skill.files:
            relative = extra.relative_path.lstrip("/")
            if ".." in relative.split("/"):
                continue  # a skill may only place files inside its own directory
            files.append(SetupFile(f"{base}/{relative}", extra.content))
    return files


def agent_skill_dirs(skills: Sequence[SkillSpec], *, root: str) -> list[SetupFile]:
    """Agents without slash commands (Codex) get every skill as a SKILL.md directory."""
    as_dirs = [s.model_copy(update={"layout": "skill-dir"}) for s in skills]
    return skill_files(as_dirs, root=root)
