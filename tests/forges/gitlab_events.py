"""What happens on the GitLab double by itself: pushes, CI pipelines and webhook deliveries.

Webhook payloads follow GitLab's documented events (`Merge Request Hook`, `Pipeline Hook`,
`Job Hook`, `Note Hook`, `Push Hook`), sent with `X-Gitlab-Token` (the secret token as is,
not a signature), `X-Gitlab-Event`, `X-Gitlab-Event-UUID` and `X-Gitlab-Webhook-UUID`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from tests.forges import git_http as g

if TYPE_CHECKING:
    from tests.forges.gitlab_double import GitLabDouble, MergeRequest, Project


def now_iso() -> str:
    """GitLab's timestamps have milliseconds, so two changes in one second still differ."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Delivery:
    event: str
    body: dict[str, Any]
    status: int | None = None  # the receiver's answer, None if not sent or unreachable


class Events:
    def __init__(self, double: GitLabDouble) -> None:
        self.double = double
        self.webhook_url: str | None = None
        self.secret = ""
        self.webhook_uuid = str(uuid.uuid4())
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- payload parts ---------------------------------------------------------------

    def project_json(self, project: Project) -> dict[str, Any]:
        base = self.double.base_url
        return {
            "id": project.id,
            "name": project.path_with_namespace.rsplit("/", 1)[-1],
            "path_with_namespace": project.path_with_namespace,
            "web_url": f"{base}/{project.path_with_namespace}",
            "git_http_url": self.double.clone_url(project),
            "default_branch": project.default_branch,
        }

    def repository_json(self, project: Project) -> dict[str, Any]:
        # As documented for merge request, push, note and job events: no namespace path.
        base = self.double.base_url
        return {
            "name": project.path_with_namespace.rsplit("/", 1)[-1],
            "url": self.double.clone_url(project),
            "description": "",
            "homepage": f"{base}/{project.path_with_namespace}",
        }

    def headers(self, event: str, *, token: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Gitlab-Event": event,
            "X-Gitlab-Token": self.secret if token is None else token,
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "X-Gitlab-Webhook-UUID": self.webhook_uuid,
            "X-Gitlab-Instance": self.double.base_url,
            "User-Agent": "GitLab/17.11.0",
        }

    def emit(self, event: str, body: dict[str, Any]) -> None:
        delivery = Delivery(event, body)
        self.deliveries.append(delivery)
        if self.webhook_url:
            self._spawn(self._deliver(delivery))

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.webhook_url
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                response = await client.post(
                    self.webhook_url, json=delivery.body, headers=self.headers(delivery.event)
                )
                delivery.status = response.status_code
            except httpx.HTTPError:
                pass  # GitLab records the failure and retries later; a test need not

    # ---- events ----------------------------------------------------------------------

    def merge_request(self, project: Project, mr: MergeRequest, action: str) -> None:
        attrs = self.double.mr_json(project, mr)
        head = attrs["sha"]
        attrs |= {"action": action, "last_commit": {"id": head}, "url": attrs["web_url"]}
        self.emit(
            "Merge Request Hook",
            {
                "object_kind": "merge_request",
                "event_type": "merge_request",
                "user": self.double.user_json(mr.author),
                "project": self.project_json(project),
                "repository": self.repository_json(project),
                "object_attributes": attrs,
                "reviewers": [
                    {**self.double.user_json(u), "state": s} for u, s in mr.reviewers.items()
                ],
            },
        )

    def note(self, project: Project, kind: str, iid: int, note: dict[str, Any]) -> None:
        body: dict[str, Any] = {
            "object_kind": "note",
            "event_type": "note",
            "user": note["author"],
            "project": self.project_json(project),
            "repository": self.repository_json(project),
            "object_attributes": {**note, "note": note["body"], "noteable_type": kind},
        }
        if kind == "MergeRequest":
            body["merge_request"] = self.double.mr_json(project, project.mrs[iid])
        else:
            body["issue"] = project.issues[iid]
        self.emit("Note Hook", body)

    async def on_push(self, path: str, before: dict[str, str], after: dict[str, str]) -> None:
        double = self.double
        project = double.projects[path]
        for ref, sha in after.items():
            if before.get(ref) == sha:
                continue
            branch = ref.removeprefix("refs/heads/")
            self.emit(
                "Push Hook",
                {
                    "object_kind": "push",
                    "event_name": "push",
                    "ref": ref,
                    "before": before.get(ref, "0" * 40),
                    "after": sha,
                    "checkout_sha": sha,
                    "project_id": project.id,
                    "project": self.project_json(project),
                    "repository": self.repository_json(project),
                },
            )
            if branch != project.default_branch:
                self.start_ci(project, sha, branch)
            for mr in project.mrs.values():
                if mr.state != "opened" or branch not in (mr.source, mr.target):
                    continue
                if branch == mr.source:
                    if project.reset_approvals_on_push and mr.approvals:
                        mr.approvals.clear()
                        for name, state in mr.reviewers.items():
                            if state == "approved":
                                mr.reviewers[name] = "unapproved"
                    double.add_note(
                        project,
                        "MergeRequest",
                        mr.iid,
                        author=mr.author,
                        body="added 1 commit",
                        system=True,
                    )
                double.touch(mr)
                self.merge_request(project, mr, "update")

    # ---- CI: one pipeline with one `test` job per pushed commit ----------------------

    def start_ci(self, project: Project, sha: str, ref: str) -> None:
        if project.ci_command is None:
            return
        double = self.double
        web = f"{double.base_url}/{project.path_with_namespace}/-"
        pid = next(double.ids)
        # Registered before the push answers, so nobody sees "no pipeline" for this commit.
        pipeline = {
            "id": pid,
            "iid": len(project.pipelines) + 1,
            "project_id": project.id,
            "sha": sha,
            "ref": ref,
            "status": "running",
            "source": "push",
            "created_at": now_iso(),
            "updated_at": now_iso(),
            "web_url": f"{web}/pipelines/{pid}",
        }
        job_id = next(double.ids)
        job = {
            "id": job_id,
            "name": "test",
            "stage": "test",
            "status": "running",
            "allow_failure": False,
            "ref": ref,
            "tag": False,
            "created_at": now_iso(),
            "started_at": now_iso(),
            "finished_at": None,
            "pipeline": {k: pipeline[k] for k in ("id", "project_id", "ref", "sha", "status")},
            "web_url": f"{web}/jobs/{job_id}",
        }
        project.pipelines.append(pipeline)
        project.jobs[pid] = [job]
        double.traces[job_id] = "Running with gitlab-runner 17.11.0 (double)\n"
        self.pipeline_hook(project, pipeline)
        self._spawn(self._run_ci(project, pipeline, job, project.ci_command))

    async def _run_ci(
        self, project: Project, pipeline: dict[str, Any], job: dict[str, Any], command: str
    ) -> None:
        passed, output = await g.run_ci(project.path, pipeline["sha"], command)
        ending = "Job succeeded\n" if passed else "ERROR: Job failed: exit code 1\n"
        self.double.traces[job["id"]] += f"$ {command}\n{output}{ending}"
        self.complete(project, pipeline, "success" if passed else "failed")

    def complete(self, project: Project, pipeline: dict[str, Any], status: str) -> None:
        for job in project.jobs[pipeline["id"]]:
            job.update(status=status, finished_at=now_iso())
            job["pipeline"]["status"] = status
        pipeline.update(status=status, updated_at=now_iso())
        for job in project.jobs[pipeline["id"]]:
            self.emit(
                "Job Hook",
                {
                    "object_kind": "build",
                    "ref": pipeline["ref"],
                    "sha": pipeline["sha"],
                    "build_id": job["id"],
                    "build_name": job["name"],
                    "build_status": status,
                    "pipeline_id": pipeline["id"],
                    "project_id": project.id,
                    "project_name": project.path_with_namespace,
                    "repository": self.repository_json(project),
                },
            )
        self.pipeline_hook(project, pipeline)

    def pipeline_hook(self, project: Project, pipeline: dict[str, Any]) -> None:
        jobs = project.jobs.get(pipeline["id"], [])
        self.emit(
            "Pipeline Hook",
            {
                "object_kind": "pipeline",
                "object_attributes": {**pipeline, "tag": False, "stages": ["test"]},
                "merge_request": None,  # a branch pipeline, not a merge request pipeline
                "project": self.project_json(project),
                "commit": {"id": pipeline["sha"]},
                "builds": [
                    {"id": j["id"], "name": j["name"], "stage": j["stage"], "status": j["status"]}
                    for j in jobs
                ],
            },
        )
