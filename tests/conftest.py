"""Fixtures every test builds on: real Temporal, real SQLite and PostgreSQL, real git."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.settings import SEARCH_ATTRIBUTES, Settings
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade

# `--cpu-report FILE`: what each test costs in CPU, its processes included (docs/testing.md).
pytest_plugins = ["tests.cpu_report"]

BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "OPTIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


# Every test's HTTP clients share one TLS context: httpx builds a new one, loading the
# system's CA bundle, for each client otherwise (tens of milliseconds, twice per test),
# though the clients only ever speak plain HTTP to loopback.
TLS = ssl.create_default_context()


# Ports a test hands to a server it starts later (`optio up`, uvicorn, a Temporal dev
# server) come from a band of this pytest process's own, below the kernel's ephemeral
# range. A port from `bind(0)` is ephemeral: between our closing it and the server
# binding it, another pytest process's `bind(0)`, or any outgoing connection, could be
# given the same one (with three processes, `optio up`'s Temporal lost its port that
# way). Nothing but this function hands out ports in these bands.
PORT_BAND_SIZE = 500
_PORT_BAND_START = 20000 + PORT_BAND_SIZE * int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
_next_port = itertools.count()


def free_port() -> int:
    for _ in range(PORT_BAND_SIZE):
        port = _PORT_BAND_START + next(_next_port) % PORT_BAND_SIZE
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # still held by a server of an earlier test
            return port
    raise RuntimeError(f"no free port in {_PORT_BAND_START}..+{PORT_BAND_SIZE}")


# ---- Temporal --------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        ip="127.0.0.1",
        port=free_port(),
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        # Every port the dev server opens comes from this process's band (see free_port).
        dev_server_extra_args=[
            "--log-level",
            "error",
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


def temporal_target(client: Client) -> str:
    return client.service_client.config.target_host


# ---- databases -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "optio.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


class PostgresDatabases:
    """Migrated PostgreSQL databases, one per test, copied from a template ahead of need.

    `CREATE DATABASE ... TEMPLATE` and `DROP DATABASE` each take about half a second: one
    thread of our own makes the next test's copy while the current test runs and drops
    finished ones behind it, so neither waits in a test's setup or teardown. One thread,
    because PostgreSQL refuses to copy a template that another connection is copying.
    """

    AHEAD = 2

    def __init__(self, admin_url: str, template: str) -> None:
        self.admin_url = admin_url
        self.template = template
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-databases")
        self._ready: deque[Future[str]] = deque()
        self._drops: list[Future[None]] = []
        for _ in range(self.AHEAD):
            self._ready.append(self._pool.submit(self._create))

    def _create(self) -> str:
        name = f"optio_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        """A fresh copy of the template, for one test only."""
        self._ready.append(self._pool.submit(self._create))
        return self._ready.popleft().result()

    def release(self, name: str) -> None:
        self._drops.append(self._pool.submit(self._drop, name))

    def close(self) -> None:
        """Drop the unused copies, wait for every drop (a failed one fails here)."""
        for ready in self._ready:
            self.release(ready.result())
        self._pool.shutdown(wait=True)
        for drop in self._drops:
            drop.result()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"optio_tpl_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(_with_db(admin, name))
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_URL, postgres_template)
    try:
        yield databases
    finally:
        databases.close()


def _with_db(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


ENGINES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engines(*names): run on these databases only; for tests whose subject is not the "
        "storage (docs/testing.md#one-engine-or-both)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the `database_url` variants an `engines` mark does not name."""
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        mark = item.get_closest_marker("engines")
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("database_url") if callspec is not None else None
        if mark is not None and not set(mark.args) <= set(ENGINES):
            raise pytest.UsageError(f"{item.nodeid}: unknown engine in {mark.args}")
        (left_out if mark and engine and engine not in mark.args else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(params=ENGINES)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated, empty database of its own for each test, on both engines."""
    if request.param == "sqlite":
        path = tmp_path / "optio.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        yield _with_db(POSTGRES_URL, name)
    finally:
        databases.release(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, temporal_client: Client) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        temporal_address=temporal_target(temporal_client),
        task_queue=f"optio-test-{uuid.uuid4().hex[:8]}",
        api_port=free_port(),
        encryption_key="0" * 64,
        pr_watch_interval_ms=200,
    )


# ---- the system under test -------------------------------------------------------------


class ApiServer:
    """The real app under uvicorn on loopback, stoppable and restartable on its port."""

    def __init__(self, settings: Settings, tracing: TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracing = tracing
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.settings, tracing=self.tracing),
                host="127.0.0.1",
                port=self.settings.api_port,
                log_level="warning",
                lifespan="on",
                # Longer than any pause in a test, so a pooled connection is never reused
                # at the moment the server closes it (an httpx ReadError otherwise).
                timeout_keep_alive=120,
            )
        )
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server, self._task = None, None


@dataclass
class Optio:
    settings: Settings
    client: httpx.AsyncClient
    anon: httpx.AsyncClient
    token: str
    workspace_id: str
    user_id: str
    temporal: Client
    server: ApiServer


@pytest.fixture
async def api_only(settings: Settings) -> AsyncIterator[Optio]:
    """The API served for real on loopback (runners reach it over HTTP), with the admin."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        admin = await bootstrap_local_admin(session)
    await engine.dispose()
    assert admin.token is not None
    server = ApiServer(settings)
    await server.start()
    base = f"http://127.0.0.1:{settings.api_port}"
    temporal = await Client.connect(settings.temporal_target)
    async with (
        httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {admin.token}"},
            timeout=30,
            verify=TLS,
        ) as client,
        httpx.AsyncClient(base_url=base, timeout=30, verify=TLS) as anon,
    ):
        yield Optio(
            settings=settings,
            client=client,
            anon=anon,
            token=admin.token,
            workspace_id=admin.workspace_id,
            user_id=admin.user_id,
            temporal=temporal,
            server=server,
        )
    await server.stop()


@pytest.fixture
async def optio(api_only: Optio) -> AsyncIterator[Optio]:
    """API plus a worker on a task queue of this test's own (and its own queue for the runs
    it holds, as `optio worker` polls)."""
    from worker.main import build_host_worker, build_worker

    engine = create_engine(api_only.settings.database_url_resolved)
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = build_worker(
            client=api_only.temporal,
            settings=api_only.settings,
            sessions=session_factory(engine),
            executor=executor,
            task_queue=api_only.settings.task_queue,
        )
        own = build_host_worker(
            client=api_only.temporal,
            settings=api_only.settings,
            sessions=session_factory(engine),
            executor=executor,
        )
        async with worker, own:
            yield api_only
            await cancel_open_workflows(api_only)
    await engine.dispose()
    stop_sandboxes(api_only.settings)


async def cancel_open_workflows(optio: Optio) -> None:
    """Leave no running workflow (or limiter) behind for the next test."""
    query = f"TaskQueue = '{optio.settings.task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in optio.temporal.list_workflows(query):
        try:
            await optio.temporal.get_workflow_handle(execution.id).terminate("test finished")
        except RPCError:
            pass  # it finished on its own meanwhile


def stop_sandboxes(settings: Settings) -> None:
    from integrations.launchers.local import LocalLauncher

    LocalLauncher(runs_root=settings.runs_dir).stop_all(grace=1.0)


# ---- git -------------------------------------------------------------------------------


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Throwaway git repositories: bare by default, like a forge's."""
    counter = iter(range(1000))

    def make(*, files: dict[str, str] | None = None, bare: bool = True) -> Path:
        n = next(counter)
        work = tmp_path / f"repo-src-{n}"
        work.mkdir()
        git("init", "-q", "-b", "main", cwd=work)
        for name, content in (files or {"README.md": "# test repo\n"}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(content)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "initial commit", cwd=work)
        if not bare:
            return work
        target = tmp_path / f"repo-{n}.git"
        git("clone", "-q", "--bare", str(work), str(target), cwd=tmp_path)
        return target

    return make
