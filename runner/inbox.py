"""Messages for a running agent that takes input mid-run (Claude Code, stream-json).

The inbox owns the agent's stdin: it writes the prompt as the first message, then asks
the control plane for new messages about once a second (with the run's token) and writes
each one as the agent's next user message, an interrupt request first when asked. It
reports back what it wrote (`delivered`) and what the agent echoed (`acked`). The agent
ends when its input does, so the inbox closes stdin once a turn has finished and every
message written has been echoed; a message that arrives later waits for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from integrations.agents.common import decode
from integrations.agents.stream_input import (
    echoed_text,
    ends_turn,
    interrupt_request,
    user_message,
)
from integrations.tls import tls_context
from schemas.runner import InboxMessage, InboxMessages, InboxReport

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
REPORT_TIMEOUT = 10.0
# What the reference puts before an interrupting message, so the agent turns to it at once.
URGENT = "[URGENT INTERRUPT FROM USER — stop what you are doing and address this immediately]"


class Inbox:
    def __init__(self, *, url: str, token: str, prompt: str) -> None:
        self.url = url
        self.token = token
        self.prompt = prompt
        self._stdin: asyncio.StreamWriter | None = None
        self._unechoed: list[tuple[str | None, str]] = []  # (message id or None, text)
        self._seen: set[str] = set()
        self._delivered: set[str] = set()
        self._acked: set[str] = set()
        self._closed = asyncio.Event()

    async def feed(self, stdin: asyncio.StreamWriter) -> None:
        """Own the agent's stdin until it is closed; then send the last report."""
        self._stdin = stdin
        await self._write(None, self.prompt, interrupt=False)
        async with httpx.AsyncClient(timeout=REPORT_TIMEOUT, verify=tls_context()) as client:
            while not self._closed.is_set():
                try:
                    for message in await self._exchange(client):
                        if message.id in self._seen or self._closed.is_set():
                            continue
                        self._seen.add(message.id)
                        urgent = message.mode == "interrupt"
                        text = f"{URGENT}\n\n{message.content}" if urgent else message.content
                        if await self._write(message.id, text, interrupt=urgent):
                            self._delivered.add(message.id)
                except httpx.HTTPError as exc:
                    log.warning("asking for messages failed: %r", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), POLL_SECONDS)
            with contextlib.suppress(httpx.HTTPError):
                await self._exchange(client)  # the last deliveries and echoes

    def observe(self, line: str) -> None:
        """Every line the agent prints: echoes acknowledge, a finished turn may end input."""
        event = decode(line)
        if event is None:
            return
        text = echoed_text(event)
        if text is not None:
            for i, (message_id, written) in enumerate(self._unechoed):
                if written == text:
                    del self._unechoed[i]
                    if message_id is not None:
                        self._acked.add(message_id)
                    break
        elif ends_turn(event) and not self._unechoed:
            self.close()

    def close(self) -> None:
        """No more input: the agent finishes its work and exits."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._stdin.close()

    async def _write(self, message_id: str | None, text: str, *, interrupt: bool) -> bool:
        assert self._stdin is not None
        try:
            if interrupt:
                self._stdin.write(interrupt_request())
            self._stdin.write(user_message(text))
            await self._stdin.drain()
        except (OSError, RuntimeError) as exc:  # the agent has exited
            log.info("agent input closed: %r", exc)
            return False
        self._unechoed.append((message_id, text))
        return True

    async def _exchange(self, client: httpx.AsyncClient) -> list[InboxMessage]:
        report = InboxReport(delivered=sorted(self._delivered), acked=sorted(self._acked))
        response = await client.post(
            self.url,
            content=report.model_dump_json(by_alias=True),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        response.raise_for_status()
        return InboxMessages.model_validate(response.json()).messages
