"""The attacks of issue 13 against the real API: people of other workspaces included."""

from __future__ import annotations

from tests.identity.conftest import people

__all__ = ["people"]
