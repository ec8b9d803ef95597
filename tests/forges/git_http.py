"""Git over smart HTTP (`git http-backend` as CGI) with token auth, plus forge-side git ops.

Shared by the GitHub and GitLab test doubles. Reads of a public repository are anonymous;
reads of a private one, and every push, need `Authorization: Basic <user:token>` or
`Bearer <token>` (401 with a Basic challenge otherwise), as on the real forges.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

GIT_ID = {
    "GIT_AUTHOR_NAME": "Forge",
    "GIT_AUTHOR_EMAIL": "forge@example.com",
    "GIT_COMMITTER_NAME": "Forge",
    "GIT_COMMITTER_EMAIL": "forge@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ID},
        capture_output=True,
        text=True,
        check=check,
    )


def refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads").stdout
    pairs = (line.split(" ", 1) for line in out.splitlines() if line)
    return dict(pairs)


def sha_of(repo: Path, ref: str) -> str | None:
    done = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return done.stdout.strip() or None


def merge_tree(repo: Path, base: str, head: str) -> str | None:
    """The merged tree, or None when the two conflict."""
    done = git(repo, "merge-tree", "--write-tree", base, head, check=False)
    return done.stdout.split("\n", 1)[0].strip() if done.returncode == 0 else None


def changed_files(repo: Path, base: str, head: str) -> list[str]:
    out = git(repo, "diff", "--name-only", f"{base}...{head}").stdout
    return [line for line in out.splitlines() if line]


def diff(repo: Path, base: str, head: str) -> str:
    return git(repo, "diff", f"{base}...{head}").stdout


def merge(repo: Path, *, base: str, head: str, squash: bool, message: str) -> str | None:
    """A real merge (or squash) commit on `base`; None when it conflicts."""
    base_sha, head_sha = sha_of(repo, base), sha_of(repo, head)
    assert base_sha and head_sha
    tree = merge_tree(repo, base_sha, head_sha)
    if tree is None:
        return None
    parents = ["-p", base_sha] if squash else ["-p", base_sha, "-p", head_sha]
    commit = git(repo, "commit-tree", tree, *parents, "-m", message).stdout.strip()
    git(repo, "update-ref", f"refs/heads/{base}", commit, base_sha)
    return commit


def commit_file(repo: Path, *, branch: str, path: str, content: str, message: str) -> str:
    """Commit one file on a branch of a bare repo, as a person pushing would."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git(work, "clone", "-q", "-b", branch, str(repo), ".")
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", message)
        git(work, "push", "-q", "origin", branch)
        return git(work, "rev-parse", "HEAD").stdout.strip()


async def run_ci(repo: Path, sha: str, command: str) -> tuple[bool, str]:
    """Run a CI command on a commit in a scratch checkout: (passed, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        await asyncio.to_thread(git, Path(tmp), "clone", "-q", "--no-checkout", str(repo), ".")
        await asyncio.to_thread(git, Path(tmp), "checkout", "-q", sha)
        proc = await asyncio.create_subprocess_shell(
            command,
            cwd=tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode == 0, out.decode(errors="replace")


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return value.strip()
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return password or user
    return None


OnPush = Callable[[str, dict[str, str], dict[str, str]], Awaitable[None]]


async def serve_git(
    request: Request,
    *,
    root: Path,
    repo_path: str,
    rest: str,
    push_tokens: set[str],
    on_push: OnPush,
    private: bool = False,
) -> Response:
    """Serve one smart-HTTP request for root/<repo_path>.git via `git http-backend`."""
    repo = root / f"{repo_path}.git"
    if not repo.is_dir():
        return Response("Repository not found", status_code=404)
    pushing = rest == "git-receive-pack" or request.query_params.get("service") == (
        "git-receive-pack"
    )
    if (pushing or private) and token_of(request) not in push_tokens:
        return Response(
            "Authentication required",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="forge"'},
        )
    before = refs(repo) if rest == "git-receive-pack" else {}
    env = {
        **os.environ,
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo_path}.git/{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": "optio" if pushing else "",
        "REMOTE_ADDR": "127.0.0.1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
    }
    if request.headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    body = await request.body()
    proc = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(body)
    head, _, payload = out.partition(b"\r\n\r\n")
    status, headers = 200, {}
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif name:
            headers[name.strip()] = value.strip()
    if rest == "git-receive-pack":
        await on_push(repo_path, before, refs(repo))
    return Response(payload, status_code=status, headers=headers)
