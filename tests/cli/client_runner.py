"""The `optio` client run as a user runs it: a subprocess, its own config dir, exit codes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cli.test_cli import OPTIO, clean_env


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.config_dir = home / "config"
        self.env = clean_env(XDG_CONFIG_HOME=str(self.config_dir), COLUMNS="250", **env)

    @property
    def config_file(self) -> Path:
        return self.config_dir / "optio" / "config.json"

    async def start(self, *args: str, **env: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            OPTIO,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **env},
            cwd=self.home,
        )

    async def run(self, *args: str, input: str = "", timeout: float = 120, **env: str) -> Done:
        process = await self.start(*args, **env)
        out, err = await asyncio.wait_for(process.communicate(input.encode()), timeout)
        assert process.returncode is not None
        done = Done(process.returncode, out.decode(), err.decode())
        assert "Traceback" not in done.err, done.err
        return done
