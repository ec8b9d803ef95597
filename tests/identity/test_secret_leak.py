"""A full task run after secrets were stored: their plaintext appears in no API response,
no log line, no file the run wrote and no Temporal history.

Agents do not read secrets from the store yet (activities will call
store.secrets.resolve_secret); this sweep guards every channel a value could leak through
on the way in (API, logs, exceptions) and the task machinery that runs next to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_state

PLAINTEXTS = {
    "GITHUB_TOKEN": "ghp_LEAKCANARY_global_5f2c9a",
    "ANTHROPIC_API_KEY": "sk-ant-LEAKCANARY-repo-77e1",
    "OPENAI_API_KEY": "sk-LEAKCANARY-user-90ab",
}


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def all_logs() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def hits(text: str) -> int:
    return sum(text.count(value) for value in PLAINTEXTS.values())


@pytest.mark.timeout(300)
async def test_no_secret_plaintext_anywhere_after_a_task_run(
    optio: Optio, make_repo: Callable[..., Path], all_logs: Everything
) -> None:
    responses: list[httpx.Response] = []

    async def call(method: str, url: str, **kw: Any) -> httpx.Response:
        response = await optio.client.request(method, url, **kw)
        responses.append(response)
        return response

    repo = make_repo()
    created = await call("POST", "/api/repos", json={"repoUrl": str(repo)})
    repo_url = created.json()["repo"]["repoUrl"]
    scopes = {"GITHUB_TOKEN": None, "ANTHROPIC_API_KEY": repo_url, "OPENAI_API_KEY": "user"}
    for name, value in PLAINTEXTS.items():
        body = {"name": name, "value": value, **({"scope": scopes[name]} if scopes[name] else {})}
        assert (await call("POST", "/api/secrets", json=body)).status_code == 201
    # A bad request carrying a value must not echo it either.
    await call(
        "POST", "/api/secrets", json={"name": "bad name", "value": PLAINTEXTS["GITHUB_TOKEN"]}
    )

    task = await create_task(optio.client, repo, "echo hello > hello.txt", title="leak sweep")
    done = await wait_for_state(optio.client, task["id"], "pr_opened", "completed", "failed")
    assert done["task"]["state"] in ("pr_opened", "completed"), done
    for url in (
        "/api/secrets",
        f"/api/tasks/{task['id']}",
        f"/api/tasks/{task['id']}/events",
        f"/api/tasks/{task['id']}/logs",
        "/api/tasks",
        "/api/auth/status",
        "/api/auth/usage",
        "/api/setup/status",
    ):
        assert (await call("GET", url)).status_code == 200, url

    api_hits = sum(hits(r.text) for r in responses)
    log_hits = sum(hits(line) for line in all_logs.lines)
    file_hits = sum(
        hits(path.read_text(errors="replace"))
        for path in optio.settings.data_dir.rglob("*")
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm")
    )
    histories = 0
    history_hits = 0
    query = f"TaskQueue = '{optio.settings.task_queue}'"
    async for execution in optio.temporal.list_workflows(query):
        history = await optio.temporal.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        # Payloads are base64 in the JSON form: grep the raw protobuf bytes too.
        raw = b"".join(event.SerializeToString() for event in history.events)
        history_hits += hits(history.to_json()) + hits(raw.decode(errors="replace"))
        histories += 1
    print(
        f"\nsecret leak sweep: {len(responses)} API responses, {len(all_logs.lines)} log lines,"
        f" {histories} Temporal histories; hits: api={api_hits} logs={log_hits}"
        f" files={file_hits} histories={history_hits}"
    )
    assert histories >= 1 and len(all_logs.lines) > 0
    assert (api_hits, log_hits, file_hits, history_hits) == (0, 0, 0, 0)
