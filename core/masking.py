"""Masking secret values in text: what the runner sends and what the control plane stores."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
# Shorter values would mask ordinary words in the log.
MIN_MASKED_LENGTH = 6


class Redactor:
    """Replaces secret values in log content and metadata before anything leaves the run."""

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a value containing another is masked whole.
        self._values = sorted({v for v in values if len(v) >= MIN_MASKED_LENGTH}, key=len)[::-1]

    @property
    def values(self) -> list[str]:
        return list(self._values)

    def with_values(self, values: Iterable[str]) -> Redactor:
        """This redactor's values plus `values` (the run token of one request, say)."""
        return Redactor([*self._values, *values])

    def text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def data(self, value: Any) -> Any:
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value
