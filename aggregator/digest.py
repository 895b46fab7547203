"""Which stories make an edition, in which order. Pure: candidates and `now` in, Edition out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from .config import DigestConfig, FallbackTopic, Subscriber, Topic
from .records import Edition, Section, StoryCandidate


def edition_key(digest: str, scheduled_for: datetime, timezone: str) -> str:
    """Stable name of one run of a digest: names files and Message-IDs, so reruns collide."""
    local = scheduled_for.astimezone(ZoneInfo(timezone))
    return f"{local:%Y-%m-%dT%H%M}-{digest}"


def subject_line(digest: DigestConfig, scheduled_for: datetime, timezone: str) -> str:
    return digest.subject.format(date=scheduled_for.astimezone(ZoneInfo(timezone)))


def subscriber_topics(
    topics: Sequence[Topic],
    digest: DigestConfig,
    subscriber: Subscriber,
    fallback: FallbackTopic | None = None,
) -> list[tuple[str, str]]:
    """(key, title) of the sections this subscriber gets from this digest, in section order.

    The fallback section ("More news") comes last; a digest or subscriber that lists its
    topics gets it only by naming it.
    """
    fallback = fallback or FallbackTopic()
    titles = {t.key: t.title for t in topics}
    titles[fallback.key] = fallback.title
    keys = list(titles)
    if digest.topics:
        keys = [k for k in digest.topics if k in titles]
    if subscriber.topics:
        keys = [k for k in keys if k in subscriber.topics]
    return [(k, titles[k]) for k in keys]


def rank_key(story: StoryCandidate) -> tuple[int, int, float]:
    """More sources first, then feed priority, then the most recent."""
    when = story.published_at or story.first_seen_at
    return (-(1 + len(story.also)), -story.priority, -when.timestamp())


def plan_edition(
    *,
    digest: DigestConfig,
    subscriber: Subscriber,
    topics: Sequence[Topic],
    candidates: Sequence[StoryCandidate],
    scheduled_for: datetime,
    timezone: str,
    fallback: FallbackTopic | None = None,
) -> Edition:
    sections: list[Section] = []
    total = 0
    for key, title in subscriber_topics(topics, digest, subscriber, fallback):
        room = min(digest.max_per_topic, digest.max_total - total)
        if room <= 0:
            break
        chosen = sorted((c for c in candidates if c.topic == key), key=rank_key)[:room]
        if chosen:
            sections.append(Section(topic=key, title=title, stories=tuple(chosen)))
            total += len(chosen)
    return Edition(
        digest=digest.key,
        recipient=subscriber.email,
        edition_key=edition_key(digest.key, scheduled_for, timezone),
        cutoff=scheduled_for,
        subject=subject_line(digest, scheduled_for, timezone),
        sections=tuple(sections),
    )
