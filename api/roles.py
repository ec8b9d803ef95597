"""The minimum role of every route, decided in one place from its method and path.

Reads need viewer, writes need member, writes that manage the workspace itself need
admin. Routers need no per-route annotation, so a route added later is guarded from
its first commit (tests/identity sweeps every route in the OpenAPI document).
"""

from __future__ import annotations

from schemas.auth import Role

RANK: dict[Role, int] = {"viewer": 1, "member": 2, "admin": 3}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# About the caller, not about the active workspace: any signed-in user may call these.
PERSONAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/ws-token"),
        ("POST", "/api/auth/api-keys"),
        ("DELETE", "/api/auth/api-keys/{key_id}"),
        ("POST", "/api/workspaces"),
        ("POST", "/api/workspaces/{workspace_id}/switch"),
    }
)

# Writes under these prefixes configure the workspace (and what its agents can reach).
ADMIN_PREFIXES = (
    "/api/repos",
    "/api/secrets",
    "/api/workspaces",
    "/api/mcp-servers",
    "/api/skills",
    "/api/setup",
    "/api/settings",
    "/api/webhooks",
    "/api/slack",
    "/api/cluster",
    "/api/github-token",
    # Providers hold credentials and decide what becomes a task.
    "/api/tickets/providers",
)

# Exact (method, path) overrides, for the odd route the rules above get wrong.
OVERRIDES: dict[tuple[str, str], Role] = {
    # Finds any user of the instance by email: for admins adding members only.
    ("GET", "/api/users/lookup"): "admin",
    # The cluster's machines and pods are the operator's view (seed: admin only).
    ("GET", "/api/cluster/nodes"): "admin",
    ("GET", "/api/cluster/pods"): "admin",
    ("GET", "/api/cluster/pods/{name}/logs"): "admin",
}


# Reachable without a user credential: what a signed-out browser needs. Everything else
# is authenticated and role-checked (api/deps.guard_routes), whether or not its handler
# asks for the principal.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/health"),
        # Prometheus scrapes with OPTIO_METRICS_TOKEN, checked by the handler.
        ("GET", "/metrics"),
        ("GET", "/api/auth/providers"),
        ("GET", "/api/auth/{provider}/login"),
        ("GET", "/api/auth/{provider}/callback"),
        ("GET", "/api/setup/status"),
        # Anonymous only until setup is complete; the handler then requires an admin.
        ("POST", "/api/setup/complete"),
        # Receivers that authenticate by their signatures. Listed one by one: the rest
        # of /api/webhooks/ is the workspace's outgoing webhooks, for signed-in admins.
        ("POST", "/api/webhooks/github"),
        ("POST", "/api/webhooks/gitlab"),
        ("POST", "/api/webhooks/slack/actions"),
    }
)
# Receivers that authenticate by other means: per-run tokens, webhook signatures.
PUBLIC_PREFIXES = ("/api/internal/", "/api/hooks/")


def is_public(method: str, path: str) -> bool:
    return (method.upper(), path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def minimum_role(method: str, path: str) -> Role | None:
    """None means any signed-in user (a personal route)."""
    method = method.upper()
    if (method, path) in OVERRIDES:
        return OVERRIDES[(method, path)]
    if (method, path) in PERSONAL:
        return None
    if method in READ_METHODS:
        return "viewer"
    if any(path == p or path.startswith(p + "/") for p in ADMIN_PREFIXES):
        return "admin"
    return "member"


def allows(role: Role, minimum: Role | None) -> bool:
    return minimum is None or RANK[role] >= RANK[minimum]
