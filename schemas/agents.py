"""MCP servers and custom skills (inventory §3.21): HTTP shapes and what a run receives."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from schemas.common import ApiModel, ApiOut, relative_inside

# `${{NAME}}`: a secret reference in MCP server args and env, resolved at run start.
SECRET_REF = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

SkillLayout = Literal["commands", "skill-dir"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


# ---- what the runner receives (inside RunSpec) ------------------------------------------


class McpServerSpec(BaseModel):
    """One MCP server as the agent starts it; args/env may hold `${{SECRET}}` references."""

    name: str
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    install_command: str | None = None


class SkillFile(ApiModel):
    relative_path: str = Field(min_length=1, max_length=500)
    content: str = Field(max_length=1_000_000)


SKILL_FILE_MAX_BYTES = 256 * 1024
SKILL_FILES_MAX_BYTES = 1024 * 1024
SKILL_FILES_MAX = 50


def _checked_files(files: list[SkillFile]) -> list[SkillFile]:
    """What a client may send: paths inside the skill's folder, sizes capped."""
    total = 0
    for index, item in enumerate(files):
        try:
            relative_inside(item.relative_path)
        except ValueError as exc:
            raise ValueError(f"files.{index}.relativePath {exc}") from None
        size = len(item.content.encode())
        if size > SKILL_FILE_MAX_BYTES:
            raise ValueError(f"files.{index}.content is over {SKILL_FILE_MAX_BYTES // 1024} KiB")
        total += size
    if total > SKILL_FILES_MAX_BYTES:
        raise ValueError(f"files are over {SKILL_FILES_MAX_BYTES // 1024} KiB together")
    return files


# Stored files were checked on the way in; SkillFile itself stays lenient so a row saved
# before these rules still loads (the runner skips a path that leaves the skill).
SkillFiles = Annotated[
    list[SkillFile], Field(max_length=SKILL_FILES_MAX), AfterValidator(_checked_files)
]


class SkillSpec(BaseModel):
    name: str
    description: str | None = None
    prompt: str
    layout: SkillLayout = "commands"
    files: list[SkillFile] = Field(default_factory=list)


# ---- HTTP -------------------------------------------------------------------------------


class McpServerCreate(ApiModel):
    name: str = Field(pattern=NAME_PATTERN)
    command: str = Field(min_length=1, max_length=2000)
    args: list[str] | None = None
    env: dict[str, str] | None = None
    install_command: str | None = Field(default=None, max_length=4000)
    repo_url: str | None = Field(default=None, max_length=2000)
    enabled: bool = True


class McpServerUpdate(ApiModel):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    command: str | None = Field(default=None, min_length=1, max_length=2000)
    args: list[str] | None = None
    env: dict[str, str] | None = None
    install_command: str | None = Field(default=None, max_length=4000)
    enabled: bool | None = None


class McpServerPublic(ApiOut):
    id: str
    workspace_id: str
    name: str
    command: str
    args: list[str]
    env: dict[str, str]
    install_command: str | None
    repo_url: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class SkillCreate(ApiModel):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    prompt: str = Field(min_length=1, max_length=200_000)
    repo_url: str | None = Field(default=None, max_length=2000)
    layout: SkillLayout = "commands"
    files: SkillFiles | None = None
    agent_types: list[str] | None = None
    enabled: bool = True


class SkillUpdate(ApiModel):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    prompt: str | None = Field(default=None, min_length=1, max_length=200_000)
    layout: SkillLayout | None = None
    files: SkillFiles | None = None
    agent_types: list[str] | None = None
    enabled: bool | None = None


class SkillPublic(ApiOut):
    id: str
    workspace_id: str
    name: str
    description: str | None
    prompt: str
    repo_url: str | None
    layout: str
    files: list[SkillFile]
    agent_types: list[str] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
