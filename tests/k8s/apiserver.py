"""A Kubernetes API server double: core/v1 pods, secrets, events and nodes over real HTTP.

It follows the documented API where Optio and the test kubelet touch it: create (409
AlreadyExists), get / delete (404 NotFound) with `Status` bodies as the real server sends
them; lists with labelSelector / fieldSelector and a resourceVersion; watches that resume
from a resourceVersion, start with ADDED events for resourceVersion "" / "0", end after
timeoutSeconds, and answer a version older than the kept history with an ERROR event
carrying a 410 Expired Status (what the real server does for a watch); graceful pod
deletion (deletionTimestamp, then the kubelet's final delete) and garbage collection of
objects owned by a deleted pod; pods/binding; pods/status; pods/log with container,
tailLines and follow (read from the files the kubelet writes, as the real server proxies
to the kubelet). metrics.k8s.io is not installed (404), as on a bare cluster.

Every request is counted by its User-Agent so benchmarks can tell Optio's from the
kubelet's.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Json = dict[str, Any]
KINDS = {"pods": "Pod", "secrets": "Secret", "events": "Event", "nodes": "Node"}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
HISTORY = 10_000


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, **details: Any) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def matches(obj: Json, label_selector: str | None, field_selector: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.strip() not in labels:
            return False
    for term in filter(None, (field_selector or "").split(",")):
        key, value = term.replace("==", "=").split("=", 1)
        current: Any = obj
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (current or "") != value:
            return False
    return True


class ApiServerDouble:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Json] = {}  # (kind, namespace, name)
        self.version = 0
        self.history: collections.deque[tuple[int, str, str, Json]] = collections.deque(
            maxlen=HISTORY
        )
        self.requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        # (namespace, pod, container) -> the kubelet's log file of that container
        self.log_source: Callable[[str, str, str], Path | None] = lambda *_: None
        self._changed: asyncio.Condition | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(routes=self._routes())
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._counted, log_level="warning", lifespan="off", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def serve() -> None:
            async def main() -> None:
                self.loop = asyncio.get_running_loop()
                self._changed = asyncio.Condition()
                ready.set()
                assert self._server is not None
                await self._server.serve(sockets=[sock])

            asyncio.run(main())

        self._thread = threading.Thread(target=serve, name="apiserver-double", daemon=True)
        self._thread.start()
        ready.wait(10)
        while not self._server.started:
            threading.Event().wait(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "double", "cluster": {"server": self.url}}],
                    "users": [{"name": "optio", "user": {"token": "test"}}],
                    "contexts": [
                        {"name": "double", "context": {"cluster": "double", "user": "optio"}}
                    ],
                    "current-context": "double",
                }
            )
        )
        return path

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop (tests changing state directly)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self._call(fn), self.loop).result(10)

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older versions get 410."""
        self.call(self.history.clear)

    def count(self, agent: str | None = None) -> int:
        return sum(n for (ua, _, _), n in self.requests.items() if agent is None or agent in ua)

    # ---- storage

    async def _counted(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            agent = headers.get(b"user-agent", b"").decode()
            self.requests[(agent, scope["method"], scope["path"])] += 1
        await self.app(scope, receive, send)

    def _record(self, kind: str, event: str, obj: Json) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.history.append((self.version, kind, event, copy.deepcopy(obj)))
        assert self._changed is not None

        async def notify() -> None:
            assert self._changed is not None
            async with self._changed:
                self._changed.notify_all()

        asyncio.ensure_future(notify())

    def _put(self, kind: str, obj: Json, event: str) -> Json:
        meta = obj["metadata"]
        self.objects[(kind, meta.get("namespace", ""), meta["name"])] = obj
        self._record(kind, event, obj)
        return obj

    def _remove(self, kind: str, namespace: str, name: str) -> Json | None:
        obj = self.objects.pop((kind, namespace, name), None)
        if obj is None:
            return None
        self._record(kind, "DELETED", obj)
        if kind == "pods":  # garbage collection of what the pod owns
            uid = obj["metadata"]["uid"]
            for (k, ns, n), other in list(self.objects.items()):
                owners = other["metadata"].get("ownerReferences") or []
                if ns == namespace and any(o.get("uid") == uid for o in owners):
                    self._remove(k, ns, n)
        return obj

    # ---- routes

    def _routes(self) -> list[Route]:
        ns = "/api/v1/namespaces/{namespace}/{kind}"
        return [
            Route("/api/v1/nodes", self.collection, methods=["GET", "POST"]),
            Route("/api/v1/nodes/{name}", self.item, methods=["GET", "DELETE", "PATCH", "PUT"]),
            Route("/api/v1/nodes/{name}/status", self.status, methods=["PATCH", "PUT"]),
            Route(ns, self.collection, methods=["GET", "POST"]),
            Route(ns + "/{name}", self.item, methods=["GET", "DELETE", "PATCH", "PUT"]),
            Route(ns + "/{name}/status", self.status, methods=["PATCH", "PUT"]),
            Route(ns + "/{name}/binding", self.binding, methods=["POST"]),
            Route(ns + "/{name}/log", self.log, methods=["GET"]),
        ]

    @staticmethod
    def _where(request: Request) -> tuple[str, str]:
        kind = request.path_params.get("kind", "nodes")
        return kind, request.path_params.get("namespace", "")

    async def collection(self, request: Request) -> Response:
        kind, namespace = self._where(request)
        if kind not in KINDS:
            return status_body(404, "NotFound", "the server could not find the requested resource")
        if request.method == "POST":
            return self._create(kind, namespace, await request.json())
        q = request.query_params
        if q.get("watch") in ("true", "1"):
            return await self._watch(kind, namespace, request)
        items = [
            copy.deepcopy(o)
            for (k, n, _), o in sorted(self.objects.items())
            if k == kind
            and (not namespace or n == namespace)
            and matches(o, q.get("labelSelector"), q.get("fieldSelector"))
        ]
        return JSONResponse(
            {
                "kind": f"{KINDS[kind]}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": items,
            }
        )

    def _create(self, kind: str, namespace: str, body: Json) -> Response:
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or ""
        if meta.get("generateName") and not name:
            name = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["name"] = name
        if not NAME.match(name):
            return status_body(
                422,
                "Invalid",
                f'{KINDS[kind]} "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.'",
                name=name,
                kind=kind,
            )
        if kind == "pods" and not (body.get("spec") or {}).get("containers"):
            return status_body(
                422,
                "Invalid",
                f'Pod "{name}" is invalid: spec.containers: Required value',
                name=name,
                kind=kind,
            )
        if (kind, namespace, name) in self.objects:
            return status_body(
                409, "AlreadyExists", f'{kind} "{name}" already exists', name=name, kind=kind
            )
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        if kind == "pods":
            body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self._put(kind, body, "ADDED")
        return JSONResponse(copy.deepcopy(body), status_code=201)

    def _not_found(self, kind: str, name: str) -> Response:
        return status_body(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind)

    async def item(self, request: Request) -> Response:
        kind, namespace = self._where(request)
        name = request.path_params["name"]
        obj = self.objects.get((kind, namespace, name))
        if kind not in KINDS or obj is None:
            return self._not_found(kind, name)
        if request.method == "GET":
            return JSONResponse(copy.deepcopy(obj))
        if request.method == "DELETE":
            return await self._delete(kind, namespace, obj, request)
        body = await request.json()
        if request.method == "PUT":
            body["metadata"]["uid"] = obj["metadata"]["uid"]
            obj = body
        else:
            obj = merge_patch(obj, body)
        return JSONResponse(copy.deepcopy(self._put(kind, obj, "MODIFIED")))

    async def _delete(self, kind: str, namespace: str, obj: Json, request: Request) -> Response:
        grace_param = request.query_params.get("gracePeriodSeconds")
        body: Json = {}
        raw = await request.body()
        if raw:
            body = json.loads(raw)
        grace = body.get("gracePeriodSeconds", grace_param)
        if grace is None and kind == "pods":
            grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
        grace = int(grace or 0)
        meta = obj["metadata"]
        scheduled = kind == "pods" and obj["spec"].get("nodeName")
        ended = kind == "pods" and obj["status"].get("phase") in ("Succeeded", "Failed")
        if scheduled and grace > 0 and not ended:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_iso()
                meta["deletionGracePeriodSeconds"] = grace
                self._put(kind, obj, "MODIFIED")
            return JSONResponse(copy.deepcopy(obj))
        self._remove(kind, namespace, meta["name"])
        return JSONResponse(copy.deepcopy(obj))

    async def status(self, request: Request) -> Response:
        kind, namespace = self._where(request)
        name = request.path_params["name"]
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            return self._not_found(kind, name)
        body = await request.json()
        # The test kubelet sends the whole status each time: it replaces the old one.
        obj["status"] = body.get("status", {})
        return JSONResponse(copy.deepcopy(self._put(kind, obj, "MODIFIED")))

    async def binding(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        obj = self.objects.get(("pods", namespace, name))
        if obj is None:
            return self._not_found("pods", name)
        if obj["spec"].get("nodeName"):
            return status_body(
                409,
                "Conflict",
                f'pod {name} is already assigned to node "{obj["spec"]["nodeName"]}"',
            )
        body = await request.json()
        obj["spec"]["nodeName"] = body["target"]["name"]
        self._put("pods", obj, "MODIFIED")
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        return JSONResponse({**body, "code": 201}, status_code=201)

    async def _watch(self, kind: str, namespace: str, request: Request) -> Response:
        q = request.query_params
        since = q.get("resourceVersion") or "0"
        timeout = float(q.get("timeoutSeconds") or 1800)
        labels, fields = q.get("labelSelector"), q.get("fieldSelector")
        start = int(since)
        oldest = self.history[0][0] if self.history else self.version + 1
        expired = start != 0 and start < self.version and start + 1 < oldest
        initial = (
            [
                copy.deepcopy(o)
                for (k, n, _), o in sorted(self.objects.items())
                if k == kind and (not namespace or n == namespace) and matches(o, labels, fields)
            ]
            if start == 0
            else []
        )
        cursor = self.version if start == 0 else start

        def wanted(k: str, obj: Json) -> bool:
            n = obj["metadata"].get("namespace", "")
            return k == kind and (not namespace or n == namespace) and matches(obj, labels, fields)

        async def events() -> AsyncIterator[bytes]:
            nonlocal cursor
            if expired:
                error = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {start} ({oldest - 1})",
                    "reason": "Expired",
                    "code": 410,
                }
                yield (json.dumps({"type": "ERROR", "object": error}) + "\n").encode()
                return
            for obj in initial:
                yield (json.dumps({"type": "ADDED", "object": obj}) + "\n").encode()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            assert self._changed is not None
            while loop.time() < deadline:
                for version, k, event, obj in list(self.history):
                    if version > cursor:
                        cursor = version
                        if wanted(k, obj):
                            yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
                if await request.is_disconnected():
                    return
                async with self._changed:
                    try:
                        await asyncio.wait_for(
                            self._changed.wait(), min(1.0, max(0.0, deadline - loop.time()))
                        )
                    except TimeoutError:
                        pass

        return StreamingResponse(events(), media_type="application/json")

    async def log(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        obj = self.objects.get(("pods", namespace, name))
        if obj is None:
            return self._not_found("pods", name)
        q = request.query_params
        containers = [c["name"] for c in obj["spec"]["containers"]]
        inits = [c["name"] for c in obj["spec"].get("initContainers") or []]
        container = q.get("container")
        if container is None:
            if len(containers) != 1:
                return status_body(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}] or one of the init containers: [{' '.join(inits)}]",
                )
            container = containers[0]
        if container not in containers + inits:
            return status_body(
                400, "BadRequest", f"container {container} is not valid for pod {name}"
            )
        path = self.log_source(namespace, name, container)
        if path is None or not path.exists():
            return status_body(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: PodInitializing',
            )
        tail = q.get("tailLines")
        follow = q.get("follow") in ("true", "1")
        lines = path.read_bytes().splitlines(keepends=True)
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not follow:
            return Response(b"".join(lines), media_type="text/plain")

        async def stream() -> AsyncIterator[bytes]:
            offset = path.stat().st_size
            yield b"".join(lines)
            while True:
                size = path.stat().st_size
                if size > offset:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read(size - offset)
                    offset = size
                    yield chunk
                    continue
                if (
                    self._container_done(namespace, name, container)
                    or await request.is_disconnected()
                ):
                    return
                await asyncio.sleep(0.05)

        return StreamingResponse(stream(), media_type="text/plain")

    def _container_done(self, namespace: str, name: str, container: str) -> bool:
        obj = self.objects.get(("pods", namespace, name))
        if obj is None:
            return True
        status = obj.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (
            status.get("initContainerStatuses") or []
        ):
            if cs.get("name") == container:
                return "terminated" in (cs.get("state") or {})
        return False


def merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7386 JSON merge patch (what strategic merge does for the fields we patch)."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result
