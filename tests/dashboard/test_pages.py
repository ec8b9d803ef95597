"""Sign-in, every page rendered at desktop and phone width, axe-core clean, no console errors."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import Optio
from tests.dashboard.conftest import PHONE

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")

PAGES = [
    ("#/tasks", "Tasks"),
    ("#/tasks?view=list", "Tasks"),
    ("#/new", "New task"),
    ("#/repos", "Repos"),
    ("#/blueprints", "Blueprints"),
    ("#/templates", "Templates"),
    ("#/secrets", "Secrets"),
    ("#/costs", "Costs"),
    ("#/workspaces", "Workspaces"),
    ("#/setup", "Setup"),
]


def shot_name(hash_path: str) -> str:
    return hash_path.strip("#/").replace("?view=", "-") or "tasks"


async def test_sign_in_then_every_page_is_accessible(api_only: Optio, open_dashboard: Any) -> None:
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await page.goto(board.base + "/")
    await page.get_by_label("API token").fill("optio_pat_" + "0" * 64)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("That token was not accepted").wait_for()
    # The refused sign-in is a 401 the browser logs, on purpose: that one and only it.
    await board.wait_for_error("401")
    board.allowed.append("401 (Unauthorized) (" + board.base + "/api/auth/me)")
    await board.shot("sign-in")
    assert await board.axe() == []

    await board.sign_in(api_only.token)
    await page.get_by_role("combobox", name="Workspace").wait_for()
    for hash_path, heading in PAGES:
        await board.go(hash_path)
        await page.get_by_role("heading", level=1, name=heading).wait_for()
        await page.wait_for_load_state("networkidle")
        if hash_path.endswith("view=list"):
            await page.get_by_role("table", name="Tasks").wait_for()
        await board.shot(shot_name(hash_path))
        assert await board.axe() == [], hash_path
    board.finish()


async def test_phone_width_menu_and_keyboard(api_only: Optio, open_dashboard: Any) -> None:
    board = await open_dashboard(str(api_only.client.base_url), viewport=PHONE)
    page = board.page
    await board.sign_in(api_only.token)
    await page.get_by_role("heading", level=1, name="Setup").wait_for()  # a fresh install
    await board.go("#/tasks")
    await page.get_by_role("heading", level=1, name="Tasks").wait_for()
    await board.settled()  # the page takes the focus once rendered: not from the menu
    nav_link = page.get_by_role("link", name="Secrets")
    assert not await nav_link.is_visible()  # folded behind the menu button
    menu = page.get_by_role("button", name="Menu")
    await menu.press("Enter")
    await expect(menu).to_have_attribute("aria-expanded", "true")  # waits for the update
    await nav_link.focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", level=1, name="Secrets").wait_for()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width}px)"
    await board.shot("secrets-phone")
    await board.go("#/tasks")
    await page.get_by_role("heading", level=1, name="Tasks").wait_for()
    await board.shot("tasks-phone")
    assert await board.axe() == []
    board.finish()
