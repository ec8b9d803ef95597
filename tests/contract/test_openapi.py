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

from openapi_spec_validator import validate

from api.main import create_app
from tests.conftest import Optio

BIN = Path(sys.executable).parent
HOOKS = "tests.contract.schemathesis_hooks"
# The whole run fits a CI budget: this many seconds per database.
FUZZ_SECONDS = int(os.environ.get("OPTIO_FUZZ_SECONDS", "60"))
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Ends the caller's own credential: the rest of the run would only see 401s.
EXCLUDED_PATHS = ["/api/auth/logout"]


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
                if code.startswith("4") or code.startswith("5"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (path, code)
    assert no_errors == []


async def test_fuzz_the_running_stack(api_only: Optio, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{api_only.settings.api_port}"
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps((await api_only.client.get("/openapi.json")).json()))
    args = [
        "run", str(spec), "--url", base,
        "--header", f"Authorization: Bearer {api_only.token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-time", str(FUZZ_SECONDS),
        "--max-redirects", "0",
        "--request-timeout", "30",
        "--workers", "1",
        "--seed", os.environ.get("OPTIO_FUZZ_SEED", "18"),
        "--no-color",
        "--report", "ndjson", "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    for path in EXCLUDED_PATHS:
        args += ["--exclude-path", path]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS}
    process = await asyncio.create_subprocess_exec(
        str(BIN / "schemathesis"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=FUZZ_SECONDS * 4 + 120)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20000:]
