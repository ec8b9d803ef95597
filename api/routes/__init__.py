from fastapi import APIRouter

from api.routes import auth, health

ROUTERS: list[APIRouter] = [health.router, auth.router]
