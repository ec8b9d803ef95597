"""The plain baseline of `python -m bench.api`: a bare ASGI app on the same server stack.

It answers each measured request with the very bytes our API answered it with, from
memory: no framework, no auth, no database, no serialisation. What is left is uvicorn
(httptools, uvloop) and the kernel, so ours/baseline says what our code costs per
request, in units of this machine: comparable across machines and across load.

    python -m bench.baseline_app PORT ANSWERS.json
ANSWERS.json: {"GET /api/tasks?limit=50": {"status": 200, "body": "..."}, ...}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import uvicorn

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def make_app(answers: dict[str, dict[str, Any]]) -> Any:
    table: dict[str, Answer] = {}
    for key, answer in answers.items():
        body = answer["body"].encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        table[key] = (int(answer["status"]), headers, body)
    missing: Answer = (404, [(b"content-length", b"0")], b"")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start
        more = True
        while more:  # read the request body (POST), as any app must
            message = await receive()
            more = message.get("more_body", False)
        query = scope["query_string"].decode()
        key = f"{scope['method']} {scope['path']}" + (f"?{query}" if query else "")
        status, headers, body = table.get(key, missing)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    app = make_app(json.loads(path.read_text()))
    # The options of `optio api` (cli/main.py): same loop, parser and keep-alive.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=75)


if __name__ == "__main__":
    main()
