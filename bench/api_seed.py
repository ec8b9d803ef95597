"""Completed tasks written straight into the database, for the API read bench.

Running 400 tasks through the system would take minutes and measure the task path,
not the read path; these rows look like a finished script task's (a merged PR, a
summary, costs), about 1 KB each as JSON, so a page of 50 is about 50 KB.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine, insert

from core.settings import normalise_database_url, sync_database_url
from store.models import Task, new_id
from store.types import utcnow

PROMPT = (
    "Add a short section to README.md describing how to run the test suite locally, "
    "including the make targets and the environment variables the tests read. Keep the "
    "existing headings, wrap lines at 100 characters and do not touch any other file. "
)
SUMMARY = (
    "Added a 'Running the tests' section to README.md with the make targets (install, "
    "test, lint) and the two environment variables the suite reads; no other file changed."
)


def seed_completed_tasks(url: str, *, workspace_id: str, repo_url: str, count: int) -> None:
    # psycopg 3 serves both; SQLite needs the synchronous driver.
    engine = create_engine(sync_database_url(normalise_database_url(url)))
    start = utcnow() - timedelta(hours=count)
    rows = []
    for n in range(count):
        created = start + timedelta(minutes=n)
        rows.append(
            {
                "id": new_id(),
                "workspace_id": workspace_id,
                "title": f"Document the test suite ({n})",
                "prompt": PROMPT,
                "repo_url": repo_url,
                "repo_branch": "main",
                "state": "completed",
                "agent_type": "script",
                "task_type": "coding",
                "session_id": None,
                "pr_url": f"{repo_url}/pulls/{n + 1}",
                "pr_number": n + 1,
                "pr_state": "merged",
                "pr_checks_status": "passing",
                "pr_review_status": "approved",
                "result_summary": SUMMARY,
                "cost_usd": "0.0123",
                "input_tokens": 12000 + n,
                "output_tokens": 800 + n,
                "model_used": "script",
                "metadata_": {"source": "bench"},
                "retry_count": 0,
                "max_retries": 0,
                "priority": 100,
                "transition_seq": 6,
                "created_at": created,
                "updated_at": created + timedelta(seconds=40),
                "started_at": created + timedelta(seconds=2),
                "last_activity_at": created + timedelta(seconds=30),
                "completed_at": created + timedelta(seconds=40),
            }
        )
    try:
        with engine.begin() as conn:
            conn.execute(insert(Task), rows)
    finally:
        engine.dispose()
