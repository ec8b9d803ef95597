"""USD amounts on the wire: decimal strings ("12.45"); numbers are accepted and converted."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

MONEY_PATTERN = r"^\d{1,7}(\.\d{1,6})?$"


def _to_text(value: object) -> object:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Usd = Annotated[str, BeforeValidator(_to_text), Field(pattern=MONEY_PATTERN, max_length=20)]
