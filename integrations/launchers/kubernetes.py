"""Runs agent runs as Kubernetes pods, one per run, through the official client.

One watch per process (on the pods with our labels) keeps every run's pod in memory, so
poll() is a dictionary lookup however often activities call it and a run costs the API
server a handful of requests: create the pod, create its Secret, delete the pod (the
Secret goes with it through its owner reference). A worker that dies mid-run leaves the
pod running; the next worker's activity finds it by its labels and re-attaches instead of
creating a second pod (creating it again would fail with 409 in any case: the pod is named
after the run). Layout and security: k8s_pods.py, schemas/pod.py, docs/deployment.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from core.settings import Settings
from integrations.launchers.base import sandbox_name
from integrations.launchers.k8s_pods import (
    Json,
    PodConfig,
    finished_at,
    pod_manifest,
    pod_spec_for,
    read_status,
    secret_manifest,
    utc_now,
)
from schemas import pod
from schemas.runner import RunResult, RunSpec, RunStatus

log = logging.getLogger(__name__)

SELECTOR = f"{pod.MANAGED_BY}={pod.MANAGER}"
WATCH_SECONDS = 240  # the server ends a watch by then; we resume from the last version
SYNC_WAIT = 10.0
BACKOFF_MAX = 10.0
STOPPED = "Run stopped"


def api_client(settings: Settings) -> client.ApiClient:
    """A client from OPTIO_K8S_KUBECONFIG, else in-cluster credentials, else ~/.kube/config."""
    configuration = client.Configuration()
    if settings.k8s_kubeconfig is not None:
        config.load_kube_config(
            config_file=str(settings.k8s_kubeconfig), client_configuration=configuration
        )
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def pod_config(settings: Settings) -> PodConfig:
    return PodConfig(
        namespace=settings.k8s_namespace,
        image=settings.k8s_image,
        runner_command=list(settings.k8s_runner_command),
        image_pull_policy=settings.k8s_image_pull_policy,
        image_pull_secrets=list(settings.k8s_image_pull_secrets),
        resources=dict(settings.k8s_resources),
        node_selector=dict(settings.k8s_node_selector),
        tolerations=list(settings.k8s_tolerations),
        run_as_user=settings.k8s_run_as_user,
        grace_seconds=settings.k8s_termination_grace_seconds,
        agent_path=list(settings.k8s_agent_path),
    )


def _json(response: Any) -> Json:
    data: Json = json.loads(response.data)
    return data


def _is_live(pod_json: Json) -> bool:
    status = pod_json.get("status") or {}
    return status.get("phase") not in ("Succeeded", "Failed") and not pod_json["metadata"].get(
        "deletionTimestamp"
    )


class KubernetesLauncher:
    def __init__(
        self,
        *,
        api: client.ApiClient,
        config: PodConfig,
        repo_overrides: dict[str, Json] | None = None,
        pending_timeout: float = 300.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.config = config
        self.namespace = config.namespace
        self.repo_overrides = repo_overrides or {}
        self.pending_timeout = pending_timeout
        self.clock = clock
        self._pods: dict[str, Json] = {}  # run id -> the pod as last seen
        self._stopped: set[str] = set()  # runs this process stopped: their result is ours
        self._deleting: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._synced = threading.Event()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._stream: watch.Watch | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KubernetesLauncher:
        return cls(
            api=api_client(settings),
            config=pod_config(settings),
            repo_overrides=settings.k8s_repo_overrides,
            pending_timeout=settings.k8s_pending_timeout_seconds,
        )

    # ---- the watch that keeps self._pods

    def warm(self) -> None:
        """Start the watch and wait for its first list."""
        self._ensure_watch()
        self._synced.wait(SYNC_WAIT)

    def close(self) -> None:
        self._closed.set()
        if self._stream is not None:
            self._stream.stop()

    def _ensure_watch(self) -> None:
        with self._lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch_loop, name="k8s-pod-watch", daemon=True
                )
                self._watcher.start()

    def _relist(self) -> str:
        body = _json(
            self.core.list_namespaced_pod(
                self.namespace, label_selector=SELECTOR, _preload_content=False
            )
        )
        pods = {p["metadata"]["labels"][pod.RUN_LABEL]: p for p in body.get("items") or []}
        with self._changed:
            self._pods = pods
            self._changed.notify_all()
        self._synced.set()
        return str(body["metadata"]["resourceVersion"])

    def _watch_loop(self) -> None:
        backoff = 0.5
        version: str | None = None
        while not self._closed.is_set():
            try:
                if version is None:
                    version = self._relist()
                self._stream = watch.Watch()
                for event in self._stream.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=SELECTOR,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    deserialize=False,
                ):
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] != "BOOKMARK":
                        self._apply(event["type"], obj)
                    if self._closed.is_set():
                        return
                backoff = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    # Our version is older than the server keeps: list afresh.
                    log.info("pod watch expired (410 Gone), listing again")
                    version = None
                    continue
                log.warning("pod watch failed: %s %s", exc.status, exc.reason)
                version = None
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                log.warning("pod watch interrupted: %r", exc)
                version = None
            self._closed.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _apply(self, kind: str, obj: Json) -> None:
        run_id = (obj["metadata"].get("labels") or {}).get(pod.RUN_LABEL)
        if not run_id:
            return
        with self._changed:
            if kind == "DELETED":
                self._pods.pop(run_id, None)
                self._deleting.discard(run_id)
            else:
                self._pods[run_id] = obj
            self._changed.notify_all()

    def _pod(self, run_id: str) -> Json | None:
        self._ensure_watch()
        if not self._synced.wait(SYNC_WAIT):
            raise RuntimeError("the Kubernetes API server did not answer the pod list")
        with self._lock:
            return self._pods.get(run_id)

    # ---- the Launcher protocol

    def attach(self, run_id: str) -> bool:
        return run_id in self._stopped or self._pod(run_id) is not None

    def launch(self, spec: RunSpec) -> None:
        """Create the run's pod and Secret unless the pod exists; idempotent."""
        if self._pod(spec.run_id) is not None:
            log.info("run %s: pod exists, re-attaching", spec.run_id)
            return
        self._stopped.discard(spec.run_id)
        config = self.config.for_repo(self.repo_overrides.get(spec.repo_url))
        pod_spec = pod_spec_for(spec, config)
        # Plain JSON bodies: the client sends dicts as they are (its models are typed).
        manifest: Any = pod_manifest(pod_spec, config)
        try:
            created = _json(
                self.core.create_namespaced_pod(self.namespace, manifest, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status == 409:  # another attempt created it a moment ago
                log.info("run %s: pod created by another attempt, re-attaching", spec.run_id)
                return
            raise
        with self._changed:
            self._pods.setdefault(spec.run_id, created)
        secret: Any = secret_manifest(pod_spec, config, owner=created)
        try:
            self.core.create_namespaced_secret(self.namespace, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise
        log.info("run %s: created pod %s", spec.run_id, created["metadata"]["name"])

    def poll(self, run_id: str) -> RunStatus:
        if run_id in self._stopped:
            return RunStatus(state="finished", result=RunResult(success=False, error=STOPPED))
        with self._lock:
            pod_json = self._pods.get(run_id)
        if pod_json is None:
            if not self._synced.is_set():
                return RunStatus(state="running")  # the first list is on its way
            return RunStatus(state="lost")
        status = read_status(pod_json, now=self.clock(), pending_timeout=self.pending_timeout)
        if status.result is not None and not status.result.success and _is_live(pod_json):
            # Stuck or broken (image, eviction, memory): free the node now, in the background.
            self._delete_soon(run_id, pod_json["metadata"]["name"])
        return status

    def stop(self, run_id: str, grace: float = 5.0) -> None:
        """Delete the run's pod (its containers get SIGTERM, then SIGKILL after `grace`)
        and wait until it is gone. Idempotent."""
        self._stopped.add(run_id)
        self._delete(sandbox_name(run_id), grace=grace)
        deadline = time.monotonic() + grace + 5.0
        with self._changed:
            while run_id in self._pods and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())

    def stop_all(self, grace: float = 3.0) -> int:
        with self._lock:
            live = [run_id for run_id, p in self._pods.items() if _is_live(p)]
        for run_id in live:
            self._stopped.add(run_id)
            self._delete(sandbox_name(run_id), grace=grace)
        return len(live)

    def sweep(self, *, older_than_seconds: float) -> int:
        """Delete finished pods past `older_than_seconds`, failed ones still holding a node,
        and Secrets of ours whose pod is gone (orphans of a launch cut short)."""
        self._ensure_watch()
        self._synced.wait(SYNC_WAIT)
        now = self.clock()
        cutoff = now - timedelta(seconds=older_than_seconds)
        removed = 0
        with self._lock:
            pods = dict(self._pods)
        for pod_json in pods.values():
            live = _is_live(pod_json)
            status = read_status(pod_json, now=now, pending_timeout=self.pending_timeout)
            broken = live and status.result is not None and not status.result.success
            ended = finished_at(pod_json) or now
            if broken or ((not live or status.state == "finished") and ended < cutoff):
                self._delete(pod_json["metadata"]["name"], grace=0)
                removed += 1
        secrets = _json(
            self.core.list_namespaced_secret(
                self.namespace, label_selector=SELECTOR, _preload_content=False
            )
        )
        with self._lock:
            names = {p["metadata"]["name"] for p in self._pods.values()}
        for secret in secrets.get("items") or []:
            if secret["metadata"]["name"] not in names:
                with contextlib.suppress(ApiException):
                    self.core.delete_namespaced_secret(secret["metadata"]["name"], self.namespace)
                    removed += 1
        return removed

    # ---- helpers

    def _delete(self, name: str, *, grace: float) -> None:
        try:
            self.core.delete_namespaced_pod(
                name, self.namespace, grace_period_seconds=int(grace), _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _delete_soon(self, run_id: str, name: str) -> None:
        with self._lock:
            if run_id in self._deleting:
                return
            self._deleting.add(run_id)

        def delete() -> None:
            try:
                self._delete(name, grace=self.config.grace_seconds)
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                log.warning("could not delete pod %s: %r", name, exc)
                with self._lock:
                    self._deleting.discard(run_id)

        threading.Thread(target=delete, name=f"delete-{name}", daemon=True).start()

    def pods(self) -> Iterator[Json]:
        """Optio's pods as last seen (for the cluster endpoints)."""
        self._ensure_watch()
        self._synced.wait(SYNC_WAIT)
        with self._lock:
            yield from list(self._pods.values())
