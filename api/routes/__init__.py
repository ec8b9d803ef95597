from fastapi import APIRouter

from api.deps import guard_routes
from api.routes import (
    analytics,
    auth,
    blueprints,
    graph,
    health,
    hooks,
    internal,
    issues,
    legacy,
    mcp_servers,
    metrics,
    outgoing_webhooks,
    pull_requests,
    push_credentials,
    repos,
    run_ingest,
    secrets,
    setup,
    skills,
    slack,
    tasks,
    templates,
    tickets,
    triggers,
    webhooks,
    workspaces,
)

ROUTERS: list[APIRouter] = [
    health.router,
    metrics.router,
    auth.router,
    tasks.router,
    graph.router,
    blueprints.router,
    triggers.router,
    hooks.router,
    templates.router,
    legacy.router,
    repos.router,
    pull_requests.router,
    internal.router,
    run_ingest.router,
    mcp_servers.router,
    skills.router,
    workspaces.router,
    secrets.router,
    setup.router,
    webhooks.router,
    outgoing_webhooks.router,
    slack.router,
    analytics.router,
    push_credentials.router,
    tickets.router,
    issues.router,
]

# Every route is authenticated and role-checked unless api/roles.py lists it as public.
for _router in ROUTERS:
    guard_routes(_router)
