"""The launcher a process uses, chosen by OPTIO_LAUNCHER: one per process and cluster, so
that the kubernetes launcher keeps a single watch however many activities poll it."""

from __future__ import annotations

import threading

from core.settings import Settings
from integrations.launchers.base import Launcher
from integrations.launchers.local import LocalLauncher

_shared: dict[str, Launcher] = {}
_lock = threading.Lock()


def launcher_for(settings: Settings) -> Launcher:
    if settings.launcher != "kubernetes":
        return LocalLauncher(runs_root=settings.runs_dir)
    from integrations.launchers.kubernetes import KubernetesLauncher

    key = settings.model_dump_json(
        include={f for f in Settings.model_fields if f.startswith("k8s_")}
    )
    with _lock:
        if key not in _shared:
            _shared[key] = KubernetesLauncher.from_settings(settings)
        return _shared[key]
