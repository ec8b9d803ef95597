"""What the README walkthrough does with curl, done by clicking in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import Optio
from tests.forges.github_double import GitHubDouble
from tests.lifecycle_helpers import create_task, triggers, wait_for_state

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")

MakeRepo = Callable[..., Path]


async def test_a_task_from_the_form_reaches_completed_on_the_board_without_reload(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    repo = github.add_repo("acme", "app", make_repo())
    repo.ci_command = "test -f f"
    url = github.clone_url(repo)
    body = {"repoUrl": url, "gitPlatform": "github", "forgeApiUrl": github.api_url}
    response = await optio.client.post("/api/repos", json={**body, "autoMerge": True})
    assert response.status_code == 201, response.text

    board = await open_dashboard(str(optio.client.base_url))
    page = board.page
    await board.sign_in(optio.token)
    await board.go("#/new")
    await page.get_by_label("Repository").fill(url)
    await page.get_by_label("Title").fill("Write f")
    await page.get_by_label("Prompt").fill("echo ok > f\necho 'done: wrote f'")
    await page.get_by_label("Agent").select_option("script")
    await board.shot("new-task-filled")
    await page.evaluate("window.__sameDocument = true")
    await page.get_by_role("button", name="Create task").click()

    completed = page.locator('[data-column="completed"] [data-task-id]', has_text="Write f")
    await completed.wait_for(timeout=90_000)
    assert await page.evaluate("window.__sameDocument === true"), "the board was reloaded"
    await board.shot("board-completed")

    await completed.get_by_role("link", name="Write f").click()
    await page.get_by_role("heading", level=1, name="Write f").wait_for()
    await page.locator("#log-view", has_text="done: wrote f").wait_for()
    pr = page.locator("#task-pr")
    await pr.get_by_text("merged").wait_for()
    assert (
        await pr.get_by_role("link").get_attribute("href") == f"{github.base_url}/acme/app/pull/1"
    )
    await page.locator(".timeline", has_text="auto_merged").wait_for()
    await board.shot("task")
    board.finish()


async def test_a_needs_attention_task_is_resumed_with_a_prompt(
    optio: Optio, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    task = await create_task(optio.client, make_repo(), "echo 'nothing to commit'", title="Idle")
    await wait_for_state(optio.client, task["id"], "needs_attention", timeout=60)

    board = await open_dashboard(str(optio.client.base_url))
    page = board.page
    await board.sign_in(optio.token)
    await board.go(f"#/tasks/{task['id']}")
    await page.locator("#task-state", has_text="needs attention").wait_for(timeout=30_000)
    await page.locator("#log-view", has_text="nothing to commit").wait_for()
    await (
        page.get_by_role("group", name="Task actions").get_by_role("button", name="Resume").click()
    )
    dialog = page.get_by_role("dialog", name="Resume")
    await dialog.get_by_label("What should the agent do next?").fill(
        "echo 'resumed from the dashboard'\necho r > r"
    )
    await board.shot("resume-dialog")
    await dialog.get_by_role("button", name="Resume").click()
    await page.locator(".timeline", has_text="user_resume").wait_for(timeout=30_000)
    assert ("queued", "user_resume") in await triggers(optio.client, task["id"])
    # The resumed run's output arrives over the live socket, on the page as it is.
    await page.locator("#log-view", has_text="resumed from the dashboard").wait_for()
    board.finish()


async def test_the_queue_is_reordered_with_buttons(
    api_only: Optio, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    # No worker: the tasks wait where they are, in the Queued column.
    ids = []
    repo = make_repo()
    for name in ("First", "Second", "Third"):
        made = await create_task(api_only.client, repo, "true", title=name)
        ids.append(made["id"])
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    await board.go("#/tasks")
    queued = page.locator('[data-column="pending waiting_on_deps queued"]')
    await queued.get_by_text("Third").wait_for()
    await queued.get_by_role("button", name="Move Third up").click()
    await expect(queued.locator(".card-title")).to_have_text(["First", "Third", "Second"])
    priorities = {}
    for task_id in ids:
        priorities[task_id] = (await api_only.client.get(f"/api/tasks/{task_id}")).json()["task"][
            "priority"
        ]
    assert [priorities[i] for i in ids] == [1, 3, 2]
    board.finish()


async def test_a_secret_is_set_and_replaced_by_name_only(
    api_only: Optio, open_dashboard: Any
) -> None:
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    for value in ("first-value-123", "second-value-456"):
        await board.go("#/secrets")
        await page.get_by_label("Name").fill("DEPLOY_KEY")
        await page.get_by_label("Value").fill(value)
        await page.get_by_role("button", name="Save secret").click()
        await expect(page.get_by_label("Value")).to_have_value("")  # reset once saved
        await page.locator('[data-secret="DEPLOY_KEY"]').wait_for()
        assert value not in await page.content()
    secrets = (await api_only.client.get("/api/secrets")).json()["secrets"]
    assert [s["name"] for s in secrets] == ["DEPLOY_KEY"]
    await board.shot("secrets-set")
    board.finish()


async def test_a_blueprint_is_created_with_a_schedule(
    api_only: Optio, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    await board.go("#/blueprints")
    await page.get_by_label("Name", exact=True).fill("Nightly deps")
    await page.get_by_label("Task title").fill("Update dependencies")
    await page.get_by_label("Repository").fill(str(make_repo()))
    await page.get_by_label("Prompt").fill("Update the dependencies.")
    await page.get_by_label("Schedule (cron)").fill("0 3 * * *")
    await page.get_by_role("button", name="Create blueprint").click()
    await page.get_by_role("heading", level=1, name="Nightly deps").wait_for()
    blueprint_id = re.search(r"#/blueprints/([\w-]+)", page.url)
    assert blueprint_id is not None
    row = page.locator("tr", has_text="0 3 * * *")
    await row.wait_for()
    found = (await api_only.client.get(f"/api/tasks/{blueprint_id.group(1)}/triggers")).json()
    (trigger,) = found["triggers"]
    assert trigger["type"] == "schedule" and trigger["config"]["cronExpression"] == "0 3 * * *"
    assert trigger["nextFireAt"] is not None
    await board.shot("blueprint")
    await board.go("#/blueprints")
    await page.locator("tr", has_text="Nightly deps").get_by_text("schedule 0 3 * * *").wait_for()
    board.finish()


async def test_the_setup_wizard_on_a_fresh_install_ends_on_a_first_task(
    api_only: Optio, make_repo: MakeRepo, open_dashboard: Any
) -> None:
    status = (await api_only.anon.get("/api/setup/status")).json()
    assert status["isSetUp"] is False
    repo = make_repo()
    board = await open_dashboard(str(api_only.client.base_url))
    page = board.page
    await board.sign_in(api_only.token)
    await page.get_by_role(
        "heading", level=1, name="Setup"
    ).wait_for()  # where a fresh install lands
    await page.get_by_label("Credential").select_option("ANTHROPIC_API_KEY")
    await page.get_by_label("Value").fill("sk-ant-test-value")
    await board.shot("setup")
    await page.get_by_role("button", name="Save and continue").click()
    await page.get_by_text("Optio pushes branches").wait_for()
    await page.get_by_label("Credential").select_option("GITHUB_TOKEN")
    await page.get_by_label("Value").fill("ghp_test_value")
    await page.get_by_role("button", name="Save and continue").click()
    await page.get_by_label("Repository").fill(str(repo))
    await page.get_by_label("Default agent").select_option("script")
    await page.get_by_role("button", name="Connect and continue").click()
    await page.get_by_label("Title").fill("First task")
    await page.get_by_label("Prompt").fill("echo hello > HELLO.md")
    await page.get_by_role("button", name="Finish setup and start the task").click()
    await page.get_by_role("heading", level=1, name="First task").wait_for()

    status = (await api_only.anon.get("/api/setup/status")).json()
    assert status["isSetUp"] is True and status["completedAt"] is not None
    names = {s["name"] for s in (await api_only.client.get("/api/secrets")).json()["secrets"]}
    assert {"ANTHROPIC_API_KEY", "GITHUB_TOKEN"} <= names
    repos = (await api_only.client.get("/api/repos")).json()["repos"]
    assert [r["defaultAgentType"] for r in repos] == ["script"]
    (task,) = (await api_only.client.get("/api/tasks")).json()["tasks"]
    assert task["title"] == "First task"
    board.finish()
