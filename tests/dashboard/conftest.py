"""Playwright driving Debian's Chromium against the real API (tests/conftest.py's stack).

Playwright never downloads a browser here: `executable_path` is the system chromium
(`make browser` installs it). Every page a test opens records console errors and
uncaught exceptions; `Dashboard.finish()` fails the test if there were any.
Screenshots go to .artifacts/dashboard/ (gitignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.forges.conftest import github, settings  # noqa: F401  (the forge double's fixtures)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "dashboard"
AXE = Path(__file__).parent / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

playwright_api = pytest.importorskip("playwright.async_api")
playwright_api.expect.set_options(timeout=45_000)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make browser)")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        await browser.close()


@dataclass
class Dashboard:
    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # errors a test provokes on purpose

    async def sign_in(self, token: str) -> None:
        await self.page.goto(self.base + "/")
        await self.page.get_by_label("API token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.locator("#topbar:not([hidden])").wait_for()
        await self.page.locator("main .page h1").wait_for()  # the first page is drawn

    async def go(self, hash_path: str) -> None:
        await self.page.evaluate("(h) => { location.hash = h; }", hash_path)

    async def settled(self) -> None:
        """The page has rendered and taken the focus: a key press now stays where it goes."""
        await self.page.locator("main[aria-busy=false]").wait_for()

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations of WCAG 2 A/AA rules on the page as it is now."""
        if not AXE.exists():
            pytest.skip("axe-core is not installed (make browser)")
        await self.page.add_script_tag(path=str(AXE))
        result = await self.page.evaluate(
            "() => axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})"
        )
        return [
            {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"]
        ]

    async def wait_for_error(self, text: str, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(text in e for e in self.errors):
            assert asyncio.get_running_loop().time() < deadline, f"no console error {text!r}"
            await asyncio.sleep(0.05)

    def finish(self) -> None:
        unexpected = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert not unexpected, "console errors:\n" + json.dumps(unexpected, indent=1)


@pytest.fixture
async def open_dashboard(chromium: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    contexts: list[Any] = []
    boards: list[Dashboard] = []

    async def open_(base: str, *, viewport: dict[str, int] = DESKTOP) -> Dashboard:
        # bypass_csp: only so the test can inject axe-core; the app itself runs under it.
        context = await chromium.new_context(viewport=viewport, bypass_csp=True)
        contexts.append(context)
        page = await context.new_page()
        # Generous: the suite shares two cores with much else; a wait ends when its
        # condition holds, so this only bounds a failure.
        page.set_default_timeout(45_000)
        board = Dashboard(page=page, base=base)
        page.on(
            "console",
            lambda msg: (
                board.errors.append(f"{msg.text} ({msg.location.get('url')})")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: board.errors.append(f"uncaught: {exc}"))
        boards.append(board)
        return board

    yield open_
    # What each page showed at the end: the first thing to read when a test fails.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for n, board in enumerate(boards):
        await board.page.screenshot(path=str(ARTIFACTS / f"last-{name}-{n}.png"))
        text = await board.page.inner_text("body")
        (ARTIFACTS / f"last-{name}-{n}.txt").write_text(
            f"{board.page.url}\n{text}\nerrors: {board.errors}\n"
        )
    for context in contexts:
        await context.close()
