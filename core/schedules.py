"""Validation of schedule triggers: the cron dialect Temporal Schedules accept, and time zones.

Temporal would refuse a bad expression too, but with a gRPC message; checking here
gives a 400 that names the field and the problem, before anything is created.
Accepted (Temporal's `cron_string`): 5 fields (minute hour day-of-month month
day-of-week), 6 (+ year), 7 (second first, + year); the shorthands @yearly,
@annually, @monthly, @weekly, @daily, @midnight, @hourly; and `@every <n><s|m|h|d>[/<phase>]`.
"""

from __future__ import annotations

import re
import zoneinfo

SHORTHANDS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})
EVERY = re.compile(r"^@every\s+(?P<interval>\d+[smhd])(/(?P<phase>\d+[smhd]))?$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Temporal keeps intervals as Go durations (at most ~292 years); a year is plenty.
MAX_EVERY_SECONDS = 366 * 86400
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

# (name, low, high, symbolic names starting at `low`)
_SECOND = ("second", 0, 59, None)
_MINUTE = ("minute", 0, 59, None)
_HOUR = ("hour", 0, 23, None)
_DOM = ("day-of-month", 1, 31, None)
_MONTH = ("month", 1, 12, MONTHS)
_DOW = ("day-of-week", 0, 7, DAYS)  # 7 is Sunday too, as in most crons
_YEAR = ("year", 1970, 2999, None)
LAYOUTS = {
    5: (_MINUTE, _HOUR, _DOM, _MONTH, _DOW),
    6: (_MINUTE, _HOUR, _DOM, _MONTH, _DOW, _YEAR),
    7: (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW, _YEAR),
}


class ScheduleError(ValueError):
    pass


def validate_cron(expression: str) -> str:
    """The expression, whitespace-normalised; ScheduleError says what is wrong."""
    text = " ".join(expression.split())
    if not text:
        raise ScheduleError("cronExpression is empty")
    if text.startswith("@"):
        if text.lower() in SHORTHANDS or text.lower() == "@midnight":
            return text
        every = EVERY.match(text)
        if every is not None:
            _check_every(text, every["interval"], every["phase"])
            return text
        raise ScheduleError(f"unknown cron shorthand {text!r}")
    fields = text.split(" ")
    layout = LAYOUTS.get(len(fields))
    if layout is None:
        raise ScheduleError(f"cron expression needs 5, 6 or 7 fields, got {len(fields)}: {text!r}")
    for value, spec in zip(fields, layout, strict=True):
        _check_field(value, spec)
    return text


def _check_every(text: str, interval: str, phase: str | None) -> None:
    seconds = int(interval[:-1]) * UNIT_SECONDS[interval[-1]]
    # Temporal refuses a zero interval (the schedule would fire without pause).
    if not 0 < seconds <= MAX_EVERY_SECONDS:
        raise ScheduleError(f"the interval of {text!r} must be between 1s and 366d")
    if phase is not None and int(phase[:-1]) * UNIT_SECONDS[phase[-1]] >= seconds:
        raise ScheduleError(f"the phase of {text!r} must be shorter than its interval")


def _check_field(value: str, spec: tuple[str, int, int, list[str] | None]) -> None:
    name, low, high, names = spec
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ScheduleError(f"bad step {step!r} in {name} field {value!r}")
        if base in ("*", "?"):
            continue
        bounds = base.split("-")
        if len(bounds) > 2:
            raise ScheduleError(f"bad range {base!r} in {name} field {value!r}")
        numbers = [_number(b, name, names, value) for b in bounds]
        for n in numbers:
            if not low <= n <= high:
                raise ScheduleError(f"{name} {n} is out of range {low}-{high} in {value!r}")
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise ScheduleError(f"range {base!r} runs backwards in {name} field")


def _number(token: str, name: str, names: list[str] | None, value: str) -> int:
    if token.isdigit():
        return int(token)
    if names and token.upper() in names:
        return names.index(token.upper()) + (1 if names is MONTHS else 0)
    raise ScheduleError(f"{token!r} is not a valid {name} in {value!r}")


def validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc
    return name
