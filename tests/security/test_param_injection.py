"""Template parameters are data: no parameter value can change what a `script` runs.

Each test performs the attack from issue 13 (a blueprint whose script is
`echo {{what}} > f`, started with what = `x; touch pwned; echo y`) and passes only
because the value reaches the script as an environment variable: the file holds the
literal text and nothing named `pwned` exists anywhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from core.script_params import render_script
from tests.blueprints.conftest import create_blueprint, create_standalone, eventually
from tests.conftest import Optio
from tests.lifecycle_helpers import file_on_branch, wait_for_state

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]

SCRIPT = "echo {{what}} > f"
ISSUE_ATTACK = "x; touch pwned; echo y"  # verbatim from the issue
# Every way a shell could be made to run a command: separator, substitution, backticks,
# a quote that would close the template's own, a newline.
ATTACK = "x; touch pwned; echo y $(touch pwned2) `touch pwned3` '\"; touch pwned4\n touch pwned5"


def no_command_ran(repo: Path, branch: str) -> None:
    for marker in ("pwned", "pwned2", "pwned3", "pwned4", "pwned5"):
        assert file_on_branch(repo, branch, marker) is None, f"{marker} was created"


async def test_an_anonymous_webhook_cannot_run_a_command_through_a_parameter(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    blueprint = await create_blueprint(optio.client, repo, title="Hook {{what}}", prompt=SCRIPT)
    created = await optio.client.post(
        f"/api/tasks/{blueprint['id']}/triggers",
        # Public: anyone may call it (only an admin may say so); its parameters stay data.
        json={
            "type": "webhook",
            "config": {"path": "inject", "public": True},
            "paramMapping": {"what": "$.what"},
        },
    )
    assert created.status_code == 201, created.text

    accepted = await optio.anon.post("/api/hooks/inject", json={"what": ISSUE_ATTACK})
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["runId"]
    done = await wait_for_state(optio.client, task_id, "pr_opened", "failed", "completed")
    assert done["task"]["state"] == "pr_opened", done["task"]
    branch = f"optio/task-{task_id}"
    assert file_on_branch(repo, branch, "pwned") is None, "the parameter ran a command"
    assert file_on_branch(repo, branch, "f") == ISSUE_ATTACK


async def test_a_manual_blueprint_run_cannot_run_a_command_through_a_parameter(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    blueprint = await create_blueprint(
        optio.client, repo, prompt='#!/bin/bash\necho "quoted: {{what}}" > g\n' + SCRIPT
    )
    started = await optio.client.post(
        f"/api/tasks/{blueprint['id']}/runs", json={"params": {"what": ATTACK}}
    )
    assert started.status_code == 202, started.text
    task_id = started.json()["runId"]
    done = await wait_for_state(optio.client, task_id, "pr_opened", "failed", "completed")
    assert done["task"]["state"] == "pr_opened", done["task"]
    branch = f"optio/task-{task_id}"
    assert file_on_branch(repo, branch, "f") == ATTACK.rstrip("\n")
    # Inside the template's own double quotes the value is still only text.
    assert file_on_branch(repo, branch, "g") == "quoted: " + ATTACK.rstrip("\n")
    no_command_ran(repo, branch)


async def test_a_standalone_run_cannot_run_a_command_through_a_parameter(optio: Optio) -> None:
    job = await create_standalone(optio.client, prompt="echo {{what}}\nls")
    started = await optio.client.post(
        f"/api/tasks/{job['id']}/runs", json={"params": {"what": ATTACK}}
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]

    async def logs() -> list[str]:
        response = await optio.client.get(f"/api/tasks/{job['id']}/runs/{run_id}/logs")
        run = (await optio.client.get(f"/api/tasks/{job['id']}/runs/{run_id}")).json()["run"]
        done = run["state"] in ("completed", "failed")
        return [e["content"] for e in response.json()["logs"]] if done else []

    contents = await eventually(logs, timeout=60)
    assert "x; touch pwned; echo y $(touch pwned2) `touch pwned3` '\"; touch pwned4" in contents
    # `ls` lists the scratch worktree: no marker file was created there.
    assert not any(line.startswith("pwned") for line in contents), contents


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("echo {{what}}", ATTACK),
        ('echo "in double quotes: {{what}}"', "in double quotes: " + ATTACK),
        ("echo 'in single quotes: {{what}}'", "in single quotes: " + ATTACK),
        ("# don't\necho {{what}}", ATTACK),
        ("cat <<EOF\nheredoc: {{what}}\nEOF", "heredoc: " + ATTACK),
        ('echo "$(echo "{{what}}")"', ATTACK),
        ("echo `echo {{what}}`", " ".join(ATTACK.split())),  # the template splits words
        ("#!/bin/sh\necho {{what}}", ATTACK),
    ],
)
def test_no_quoting_context_lets_a_parameter_become_code(
    template: str, printed: str, tmp_path: Path
) -> None:
    script = render_script(template, {"what": ATTACK})
    # Beyond its preamble, the script is the same whatever the value.
    _, _, body = render_script(template, {"what": "v"}).partition("export OPTIO_PARAM_what=v\n")
    assert body and script.endswith(body) and "touch" not in body
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert done.stdout == printed + "\n"
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_a_script_review_gets_the_pr_title_as_data(tmp_path: Path) -> None:
    """A review's template renders the parent task's title (anyone's request) into the
    script; the repository's test command is its members' code and runs as written."""
    from activities.review import REVIEW_CODE

    script = render_script(
        "{{TEST_COMMAND}}\necho reviewing {{TASK_TITLE}}",
        {"TEST_COMMAND": "touch tested", "TASK_TITLE": ISSUE_ATTACK},
        keep_unknown=False,
        code=REVIEW_CODE,
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert done.stdout == f"reviewing {ISSUE_ATTACK}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tested"]
