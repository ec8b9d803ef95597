from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Role = Literal["admin", "member", "viewer"]


class Principal(BaseModel):
    """Who is calling, and in which workspace."""

    user_id: str
    workspace_id: str
    role: Role
    display_name: str
