"""Small builders shared by tests: records with every field defaulted but the ones a test
cares about, and a feed row in a real store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregator.records import RawEntry
from aggregator.store import Store


def raw_entry(**fields: Any) -> RawEntry:
    """A RawEntry as a feed with nothing but ``fields`` would give it."""
    base: dict[str, Any] = dict(
        guid=None,
        link=None,
        orig_link=None,
        title=None,
        content_html=(),
        summary_html=None,
        author=None,
        published=None,
        updated=None,
        dc_date=None,
        categories=(),
        image_url=None,
    )
    base.update(fields)
    return RawEntry(**base)


def feed_row(store: Store, url: str, now: datetime) -> int:
    """The id of the feed row for ``url``, made if missing."""
    store.sync_feeds([(url, url)], now)
    return next(s.id for s in store.feed_states() if s.url == url)
