"""When is a feed next due? Pure decisions of outcome, settings and `now`."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from .records import PollOutcome

FLOOR = timedelta(minutes=5)  # never poll a feed more often, whatever it asks
CEILING = timedelta(hours=24)  # never leave a feed unpolled longer, unless it is gone
BACKOFF_CAP = timedelta(hours=24)
JITTER = 0.1  # +-10% so feeds of one host do not fire together
FIRST_POLL_BURST = 50  # up to this many feeds added at once are all due at once
FIRST_POLL_WINDOW = timedelta(minutes=10)  # more than that: first polls spread over this window


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
) -> datetime | None:
    """The next poll time for one feed after an attempt that ended in ``outcome``.

    ``error_streak`` counts failures before this one. None for a feed that answered 410
    Gone: the scheduler stops polling it until an editor acts (a hand-run ``fetch`` still
    tries it, and a success clears the flag).
    """
    spread = 1.0 + JITTER * jitter_fraction(key, now)
    if outcome is PollOutcome.GONE:
        return None
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


def first_due(now: datetime, *, key: str, interval: timedelta, added_together: int) -> datetime:
    """When a feed just added to the store is first polled.

    A few new feeds are due at once. A large batch (a first start with thousands of feeds, an
    OPML import) is spread over FIRST_POLL_WINDOW (or the interval, when shorter) so the
    hosts and the poller do not get every request in the same minute, and the feeds stay
    spread afterwards, each on its own interval.
    """
    if added_together <= FIRST_POLL_BURST:
        return now
    fraction = (jitter_fraction(key, now) + 1.0) / 2.0  # [0, 1)
    return now + min(FIRST_POLL_WINDOW, interval) * fraction


def feed_health(
    now: datetime,
    *,
    error_streak: int,
    gone: bool,
    last_new_item_at: datetime | None,
    added_at: datetime,
    stale_after: timedelta,
) -> tuple[str, ...]:
    """Flags for editors: "gone" (410: no longer polled), "failing" (the last attempt failed;
    the streak says how long), "stale" (nothing new for `stale_after`, counted from when the
    feed was added if it never brought anything)."""
    flags = []
    if gone:
        flags.append("gone")
    elif error_streak > 0:
        flags.append("failing")
    if now - (last_new_item_at or added_at) >= stale_after:
        flags.append("stale")
    return tuple(flags)
