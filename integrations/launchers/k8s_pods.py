"""A run's pod as the API server takes it, and what a pod's status says about the run.

Pure functions over plain JSON-shaped dicts (what the API server sends and takes), so the
launcher's decisions can be read and tested apart from any client. The layout of the pod
is in schemas/pod.py; why it is laid out so is in docs/deployment.md ("Kubernetes
launcher").
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from integrations.git import mirror_path
from integrations.launchers.base import sandbox_name
from schemas import pod
from schemas.runner import RunProgress, RunResult, RunSpec, RunStatus

Json = dict[str, Any]

IMAGE_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
# Protected parts of the repository's git dir: read-only for the agent, as in the local
# sandbox (integrations/sandbox.py), so nothing it leaves there runs in the runner's git.
PROTECTED_GIT = ("config", "hooks", "info", "objects/info")


@dataclass(frozen=True)
class PodConfig:
    """Where and how a run's pod runs: settings, with a repository's overrides applied."""

    namespace: str
    image: str
    runner_command: list[str]
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[str] = field(default_factory=list)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Json] = field(default_factory=list)
    run_as_user: int = 1000
    grace_seconds: int = 10
    agent_path: list[str] = field(default_factory=list)

    def for_repo(self, overrides: Json | None) -> PodConfig:
        if not overrides:
            return self
        o = overrides
        return PodConfig(
            namespace=self.namespace,
            image=o.get("image", self.image),
            runner_command=self.runner_command,
            image_pull_policy=o.get("imagePullPolicy", self.image_pull_policy),
            image_pull_secrets=o.get("imagePullSecrets", self.image_pull_secrets),
            resources=o.get("resources", self.resources),
            node_selector=o.get("nodeSelector", self.node_selector),
            tolerations=o.get("tolerations", self.tolerations),
            run_as_user=self.run_as_user,
            grace_seconds=self.grace_seconds,
            agent_path=self.agent_path,
        )


def pod_spec_for(spec: RunSpec, config: PodConfig) -> RunSpec:
    """The spec with the pod's paths in place of the worker's."""
    return spec.model_copy(
        update={
            "worktree_path": pod.WORKTREE,
            "mirror_cache_dir": pod.MIRRORS,
            "agent_home": pod.HOME,
            "extra_path": list(config.agent_path),
        }
    )


def labels(spec: RunSpec) -> dict[str, str]:
    return {
        pod.MANAGED_BY: pod.MANAGER,
        pod.RUN_LABEL: spec.run_id,
        pod.TASK_LABEL: spec.task_id,
        pod.WORKSPACE_LABEL: spec.workspace_id or "none",
    }


def _security_context() -> Json:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(name: str, command: list[str], config: PodConfig, mounts: list[Json]) -> Json:
    container: Json = {
        "name": name,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": command,
        "securityContext": _security_context(),
        "volumeMounts": mounts,
        "terminationMessagePath": pod.TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    if config.resources:
        container["resources"] = config.resources
    return container


def _trusted_env(spec: RunSpec, secret_name: str) -> list[Json]:
    """The prepare and runner containers' environment: the spec, and the run's Secret."""
    return [
        {"name": pod.SPEC_ENV, "value": spec.public_json()},
        {
            "name": pod.SECRETS_ENV,
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": pod.SECRETS_KEY}},
        },
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def pod_manifest(spec: RunSpec, config: PodConfig) -> Json:
    """The pod of a run whose spec already has the pod's paths (pod_spec_for)."""
    name = sandbox_name(spec.run_id)
    mirror = mirror_path(repo_url=spec.repo_url, cache_dir=Path(pod.MIRRORS))
    mirror_sub = str(mirror.relative_to(pod.WORKSPACE))
    workspace = {"name": "workspace", "mountPath": pod.WORKSPACE}
    home = {"name": "home", "mountPath": pod.HOME}
    control = {"name": "control", "mountPath": pod.CONTROL}
    state = {"name": "state", "mountPath": pod.STATE}
    agent_mounts: list[Json] = [
        {"name": "workspace", "mountPath": pod.WORKTREE, "subPath": "worktree"},
        {"name": "workspace", "mountPath": str(mirror), "subPath": mirror_sub},
        *(
            {
                "name": "workspace",
                "mountPath": f"{mirror}/{part}",
                "subPath": f"{mirror_sub}/{part}",
                "readOnly": True,
            }
            for part in PROTECTED_GIT
        ),
        home,
        control,
    ]
    runner = [*config.runner_command]
    prepare = _container(pod.PREPARE, [*runner, "prepare"], config, [workspace, state])
    prepare["env"] = _trusted_env(spec, name)
    runner_container = _container(
        pod.RUNNER, [*runner, "run"], config, [workspace, home, control, state]
    )
    runner_container["env"] = _trusted_env(spec, name)
    agent = _container(pod.AGENT, [*runner, "agent"], config, agent_mounts)
    agent["workingDir"] = pod.WORKTREE
    pod_spec: Json = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": config.grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": config.run_as_user,
            "runAsGroup": config.run_as_user,
            "fsGroup": config.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [prepare],
        "containers": [agent, runner_container],
        "volumes": [
            {"name": "workspace", "emptyDir": {}},
            {"name": "home", "emptyDir": {}},
            {"name": "control", "emptyDir": {"medium": "Memory"}},
            {"name": "state", "emptyDir": {}},
        ],
    }
    if config.node_selector:
        pod_spec["nodeSelector"] = config.node_selector
    if config.tolerations:
        pod_spec["tolerations"] = config.tolerations
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in config.image_pull_secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels(spec)},
        "spec": pod_spec,
    }


def secret_manifest(spec: RunSpec, config: PodConfig, *, owner: Json) -> Json:
    """The run's Secret (token and credentials), owned by its pod: deleted with it."""
    data = base64.b64encode(spec.secrets_json().encode()).decode()
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": meta["name"],
            "namespace": config.namespace,
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {pod.SECRETS_KEY: data},
    }


# ---- reading a pod's status


def _statuses(pod_json: Json, key: str) -> list[Json]:
    return list((pod_json.get("status") or {}).get(key) or [])


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _result_from(state: Json) -> RunResult | None:
    try:
        return RunResult.model_validate_json(state.get("message") or "")
    except (ValidationError, ValueError):
        return None


def _failed(error: str, *, prepared: bool) -> RunStatus:
    return RunStatus(
        state="finished", result=RunResult(success=False, prepared=prepared, error=error)
    )


def read_status(pod_json: Json, *, now: datetime, pending_timeout: float) -> RunStatus:
    """Where the run in this pod stands. Failures name what a person can do about them."""
    status = pod_json.get("status") or {}
    name = pod_json["metadata"]["name"]
    init = _statuses(pod_json, "initContainerStatuses")
    main = _statuses(pod_json, "containerStatuses")
    for cs in init + main:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL_FAILURES:
            image = cs.get("image") or "?"
            return _failed(
                f"image {image} could not be pulled: {waiting.get('message') or waiting['reason']}"
                " (check OPTIO_K8S_IMAGE, the registry and OPTIO_K8S_IMAGE_PULL_SECRETS)",
                prepared=False,
            )
    if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
        return _failed(
            f"pod {name} was evicted from node {pod_json['spec'].get('nodeName') or '?'}: "
            f"{status.get('message') or 'the node ran short of resources'} (give runs "
            "requests that match their use in OPTIO_K8S_RESOURCES, or add capacity)",
            prepared=any(c.get("name") == pod.PREPARE and _terminated(c) for c in init),
        )
    for cs in init + main:
        term = _terminated(cs)
        if term and term.get("reason") == "OOMKilled":
            limit = (pod_json["spec"]["containers"][0].get("resources") or {}).get("limits") or {}
            return _failed(
                f"the {cs['name']} container ran out of memory (limit "
                f"{limit.get('memory', 'none')}): raise limits.memory in OPTIO_K8S_RESOURCES",
                prepared=cs.get("name") != pod.PREPARE,
            )
    prepare = next((c for c in init if c.get("name") == pod.PREPARE), None)
    prepare_term = _terminated(prepare) if prepare else None
    if prepare_term and prepare_term.get("exitCode") != 0:
        result = _result_from(prepare_term) or RunResult(
            success=False,
            prepared=False,
            error=f"preparing the worktree failed with exit code {prepare_term.get('exitCode')}",
        )
        return RunStatus(state="finished", result=result)
    runner = next((c for c in main if c.get("name") == pod.RUNNER), None)
    runner_term = _terminated(runner) if runner else None
    if runner_term:
        result = _result_from(runner_term) or RunResult(
            success=False,
            error=f"the runner ended with exit code {runner_term.get('exitCode')} and no result",
        )
        return RunStatus(state="finished", result=result)
    if status.get("phase") in ("Failed", "Succeeded"):
        return _failed(
            f"pod {name} ended ({status.get('reason') or status.get('phase')}: "
            f"{status.get('message') or 'no message'}) without a result",
            prepared=prepare_term is not None,
        )
    created = _parse_time(pod_json["metadata"].get("creationTimestamp")) or now
    started = prepare_term is not None
    if not started and (now - created).total_seconds() > pending_timeout:
        return _failed(
            f"pod {name} did not start within {pending_timeout:.0f} s: {_pending_reason(pod_json)}"
            " (check node capacity, OPTIO_K8S_NODE_SELECTOR and OPTIO_K8S_TOLERATIONS)",
            prepared=False,
        )
    progress = RunProgress(
        phase="running_agent" if started else "preparing",
        # Output reaches the API directly from the pod; stalls are judged by the agent's
        # silence there, not here (docs/deployment.md).
        last_output_at=now,
    )
    return RunStatus(state="running", progress=progress)


def _terminated(cs: Json | None) -> Json | None:
    if cs is None:
        return None
    return (cs.get("state") or {}).get("terminated")


def _pending_reason(pod_json: Json) -> str:
    for condition in (pod_json.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return f"{condition.get('reason') or condition['type']}: {condition['message']}"
    for cs in _statuses(pod_json, "initContainerStatuses") + _statuses(
        pod_json, "containerStatuses"
    ):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"{waiting['reason']}: {waiting.get('message') or ''}".strip()
    return f"phase {(pod_json.get('status') or {}).get('phase', 'Pending')}"


def finished_at(pod_json: Json) -> datetime | None:
    """When the pod's last container ended (None while any still runs)."""
    ends = [
        _parse_time(t.get("finishedAt"))
        for cs in _statuses(pod_json, "containerStatuses")
        if (t := _terminated(cs))
    ]
    if not ends or any(e is None for e in ends):
        return None
    return max(e for e in ends if e is not None)


def utc_now() -> datetime:
    return datetime.now(UTC)
