"""The client commands against a real stack: API and worker on loopback, real git, both
databases; the CLI is the installed `optio`, run as a subprocess."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.client.http import repo_task
from schemas.blueprints import BlueprintPublic
from schemas.task_views import (
    MergeResult,
    TaskDetailPublic,
    TaskEventsPublic,
    TaskLogsPublic,
    TasksPublic,
    TriggersPublic,
)
from tests.cli.client_runner import Cli
from tests.conftest import Optio, free_port
from tests.lifecycle_helpers import file_on_branch

MakeRepo = Callable[..., Path]
# Each command is a fresh Python process; on a loaded machine a dozen of them take minutes.
pytestmark = pytest.mark.timeout(480)


def base_url(optio: Optio) -> str:
    return f"http://127.0.0.1:{optio.settings.api_port}"


async def test_create_wait_logs_merge(optio: Optio, make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    cli = Cli(tmp_path)
    login = await cli.run("login", base_url(optio), "--token-stdin", input=optio.token + "\n")
    assert login.code == 0, login.err
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config_file.parent.stat().st_mode) == 0o700
    assert optio.token in cli.config_file.read_text()

    added = await cli.run("repo", "add", str(repo), "--json")
    assert added.code == 0, added.err
    assert added.json()["repo"]["repoUrl"] == f"file://{repo.resolve()}"

    created = await cli.run(
        "task", "create", "--repo", str(repo), "--agent", "script", "--title", "Say hello",
        "--prompt", "echo hello from the agent\necho change > feature.txt", "--wait", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    made_task = repo_task(TaskDetailPublic.model_validate(created.json()).task)
    task_id = made_task.id
    # Without auto-merge the task settles with its PR open, and the progress shows the way.
    assert made_task.state == "pr_opened" and made_task.pr_url
    shown = [s for s in ("queued", "provisioning", "running", "pr_opened") if s in created.err]
    assert shown == ["queued", "provisioning", "running", "pr_opened"], created.err
    assert created.err.index("-> running") < created.err.index("-> pr_opened")

    logs = await cli.run("task", "logs", task_id)
    assert logs.code == 0 and "hello from the agent" in logs.out.splitlines()
    as_json = TaskLogsPublic.model_validate(
        (await cli.run("task", "logs", task_id, "--json")).json()
    )
    assert "hello from the agent" in [entry.content for entry in as_json.logs]

    merged = await cli.run("task", "merge", task_id, "--method", "merge", "--json")
    assert merged.code == 0, merged.err
    result = MergeResult.model_validate(merged.json())
    assert result.merged and result.task.state == "completed"
    assert file_on_branch(repo, "main", "feature.txt") == "change"

    waited = await cli.run("task", "wait", task_id, "--json")
    assert waited.code == 0 and waited.json()["task"]["state"] == "completed"
    listed = TasksPublic.model_validate((await cli.run("task", "list", "--json")).json())
    assert [t.id for t in listed.tasks] == [task_id]
    table = await cli.run("task", "list")
    assert task_id in table.out and "completed" in table.out and "Say hello" in table.out
    events = TaskEventsPublic.model_validate(
        (await cli.run("task", "events", task_id, "--json")).json()
    )
    assert [e.to_state for e in events.events][-2:] == ["pr_opened", "completed"]
    human = await cli.run("task", "show", task_id)
    assert task_id in human.out and made_task.pr_url in human.out

    # The state machine's refusal: its message, and the conflict's own exit code.
    again = await cli.run("task", "retry", task_id)
    assert again.code == 5, again
    assert again.err.startswith("optio: ") and "(HTTP 409)" in again.err


async def test_wait_exits_non_zero_for_a_failed_task(
    optio: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, OPTIO_URL=base_url(optio), OPTIO_TOKEN=optio.token)
    created = await cli.run(
        "task", "create", "-r", str(make_repo()), "-a", "script", "-p", "echo broken >&2; exit 3",
        "--max-retries", "0", "--wait", "--json",
    )  # fmt: skip
    assert created.code == 10, created
    assert created.json()["task"]["state"] == "failed"
    task_id = created.json()["task"]["id"]
    assert (await cli.run("task", "wait", task_id, "-q")).code == 10
    logs = await cli.run("task", "logs", task_id)
    assert "broken" in logs.err  # the agent's stderr goes to stderr
    # -f on a task that has ended prints its log and ends too.
    followed = await cli.run("task", "logs", task_id, "-f")
    assert followed.code == 0 and "broken" in followed.err
    assert not cli.config_file.exists()  # OPTIO_URL/OPTIO_TOKEN: nothing saved


async def test_exit_codes_and_error_messages(api_only: Optio, tmp_path: Path) -> None:
    optio = api_only
    cli = Cli(tmp_path, OPTIO_URL=base_url(optio), OPTIO_TOKEN=optio.token)
    missing = await cli.run("task", "show", "no-such-task")
    assert missing.code == 4 and missing.err.startswith("optio: ") and "404" in missing.err
    assert missing.out == ""

    refused = await cli.run("task", "list", OPTIO_TOKEN="optio_pat_" + "0" * 64)
    assert refused.code == 3 and "optio login" in refused.err

    anonymous = Cli(tmp_path / "nobody")
    nobody = await anonymous.run("task", "list")
    assert nobody.code == 3 and "not logged in" in nobody.err

    gone = await cli.run("task", "list", OPTIO_URL=f"http://127.0.0.1:{free_port()}")
    assert gone.code == 6 and "cannot reach" in gone.err

    usage = await cli.run("task", "create", "--prompt", "x")
    assert usage.code == 2 and "--repo" in usage.err
    checked = await cli.run("task", "create", "-r", "/tmp", "-p", "x", "--priority", "5000")
    assert checked.code == 2 and "priority" in checked.err
    # The API's 400: its envelope's message and the field, line by line.
    outside = await cli.run("repo", "set", "nothing", "autoMerge=maybe")
    assert outside.code == 2 and "autoMerge" in outside.err
    bad_repo = await cli.run("task", "create", "-r", "/nonexistent/repo", "-p", "x", "-a", "script")
    assert bad_repo.code == 2 and "(HTTP 400)" in bad_repo.err, bad_repo


async def test_secrets_never_on_the_command_line(api_only: Optio, tmp_path: Path) -> None:
    cli = Cli(tmp_path, OPTIO_URL=base_url(api_only), OPTIO_TOKEN=api_only.token)
    saved = await cli.run("secret", "set", "SOME_API_KEY", input="s3cret-value\n")
    assert saved.code == 0, saved.err
    assert "s3cret-value" not in saved.out + saved.err
    listed = await cli.run("secret", "list", "--json")
    assert [s["name"] for s in listed.json()["secrets"]] == ["SOME_API_KEY"]
    assert "s3cret-value" not in listed.out
    empty = await cli.run("secret", "set", "OTHER_KEY", input="")
    assert empty.code == 2
    assert (await cli.run("secret", "rm", "SOME_API_KEY")).code == 0
    assert (await cli.run("secret", "rm", "SOME_API_KEY")).code == 4
    assert (await cli.run("secret", "list", "--json")).json()["secrets"] == []


async def test_contexts_and_workspaces(api_only: Optio, tmp_path: Path) -> None:
    optio = api_only
    cli = Cli(tmp_path)
    for name in ("local", "other"):
        done = await cli.run(
            "login", base_url(optio), "-c", name, "--token-stdin", input=optio.token
        )
        assert done.code == 0, done.err
    contexts = (await cli.run("context", "list", "--json")).json()
    assert contexts["current"] == "other"
    assert optio.token not in str(contexts)  # tokens stay in the file
    assert (await cli.run("context", "use", "local")).code == 0
    assert (await cli.run("context", "use", "nope")).code == 4
    assert (await cli.run("context", "list", "--json")).json()["current"] == "local"

    made = await optio.client.post("/api/workspaces", json={"name": "Second", "slug": "second"})
    assert made.status_code == 201
    second = made.json()["workspace"]["id"]
    listed = (await cli.run("workspace", "list", "--json")).json()
    assert listed["activeWorkspaceId"] == optio.workspace_id
    assert (await cli.run("workspace", "use", "second")).code == 0
    now = (await cli.run("workspace", "list", "--json")).json()
    assert now["activeWorkspaceId"] == second
    # Requests act in it: its repo list is its own (empty).
    assert (await cli.run("repo", "list", "--json")).json()["repos"] == []
    # A config file others could read is reported (and keeps working).
    cli.config_file.chmod(0o644)
    loose = await cli.run("context", "list")
    assert loose.code == 0 and "chmod 600" in loose.err


async def test_blueprint_list_triggers_and_run(
    optio: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    made = await optio.client.post(
        "/api/tasks",
        json={
            "type": "repo-blueprint", "name": "stamp", "title": "Stamp {{what}}",
            "prompt": "echo {{what}} > stamp.txt", "repoUrl": str(repo), "agentType": "script",
        },
    )  # fmt: skip
    assert made.status_code == 201, made.text
    blueprint = made.json()["task"]["id"]
    cli = Cli(tmp_path, OPTIO_URL=base_url(optio), OPTIO_TOKEN=optio.token)
    listed = TasksPublic.model_validate((await cli.run("blueprint", "list", "--json")).json())
    assert [(b.id, type(b)) for b in listed.tasks] == [(blueprint, BlueprintPublic)]

    added = await cli.run(
        "blueprint", "triggers", blueprint, "--schedule", "0 * * * *", "--param", "what=hourly"
    )
    assert added.code == 0, added.err
    assert "schedule" in added.out and "cronExpression=0 * * * *" in added.out
    triggers = TriggersPublic.model_validate(
        (await cli.run("blueprint", "triggers", blueprint, "--json")).json()
    )
    assert [(t.type, t.param_mapping) for t in triggers.triggers] == [
        ("schedule", {"what": "hourly"})
    ]

    ran = await cli.run("blueprint", "run", blueprint, "what=now", "--wait", "--json")
    assert ran.code == 0, ran.err
    task = repo_task(TaskDetailPublic.model_validate(ran.json()).task)
    assert task.title == "Stamp now" and task.state == "pr_opened"
    assert file_on_branch(repo, f"optio/task-{task.id}", "stamp.txt") == "now"
    not_a_blueprint = await cli.run("blueprint", "run", "no-such-blueprint")
    assert not_a_blueprint.code == 4


async def test_shell_completion_knows_commands_and_states(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    words = await cli.run(
        _OPTIO_COMPLETE="complete_bash", COMP_WORDS="optio task wait x --until pr", COMP_CWORD="5"
    )
    assert words.out.split() == ["provisioning", "pr_opened"]
    commands = await cli.run(_OPTIO_COMPLETE="complete_bash", COMP_WORDS="optio bl", COMP_CWORD="1")
    assert commands.out.split() == ["blueprint"]
