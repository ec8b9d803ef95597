"""`optio worker` on the kubernetes launcher as a process of its own, to be killed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from tests.e2e.test_crash_safety import PROJECT, WorkerProcess, worker_env


def k8s_env(settings: Settings) -> dict[str, str]:
    env = {"OPTIO_LAUNCHER": "kubernetes"}
    for name in Settings.model_fields:
        if name.startswith("k8s_"):
            value = getattr(settings, name)
            if value is None:
                continue
            text = value if isinstance(value, str | Path) else json.dumps(value)
            text = str(text)
            env[f"OPTIO_{name.upper()}"] = text
    return env


class PodWorker(WorkerProcess):
    """`optio worker` on the kubernetes launcher."""

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--no-migrate"],
                cwd=PROJECT,
                env=worker_env(self.settings) | k8s_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
