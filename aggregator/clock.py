"""Time, injected. Nothing below the CLI asks the system for the time directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeAlias

# A time as whole microseconds since the epoch (UTC): exact, and cheaper than a datetime where
# hundreds of thousands are compared (the dedupe index's times, the shortlist of candidates).
Micros: TypeAlias = int

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_MICROSECOND = timedelta(microseconds=1)


def micros(when: datetime) -> Micros:
    """A time as microseconds since the epoch; a naive one is UTC (as SQLite's text of it is)."""
    return (when - (_EPOCH if when.tzinfo else _NAIVE_EPOCH)) // _MICROSECOND


def span_micros(span: timedelta) -> Micros:
    """A length of time in microseconds (exact: a timedelta counts whole microseconds)."""
    return span // _MICROSECOND


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: stands still until told to move."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)
