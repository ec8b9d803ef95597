"""A minimal MCP server (stdio, newline-delimited JSON-RPC 2.0) for the real-agent tests.

It offers one tool, named after its TOKEN variable's value when that is the expected
secret (`docs_lookup_ok`) and `docs_lookup_missing_secret` otherwise: a CLI that lists
`docs_lookup_ok` to the model found the server where Optio put its config, started it,
and handed it the resolved secret of its env.
"""

from __future__ import annotations

import json
import os
import sys

EXPECTED_TOKEN = "s3cret-docs-token"
TOOL_OK = "docs_lookup_ok"


def answer(request: dict[str, object]) -> dict[str, object] | None:
    method, ident = request.get("method"), request.get("id")
    if ident is None:  # a notification
        return None
    params = request.get("params") if isinstance(request.get("params"), dict) else {}
    result: dict[str, object]
    if method == "initialize":
        version = (params or {}).get("protocolVersion", "2025-06-18")
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "docs", "version": "1.0.0"},
        }
    elif method == "tools/list":
        ok = os.environ.get("TOKEN") == EXPECTED_TOKEN
        name = TOOL_OK if ok else "docs_lookup_missing_secret"
        schema = {"type": "object", "properties": {"query": {"type": "string"}}}
        result = {"tools": [{"name": name, "description": "Look up docs", "inputSchema": schema}]}
    elif method in ("ping", "resources/list", "prompts/list"):
        result = {"resources": [], "prompts": []} if method != "ping" else {}
    else:
        error = {"code": -32601, "message": f"Method not found: {method}"}
        return {"jsonrpc": "2.0", "id": ident, "error": error}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
