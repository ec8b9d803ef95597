"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams.

The machine is shared and has two cores: the client must cost far less than the server
it measures, so there is no HTTP library here, only prebuilt request bytes and a
Content-Length reader. Like `ab -k`: N connections, each sending its next request as
soon as the previous answer is read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


class LoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str | None = None
    body: bytes = b""

    def raw(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Accept: */*"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Outcome:
    """Latencies (seconds) of the answered requests, in order, and the statuses seen."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    wall_s: float = 0.0
    last_body: bytes = b""

    @property
    def count(self) -> int:
        return len(self.latencies)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, headers = head.partition(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = None
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise LoadError("chunked answers are not expected from these routes")
    if length is None:
        raise LoadError(f"no Content-Length in the answer ({status_line!r})")
    return status, await reader.readexactly(length)


async def _connection(
    host: str, port: int, request: Request, count: int, outcome: Outcome, keep_body: bool
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    raw = request.raw(f"{host}:{port}")
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(raw)
            status, body = await _read_response(reader)
            outcome.latencies.append(time.perf_counter() - started)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            if keep_body:
                outcome.last_body = body
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    request: Request,
    *,
    total: int,
    concurrency: int = 1,
    keep_body: bool = False,
) -> Outcome:
    """`total` requests over `concurrency` keep-alive connections."""
    outcome = Outcome()
    shares = [
        total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)
    ]
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, n, outcome, keep_body) for n in shares if n)
    )
    outcome.wall_s = time.perf_counter() - started
    return outcome


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
