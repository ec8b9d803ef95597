"""Activities: thin, typed wrappers over store/ and integrations/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.agent_runs import AgentRunActivities
from activities.blueprints import BlueprintActivities
from activities.graph import GraphActivities
from activities.limiter import acquire_slot, find_closed_workflows, release_slot
from activities.notify import DeliveryActivities
from activities.pull_requests import PullRequestActivities
from activities.review import ReviewActivities
from activities.standalone_runs import StandaloneRunActivities
from activities.tasks import TaskActivities
from activities.tickets import TicketActivities
from core.settings import Settings


def build_activities(
    *, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> list[Callable[..., Any]]:
    tasks = TaskActivities(settings=settings, sessions=sessions)
    runs = AgentRunActivities(settings=settings, sessions=sessions)
    prs = PullRequestActivities(settings=settings, sessions=sessions)
    graph = GraphActivities(settings=settings, sessions=sessions)
    blueprints = BlueprintActivities(settings=settings, sessions=sessions)
    standalone = StandaloneRunActivities(settings=settings, sessions=sessions)
    reviews = ReviewActivities(settings=settings, sessions=sessions)
    deliveries = DeliveryActivities(settings=settings, sessions=sessions)
    tickets = TicketActivities(settings=settings, sessions=sessions)
    return [
        acquire_slot,
        release_slot,
        find_closed_workflows,
        tasks.load_task,
        tasks.record_transition,
        tasks.patch_task,
        runs.prepare_worktree,
        runs.run_agent,
        runs.stop_agent_run,
        runs.place_run,
        runs.record_lost_run,
        prs.open_pull_request,
        prs.watch_pull_request,
        prs.merge_pull_request,
        prs.pr_feedback,
        prs.finish_pull_request,
        tasks.reset_for_redo,
        tasks.release_worktree,
        graph.load_graph,
        graph.notify_task_finished,
        graph.load_steps,
        graph.start_task,
        blueprints.instantiate_blueprint,
        blueprints.await_task_settled,
        standalone.open_run,
        standalone.record_run_state,
        standalone.run_attempt,
        reviews.launch_review,
        reviews.post_verdict,
        deliveries.deliver,
        tickets.sync_ticket_provider,
        tickets.finish_ticket,
    ]
