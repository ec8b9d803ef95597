"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, even from SQLite which stores naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # SQLite hands back the text SQLAlchemy stored ("2026-01-02 03:04:05.000006"):
        # parsed here in one C call instead of DateTime's regex and then this class's
        # own pass, some 5 us a value -- a page of 50 tasks has 300 of them.
        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            # "YYYY-MM-DD HH:MM:SS[.ffffff]" without an offset (what SQLAlchemy stores),
            # tested here rather than in a helper: a call per value was a third of this.
            if (
                value.__class__ is str
                and len(value) >= 19
                and value[10] in " T"
                and value[-6] not in "+-"
                and value[-1] != "Z"
            ):
                # Read as UTC by the parser itself: `.replace(tzinfo=UTC)` after it
                # costs four times the parse (2.4 us a value against 0.5).
                return datetime.fromisoformat(value + "+00:00")
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
