"""Alembic, configured in code so that `optio migrate` works from any directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.settings import sync_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(async_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in passwords must survive configparser interpolation.
    config.set_main_option("sqlalchemy.url", sync_database_url(async_url).replace("%", "%%"))
    return config


def upgrade(async_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(async_url), revision)
