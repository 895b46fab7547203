"""When is a feed next due? Pure decisions of outcome, settings and `now`."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from .records import PollOutcome

FLOOR = timedelta(minutes=5)  # never poll a feed more often, whatever it asks
CEILING = timedelta(hours=24)  # never leave a feed unpolled longer, unless it is gone
BACKOFF_CAP = timedelta(hours=24)
GONE_RECHECK = timedelta(days=7)  # a gone feed is looked at again weekly, in case it returns
JITTER = 0.1  # +-10% so feeds of one host do not fire together


def jitter_fraction(key: str, now: datetime) -> float:
    """A stable pseudo-random number in [-1, 1) from the feed and the time: pure and testable."""
    digest = hashlib.blake2b(f"{key}|{now.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def next_due(
    now: datetime,
    *,
    key: str,
    outcome: PollOutcome,
    interval: timedelta,
    error_streak: int = 0,
    retry_after: datetime | None = None,
    ttl_minutes: int | None = None,
    max_age_seconds: int | None = None,
) -> datetime:
    """The next poll time for one feed after an attempt that ended in ``outcome``.

    ``error_streak`` counts failures before this one.
    """
    spread = 1.0 + JITTER * jitter_fraction(key, now)
    if outcome is PollOutcome.GONE:
        return now + GONE_RECHECK
    if outcome is PollOutcome.RATE_LIMITED and retry_after is not None and retry_after > now:
        return min(retry_after, now + BACKOFF_CAP)
    if outcome in (PollOutcome.ERROR, PollOutcome.RATE_LIMITED):
        # Exponential backoff from the normal interval: 1x, 2x, 4x ... up to the cap.
        delay: timedelta = min(interval * 2 ** min(error_streak, 16), BACKOFF_CAP)
        return now + max(FLOOR, delay * spread)
    wanted = interval
    if ttl_minutes:
        wanted = max(wanted, timedelta(minutes=ttl_minutes))
    if max_age_seconds:
        wanted = max(wanted, timedelta(seconds=max_age_seconds))
    wanted = min(max(wanted, FLOOR), CEILING)
    return now + wanted * spread
