"""Numbering, spooling and delivering log events to the control plane's ingest endpoint.

The agent must never wait on the network: emit() only appends to memory and to the
spool file, and a separate task posts batches in order, retrying with backoff while
the API is unreachable. The server dedups by seq, so re-sending a batch is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from integrations.tls import tls_context
from schemas.run_dir import SPOOL, atomic_write_text
from schemas.runner import LogBatch, LogEvent, LogType

log = logging.getLogger(__name__)

MAX_BATCH = 200
FLUSH_INTERVAL = 0.3  # lets a burst of lines travel as one request
BACKOFF_MIN = 0.5
BACKOFF_MAX = 5.0
REQUEST_TIMEOUT = 10.0

Outcome = Literal["ok", "retry", "drop"]
EventStream = Literal["stdout", "stderr", "system"]


class EventSink:
    def __init__(
        self, *, run_dir: Path, ingest_url: str, run_token: str, on_change: Callable[[], None]
    ) -> None:
        self._spool_path = run_dir / SPOOL
        self._url = ingest_url
        self._headers = {"Authorization": f"Bearer {run_token}", "Content-Type": "application/json"}
        self._on_change = on_change
        self._pending: list[LogEvent] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self.next_seq = 0
        self.delivered = 0

    def recover(self, *, min_next_seq: int) -> None:
        """Pick up a previous runner's undelivered events and continue its numbering.

        A relaunched run must not reuse seqs: the server would drop them as duplicates.
        """
        with contextlib.suppress(FileNotFoundError):
            for line in self._spool_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    self._pending.append(LogEvent.model_validate_json(line))
        last = max((e.seq for e in self._pending), default=-1)
        self.next_seq = max(min_next_seq, last + 1)
        self._rewrite_spool()
        if self._pending:
            self._wakeup.set()

    def emit(
        self,
        *,
        content: str,
        log_type: LogType = "text",
        stream: EventStream = "stdout",
        metadata: dict[str, Any] | None = None,
    ) -> LogEvent:
        event = LogEvent(
            seq=self.next_seq,
            timestamp=datetime.now(UTC),
            stream=stream,
            log_type=log_type,
            content=content,
            metadata=metadata or {},
        )
        self.next_seq += 1
        with open(self._spool_path, "a", encoding="utf-8") as fh:
            fh.write(event.model_dump_json(by_alias=True) + "\n")
        self._pending.append(event)
        self._wakeup.set()
        return event

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Deliver until close() was called and nothing is left; cancel to give up."""
        backoff = BACKOFF_MIN
        # trust_env=False: the ingest endpoint is our own control plane, reached
        # directly; a proxy configured for the agent must not swallow our logs.
        async with httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT, trust_env=False, verify=tls_context()
        ) as client:
            while True:
                if not self._pending:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if len(self._pending) < MAX_BATCH and not self._closed:
                    await asyncio.sleep(FLUSH_INTERVAL)
                batch = self._pending[:MAX_BATCH]
                outcome = await self._send(client, batch, failing=backoff > BACKOFF_MIN)
                if outcome == "retry":
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                backoff = BACKOFF_MIN
                del self._pending[: len(batch)]
                if outcome == "ok":
                    self.delivered += len(batch)
                # Progress first: it records next_seq before the spool forgets those events.
                self._on_change()
                self._rewrite_spool()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def _send(
        self, client: httpx.AsyncClient, batch: list[LogEvent], *, failing: bool
    ) -> Outcome:
        body = LogBatch(events=batch).model_dump_json(by_alias=True)
        first, last = batch[0].seq, batch[-1].seq
        try:
            resp = await client.post(self._url, content=body, headers=self._headers)
        except httpx.HTTPError as exc:
            # Only the first failure of a streak is worth a warning; an outage repeats it.
            log.log(logging.DEBUG if failing else logging.WARNING, "ingest unreachable: %r", exc)
            return "retry"
        if resp.is_success:
            if failing:
                log.info("ingest reachable again, delivered seq %d..%d", first, last)
            return "ok"
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            log.error(
                "ingest rejected seq %d..%d with %d (run revoked?): dropping them: %s",
                first,
                last,
                resp.status_code,
                resp.text[:500],
            )
            return "drop"
        log.log(
            logging.DEBUG if failing else logging.WARNING, "ingest answered %d", resp.status_code
        )
        return "retry"

    def _rewrite_spool(self) -> None:
        # Not fsynced, like progress.json: it guards against a runner crash, not power loss.
        atomic_write_text(
            self._spool_path,
            "".join(e.model_dump_json(by_alias=True) + "\n" for e in self._pending),
            durable=False,
        )
