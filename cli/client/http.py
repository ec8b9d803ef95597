"""The HTTP side: one httpx client per command, answers parsed into the schemas/ models,
errors turned into one line from the API's error envelope and an exit code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from cli.client.config import Target
from cli.client.exits import ClientError, Exit, for_status
from schemas.blueprints import BlueprintPublic, StandalonePublic
from schemas.errors import ErrorPublic
from schemas.tasks import TaskPublic

Model = TypeVar("Model", bound=BaseModel)
CONNECT_ATTEMPTS = 3


class Api:
    def __init__(self, target: Target, *, timeout: float = 60.0) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}", "User-Agent": "optio-cli"}
        if target.workspace:
            headers["X-Workspace-Id"] = target.workspace
        self._http = httpx.Client(base_url=target.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request; a refused connection is tried again (the request never left)."""
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                response = self._http.request(
                    method, path, json=json, params=_clean(params), headers=headers
                )
                break
            except httpx.ConnectError as exc:
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise unreachable(self.target, exc) from None
                time.sleep(0.5 * (attempt + 1))
            except httpx.TransportError as exc:
                raise unreachable(self.target, exc) from None
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def get(self, path: str, model: type[Model], **params: Any) -> tuple[Model, Any]:
        """The answer parsed into `model`, and the raw JSON (printed by --json)."""
        raw = self.call("GET", path, params=params).json()
        return parse(model, raw), raw

    def send(
        self,
        method: str,
        path: str,
        model: type[Model],
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Model, Any]:
        raw = self.call(method, path, json=json, headers=headers).json()
        return parse(model, raw), raw

    @contextmanager
    def stream(
        self, path: str, *, last_event_id: int | None, read_timeout: float | None = None
    ) -> Iterator[httpx.Response]:
        """An SSE response, open while the block runs; errors as for `call`."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        # No read timeout by default: the server sends a ping comment every 25 s when
        # idle, and a quiet task is no error. Connect errors surface at once.
        timeout = httpx.Timeout(30.0, read=read_timeout)
        try:
            with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                yield response
        except httpx.ConnectError as exc:
            raise unreachable(self.target, exc) from None


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in params.items() if v is not None} if params else None


def parse(model: type[Model], raw: Any) -> Model:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ClientError(
            f"the server's answer does not match {model.__name__} "
            f"(a different Optio version?): {exc.errors()[0]['msg']}"
        ) from None


def repo_task(task: TaskPublic | BlueprintPublic | StandalonePublic) -> TaskPublic:
    """The API answers any kind of task at /api/tasks/:id; the task commands need a repo
    task."""
    if not isinstance(task, TaskPublic):
        raise ClientError(
            f"{task.id} is a {task.type}, not a repo task (see `optio blueprint`)", Exit.USAGE
        )
    return task


def unreachable(target: Target, exc: Exception) -> ClientError:
    return ClientError(
        f"cannot reach {target.url} ({type(exc).__name__}: {exc}); is it running? "
        "(`optio login` or OPTIO_URL name the server)",
        Exit.UNREACHABLE,
    )


def api_error(response: httpx.Response) -> ClientError:
    """The envelope's message, with each field problem of a 400 on a line of its own."""
    status = response.status_code
    try:
        envelope = ErrorPublic.model_validate(response.json())
        message = envelope.error
        details = envelope.details
    except (ValueError, ValidationError):
        message = response.text.strip()[:300] or response.reason_phrase
        details = None
    lines = [f"{message} (HTTP {status})"]
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "field" in item:
                lines.append(f"  {item['field']}: {item.get('message', 'invalid')}")
    if status == 401:
        lines.append("  (the token was refused: `optio login` again, or check OPTIO_TOKEN)")
    return ClientError("\n".join(lines), for_status(status))
