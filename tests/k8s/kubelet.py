"""A test kubelet (and scheduler) for one node, against the API server double.

It watches the pods, binds those whose nodeSelector and tolerations fit its node, and
plays each pod as a real node would: an image it "cannot pull" goes ErrImagePull ->
ImagePullBackOff; env from secretKeyRef waits for the Secret (CreateContainerConfigError
meanwhile); emptyDir volumes (with subPath and readOnly) become directories; init
containers run one after the other, then the containers together, each as a sandboxed
local process (integrations/sandbox.py, bubblewrap) with the pod's mounts, env, working
dir and a kubelet-owned /dev/termination-log. It reports phases, container states, exit
codes and termination messages through pods/status, writes each container's output to a
log file the API server double serves as pods/log, honours graceful deletion (SIGTERM,
then SIGKILL after the grace period, then the final delete) and can evict a pod or
OOM-kill a container on request. The container "image" is this checkout and its
virtualenv (bound read-only), which is what the agent image holds.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from integrations.sandbox import Mount, mounted_command

Json = dict[str, Any]
log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
USER_AGENT = "test-kubelet/1.0"


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodRunner:
    """One pod on the node: its containers' processes and the status reported for it."""

    def __init__(self, kubelet: Kubelet, pod: Json) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.name = pod["metadata"]["name"]
        self.namespace = pod["metadata"]["namespace"]
        self.root = kubelet.root / pod["metadata"]["uid"]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.statuses: dict[str, Json] = {}
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.started = time.time()
        self.deleting = threading.Event()
        self.evicted = False
        self.oom: set[str] = set()
        self.lock = threading.Lock()

    # ---- reporting

    def _container_status(self, c: Json, state: Json, *, ready: bool = False) -> Json:
        status = {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
        }
        self.statuses[c["name"]] = status
        return status

    def report(self) -> None:
        spec = self.pod["spec"]
        inits = [
            self.statuses[c["name"]]
            for c in spec.get("initContainers") or []
            if c["name"] in self.statuses
        ]
        mains = [self.statuses[c["name"]] for c in spec["containers"] if c["name"] in self.statuses]
        status: Json = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": iso(self.started),
            "qosClass": "Burstable" if spec["containers"][0].get("resources") else "BestEffort",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(self.started)}
            ],
            "initContainerStatuses": inits,
            "containerStatuses": mains,
        }
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        with contextlib.suppress(ApiException):
            self.kubelet.core.patch_namespaced_pod_status(
                self.name, self.namespace, {"status": status}
            )

    # ---- running

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s", self.name)
        finally:
            self.deleting.wait()
            self._kill_all(int(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0))
            with contextlib.suppress(ApiException):
                self.kubelet.core.delete_namespaced_pod(
                    self.name, self.namespace, grace_period_seconds=0
                )
            # The logs stay for a test to read; the volumes go, as a node frees them.
            shutil.rmtree(self.root / "volumes", ignore_errors=True)
            self.kubelet.forget(self)

    def _run(self) -> None:
        spec = self.pod["spec"]
        containers = [*(spec.get("initContainers") or []), *spec["containers"]]
        for c in containers:
            self._container_status(c, {"waiting": {"reason": "PodInitializing"}})
        self.report()
        image = next(
            (c["image"] for c in containers if c["image"] in self.kubelet.unpullable), None
        )
        if image is not None:
            self._image_pull_failure(image, containers)
            return
        env_by_container = self._resolve_env(containers)
        if env_by_container is None:
            return
        for c in spec.get("initContainers") or []:
            code = self._start(c, env_by_container[c["name"]])
            if code is None or self.deleting.is_set():
                return
            if code != 0:
                self._end("Failed")
                return
        self.phase = "Running"
        for c in spec["containers"]:
            self._start(c, env_by_container[c["name"]], wait=False)
        self.report()
        waits = [threading.Thread(target=self._wait, args=(c,)) for c in spec["containers"]]
        for t in waits:
            t.start()
        for t in waits:
            t.join()
        if self.evicted:
            return
        codes = [
            self.statuses[c["name"]]["state"]["terminated"]["exitCode"] for c in spec["containers"]
        ]
        self._end("Succeeded" if all(code == 0 for code in codes) else "Failed")

    def _end(self, phase: str) -> None:
        if not self.evicted:
            self.phase = phase
            self.report()

    def _image_pull_failure(self, image: str, containers: list[Json]) -> None:
        message = (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
            "not found"
        )
        for reason in ("ErrImagePull", "ImagePullBackOff"):
            for c in containers:
                self._container_status(c, {"waiting": {"reason": reason, "message": message}})
            self.report()
            self.kubelet.event(self.pod, "Failed", f'Failed to pull image "{image}": {message}')
            if self.deleting.wait(0.2):
                return

    def _resolve_env(self, containers: list[Json]) -> dict[str, dict[str, str]] | None:
        resolved: dict[str, dict[str, str]] = {}
        deadline = time.time() + 30
        for c in containers:
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": "/tmp",
                "PYTHONPATH": str(PROJECT_ROOT),
            }
            for var in c.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref is None:
                    env[var["name"]] = var.get("value", "")
                    continue
                while True:
                    try:
                        secret = self.kubelet.core.read_namespaced_secret(
                            ref["name"], self.namespace
                        )
                        env[var["name"]] = base64.b64decode(secret.data[ref["key"]]).decode()
                        break
                    except ApiException:
                        message = f'secret "{ref["name"]}" not found'
                        self._container_status(
                            c,
                            {
                                "waiting": {
                                    "reason": "CreateContainerConfigError",
                                    "message": message,
                                }
                            },
                        )
                        self.report()
                        if time.time() > deadline or self.deleting.wait(0.2):
                            return None
            resolved[c["name"]] = env
        return resolved

    def _mounts(self, c: Json) -> list[Mount]:
        # The "image": this checkout, its virtualenv and the interpreter it was made from.
        mounts = [Mount(PROJECT_ROOT, str(PROJECT_ROOT), read_only=True)]
        base = Path(sys.base_prefix)
        if not base.is_relative_to("/usr"):
            mounts.append(Mount(base, str(base), read_only=True))
        mounts += [Mount(p, str(p)) for p in self.kubelet.network_paths]
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            if "emptyDir" not in volumes[m["name"]]:
                raise ValueError(f"volume {m['name']}: only emptyDir is played by this kubelet")
            source = self.root / "volumes" / m["name"]
            if m.get("subPath"):
                source = source / m["subPath"]
            if not source.exists():  # the kubelet makes a missing subPath a directory
                source.mkdir(parents=True)
            mounts.append(Mount(source, m["mountPath"], read_only=bool(m.get("readOnly"))))
        term = self.root / "termination" / c["name"]
        term.parent.mkdir(parents=True, exist_ok=True)
        term.touch()
        mounts.append(Mount(term, c.get("terminationMessagePath") or "/dev/termination-log"))
        return mounts

    def _start(self, c: Json, env: dict[str, str], *, wait: bool = True) -> int | None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        argv = [*(c.get("command") or []), *(c.get("args") or [])]
        command = mounted_command(
            argv,
            mounts=self._mounts(c),
            workdir=c.get("workingDir") or "/",
            uid=int(self.pod["spec"].get("securityContext", {}).get("runAsUser") or 1000),
            new_session=False,
        )
        with open(logs / f"{c['name']}.log", "ab") as out:
            proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self.lock:
            self.procs[c["name"]] = proc
        self._container_status(c, {"running": {"startedAt": iso()}}, ready=True)
        self.report()
        if not wait:
            return None
        self._wait(c)
        return int(self.statuses[c["name"]]["state"]["terminated"]["exitCode"])

    def _wait(self, c: Json) -> None:
        proc = self.procs[c["name"]]
        code = proc.wait()
        if code < 0:
            code = 128 - code
        message = (self.root / "termination" / c["name"]).read_text()[:4096]
        reason = "OOMKilled" if c["name"] in self.oom else ("Completed" if code == 0 else "Error")
        terminated: Json = {
            "exitCode": code,
            "reason": reason,
            "startedAt": self.statuses[c["name"]]["state"]
            .get("running", {})
            .get("startedAt", iso()),
            "finishedAt": iso(),
        }
        if message:
            terminated["message"] = message
        self._container_status(c, {"terminated": terminated})
        self.report()

    def _kill_all(self, grace: int) -> None:
        with self.lock:
            procs = [p for p in self.procs.values() if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + grace
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.05)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def evict(self) -> None:
        self.evicted = True
        self._kill_all(0)
        self.phase, self.reason = "Failed", "Evicted"
        self.message = (
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Mi."
        )
        time.sleep(0.2)  # the containers' own last reports land first
        self.report()

    def oom_kill(self, container: str) -> None:
        self.oom.add(container)
        with self.lock:
            proc = self.procs[container]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


class Kubelet:
    def __init__(
        self,
        *,
        api: client.ApiClient,
        root: Path,
        namespace: str,
        node: str = "node-1",
        labels: dict[str, str] | None = None,
        network_paths: list[Path] | None = None,
    ) -> None:
        api.user_agent = USER_AGENT
        # Plain JSON bodies throughout: the client sends dicts as they are.
        self.core: Any = client.CoreV1Api(api)
        self.root = root
        self.namespace = namespace
        self.node = node
        self.labels = {
            "kubernetes.io/hostname": node,
            "kubernetes.io/os": "linux",
            **(labels or {}),
        }
        self.unpullable: set[str] = set()
        # Host paths every container sees at the same place: what pods would reach over
        # the network (a git server), which a process on this machine reaches as files.
        self.network_paths = list(network_paths or [])
        self.pods: dict[str, PodRunner] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-kubelet", daemon=True)
        self._watch: watch.Watch | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        cpus = str(os.cpu_count() or 1)
        self.core.create_node(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": self.node, "labels": self.labels},
                "status": {
                    "capacity": {"cpu": cpus, "memory": "24Gi", "pods": "110"},
                    "allocatable": {"cpu": cpus, "memory": "23Gi", "pods": "110"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                        },
                        {
                            "type": "MemoryPressure",
                            "status": "False",
                            "reason": "KubeletHasSufficientMemory",
                        },
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.31.0-test",
                        "kubeProxyVersion": "v1.31.0-test",
                        "osImage": "test kubelet (bubblewrap)",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "bwrap://0.8.0",
                        "kernelVersion": os.uname().release,
                        "machineID": "test",
                        "systemUUID": "test",
                        "bootID": "test",
                    },
                },
            }
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        for runner in list(self.pods.values()):
            runner.deleting.set()
        self._thread.join(10)

    def forget(self, runner: PodRunner) -> None:
        with self.lock:
            self.pods.pop(runner.name, None)

    def log_path(self, namespace: str, name: str, container: str) -> Path | None:
        with self.lock:
            runner = self.pods.get(name)
        return runner.root / "logs" / f"{container}.log" if runner else None

    def event(self, pod: Json, reason: str, message: str) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_event(
                meta["namespace"],
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"generateName": meta["name"] + "."},
                    "involvedObject": {
                        "kind": "Pod",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "namespace": meta["namespace"],
                    },
                    "reason": reason,
                    "message": message,
                    "type": "Warning",
                    "source": {"component": "kubelet", "host": self.node},
                    "firstTimestamp": iso(),
                    "lastTimestamp": iso(),
                    "count": 1,
                },
            )

    def _fits(self, pod: Json) -> str | None:
        selector = pod["spec"].get("nodeSelector") or {}
        if any(self.labels.get(k) != v for k, v in selector.items()):
            return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    deserialize=False,
                    timeout_seconds=60,
                ):
                    self._handle(event["type"], event["object"])
                    if self._stop.is_set():
                        return
            except Exception:
                log.exception("kubelet watch")
                self._stop.wait(0.2)

    def _handle(self, kind: str, pod: Json) -> None:
        name = pod["metadata"]["name"]
        with self.lock:
            runner = self.pods.get(name)
        if kind == "DELETED":
            if runner:
                runner.deleting.set()
            return
        if runner is not None:
            if pod["metadata"].get("deletionTimestamp"):
                runner.pod = pod
                runner.deleting.set()
            return
        if pod["spec"].get("nodeName") not in (None, self.node):
            return
        if pod["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        if not pod["spec"].get("nodeName"):
            unfit = self._fits(pod)
            if unfit is not None:
                if not (pod.get("status") or {}).get("conditions"):
                    with contextlib.suppress(ApiException):
                        self.core.patch_namespaced_pod_status(
                            name,
                            self.namespace,
                            {
                                "status": {
                                    "phase": "Pending",
                                    "conditions": [
                                        {
                                            "type": "PodScheduled",
                                            "status": "False",
                                            "reason": "Unschedulable",
                                            "message": unfit,
                                        }
                                    ],
                                }
                            },
                        )
                return
            try:
                self.core.create_namespaced_pod_binding(
                    name,
                    self.namespace,
                    {
                        "apiVersion": "v1",
                        "kind": "Binding",
                        "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
                    },
                    _preload_content=False,
                )
            except ApiException:
                return
            pod["spec"]["nodeName"] = self.node
        runner = PodRunner(self, pod)
        with self.lock:
            self.pods[name] = runner
        threading.Thread(target=runner.run, name=f"pod-{name}", daemon=True).start()

    # ---- what a test does to the node

    def wait_running(self, name: str, container: str, timeout: float = 30) -> PodRunner:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                runner = self.pods.get(name)
            if runner is not None and container in runner.procs:
                return runner
            time.sleep(0.02)
        raise TimeoutError(f"{container} of {name} did not start")

    def evict(self, name: str) -> None:
        self.pods[name].evict()

    def oom_kill(self, name: str, container: str) -> None:
        self.pods[name].oom_kill(container)
