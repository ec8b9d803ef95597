"""The OpenAPI document is a contract: it validates, and the running stack keeps it.

The fuzz run drives the real API (uvicorn, real Temporal, SQLite and PostgreSQL) with
Schemathesis for a bounded time: no 5xx, no response outside its declared schema, no
status code the document does not list, and the create -> read -> update -> delete
links followed where a resource has them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from api.main import create_app
from tests.conftest import Optio

BIN = Path(sys.executable).parent
HOOKS = "tests.contract.schemathesis_hooks"
# The whole run fits a CI budget: per database, the coverage phase (bounded, it ends by
# itself sooner on an idle machine), then this many seconds of fuzzing and as many of
# stateful sequences.
FUZZ_SECONDS = int(os.environ.get("OPTIO_FUZZ_SECONDS", "30"))
COVERAGE_SECONDS = 240
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
EXCLUDED_PATHS = [
    # Ends the caller's own credential: the rest of the run would only see 401s.
    "/api/auth/logout",
    # Runs a sync workflow to its end and answers its result: the stack under fuzz has
    # no worker (nothing a request asks for runs), so it would wait for ever. Its input
    # checks are covered by tests/tickets.
    "/api/tickets/sync",
]


def document() -> dict[str, Any]:
    return create_app().openapi()


def test_the_document_validates() -> None:
    validate(document())


def test_every_operation_declares_a_typed_success_and_its_errors() -> None:
    no_errors = []
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if not {"400", "503"} <= responses.keys():
                no_errors.append(f"{method.upper()} {path}")
            for code, response in responses.items():
                if (code.startswith("4") or code.startswith("5")) and path != "/api/health":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (path, code)
    assert no_errors == []


@pytest.mark.timeout(COVERAGE_SECONDS + FUZZ_SECONDS * 2 + 300)
async def test_fuzz_the_running_stack(api_only: Optio, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{api_only.settings.api_port}"
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps((await api_only.client.get("/openapi.json")).json()))
    common = [
        "--url", base,
        "--header", f"Authorization: Bearer {api_only.token}",
        "--checks", CHECKS,
        "--max-redirects", "0",
        "--continue-on-failure",
        "--request-timeout", "30",
        "--workers", "1",
        "--seed", os.environ.get("OPTIO_FUZZ_SEED", "18"),
        "--no-color",
    ]  # fmt: skip
    for path in EXCLUDED_PATHS:
        common += ["--exclude-path", path]
    # One run per phase, so each gets its share: the coverage phase is finite (the
    # boundaries of every schema, about half a minute); fuzzing and the stateful links
    # repeat until their time is spent.
    runs = [
        ["--phases", "examples,coverage", "--max-time", str(COVERAGE_SECONDS)],
        ["--phases", "fuzzing", "--max-time", str(FUZZ_SECONDS)],
        ["--phases", "stateful", "--max-time", str(FUZZ_SECONDS)],
    ]
    root = str(Path(__file__).resolve().parents[2])
    # Run in tmp_path: Schemathesis keeps a cache of its findings in the working directory.
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": root}
    failed = []
    for phases in runs:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "schemathesis"), "run", str(spec), *common, *phases,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
            cwd=tmp_path,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), timeout=COVERAGE_SECONDS + 120)
        text = output.decode(errors="replace")
        (tmp_path / f"schemathesis-{phases[1]}.txt").write_text(text)
        if process.returncode != 0:
            failed.append(text[-15000:])
    assert failed == [], "\n\n".join(failed)
