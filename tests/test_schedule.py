"""When a feed is next due: pure decisions from outcome, settings and now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.records import PollOutcome
from aggregator.schedule import (
    BACKOFF_CAP,
    CEILING,
    FIRST_POLL_BURST,
    FIRST_POLL_WINDOW,
    FLOOR,
    JITTER,
    first_due,
    next_due,
)

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=30)


def within_jitter(actual: datetime, expected: timedelta) -> bool:
    delta = actual - NOW
    return expected * (1 - JITTER) <= delta <= expected * (1 + JITTER)


def test_success_waits_about_the_interval():
    due = next_due(NOW, key="a", outcome=PollOutcome.UPDATED, interval=INTERVAL)
    assert within_jitter(due, INTERVAL)


def test_jitter_spreads_feeds_of_one_host():
    dues = {
        next_due(NOW, key=f"https://h/{n}", outcome=PollOutcome.UPDATED, interval=INTERVAL)
        for n in range(20)
    }
    assert len(dues) > 15


def test_ttl_and_max_age_lengthen_within_ceiling():
    due = next_due(
        NOW, key="a", outcome=PollOutcome.NOT_MODIFIED, interval=INTERVAL, ttl_minutes=120
    )
    assert within_jitter(due, timedelta(hours=2))
    due = next_due(
        NOW, key="a", outcome=PollOutcome.UPDATED, interval=INTERVAL, max_age_seconds=10**7
    )
    assert within_jitter(due, CEILING)


def test_interval_below_floor_is_clamped():
    due = next_due(NOW, key="a", outcome=PollOutcome.UPDATED, interval=timedelta(seconds=10))
    assert within_jitter(due, FLOOR)


def test_errors_back_off_exponentially_up_to_cap():
    delays = [
        next_due(NOW, key="a", outcome=PollOutcome.ERROR, interval=INTERVAL, error_streak=n) - NOW
        for n in range(12)
    ]
    assert delays[1] > delays[0] * 1.5
    assert delays[2] > delays[1] * 1.5
    assert max(delays) <= BACKOFF_CAP * (1 + JITTER)


def test_retry_after_is_honoured():
    when = NOW + timedelta(hours=3)
    due = next_due(
        NOW, key="a", outcome=PollOutcome.RATE_LIMITED, interval=INTERVAL, retry_after=when
    )
    assert due == when


def test_gone_feed_is_not_scheduled_again():
    assert next_due(NOW, key="a", outcome=PollOutcome.GONE, interval=INTERVAL) is None


def test_retry_after_in_the_past_falls_back_to_backoff():
    due = next_due(
        NOW,
        key="a",
        outcome=PollOutcome.RATE_LIMITED,
        interval=INTERVAL,
        retry_after=NOW - timedelta(hours=1),
    )
    assert due is not None and within_jitter(due, INTERVAL)


def test_a_few_new_feeds_are_due_at_once():
    assert first_due(NOW, key="a", interval=INTERVAL, added_together=FIRST_POLL_BURST) == NOW


def test_many_new_feeds_get_first_polls_spread_over_the_window():
    dues = [
        first_due(NOW, key=f"https://h/{n}", interval=timedelta(hours=1), added_together=2000)
        for n in range(2000)
    ]
    assert all(NOW <= d < NOW + FIRST_POLL_WINDOW for d in dues)
    first_minute = sum(1 for d in dues if d < NOW + timedelta(minutes=1))
    assert 100 < first_minute < 300  # about a tenth of them, not all
    short = first_due(NOW, key="x", interval=timedelta(minutes=2), added_together=2000)
    assert short < NOW + timedelta(minutes=2)
