from fastapi import APIRouter

from api.routes import auth, health, internal, pull_requests, repos, tasks

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    tasks.router,
    repos.router,
    pull_requests.router,
    internal.router,
]
