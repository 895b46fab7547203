"""Which stories make an edition, in which order. Pure: candidates and `now` in, Edition out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .config import DigestConfig, FallbackTopic, Subscriber, Topic
from .records import Edition, Section, StoryCandidate


def edition_key(digest: str, scheduled_for: datetime, timezone: str) -> str:
    """Stable name of one run of a digest: names files and Message-IDs, so reruns collide."""
    local = scheduled_for.astimezone(ZoneInfo(timezone))
    return f"{local:%Y-%m-%dT%H%M}-{digest}"


PUBLISHED_GRACE = timedelta(hours=12)  # how long before an edition's start an item may be
# published and still be news: feeds show items hours after their pubDate, archives are older


def published_after(window: timedelta, since: datetime, cutoff: datetime) -> datetime:
    """Items published before this are old news even when first seen now (a new feed's
    archive): the edition's start (or its window, if longer ago), less PUBLISHED_GRACE, so
    an item published just before the previous edition but polled just after it still counts."""
    return min(since, cutoff - window) - PUBLISHED_GRACE


@dataclass(frozen=True, slots=True)
class AgeCheck:
    """The age rule for one item and the edition of one digest that would take it."""

    digest: str
    window_start: datetime  # the edition's start, or its window before the cutoff if earlier
    cutoff: datetime  # the edition that takes what was first seen when the item was
    published_after: datetime  # window_start less PUBLISHED_GRACE
    too_old: bool  # published before published_after: never in that edition


def is_archive(published_at: datetime | None, *, first_poll: bool) -> bool:
    """Whether an entry is its feed's archive rather than news: it has no published time and
    was found on the feed's first successful poll. Nothing tells which of such entries are
    new (most feeds list the newest first, some the oldest; a guess of "the first few" would
    send old news from those), so none is: a new feed's archive does not flood the next
    edition when it has no dates either. An undated entry a later poll finds is news from
    when it was first seen."""
    return first_poll and published_at is None


def age_check(
    digest: DigestConfig,
    *,
    published_at: datetime | None,
    previous_cutoff: datetime | None,
    cutoff: datetime,
) -> AgeCheck:
    """Whether an item published at ``published_at`` is too old for the edition at ``cutoff``
    whose predecessor ended at ``previous_cutoff`` (None: a first edition, which looks back
    one window). An item without a published time is never too old."""
    since = previous_cutoff if previous_cutoff is not None else cutoff - digest.window
    bound = published_after(digest.window, since, cutoff)
    return AgeCheck(
        digest=digest.key,
        window_start=bound + PUBLISHED_GRACE,
        cutoff=cutoff,
        published_after=bound,
        too_old=published_at is not None and published_at < bound,
    )


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
    """More sources first, then feed priority, then the most recent.

    Sources are those the story is credited to, each once (as "Also covered by" shows them,
    StoryCandidate.source_keys): a feed that lists the story twice carries it once; two feeds
    that are shown under one name are two.
    """
    when = story.published_at or story.first_seen_at
    sources = len(set(story.source_keys()))
    return (-sources, -story.priority, -when.timestamp())


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


def drop_lowest(edition: Edition, count: int) -> Edition:
    """``edition`` without its ``count`` lowest-ranked stories (by ``rank_key``, across all
    sections; among equals the later one goes first); sections left empty are dropped.

    Used when a rendered edition is too big for the mail clients' clipping limit.
    """
    ranked = sorted(
        enumerate(s for sec in edition.sections for s in sec.stories),
        key=lambda pair: (rank_key(pair[1]), pair[0]),
    )
    gone = {s.story_id for _, s in ranked[max(0, len(ranked) - count) :]} if count > 0 else set()
    sections = tuple(
        Section(topic=sec.topic, title=sec.title, stories=kept)
        for sec in edition.sections
        if (kept := tuple(s for s in sec.stories if s.story_id not in gone))
    )
    return replace(edition, sections=sections)


def recorded_edition(
    *,
    digest: DigestConfig,
    recipient: str,
    edition_key: str,
    cutoff: datetime,
    topics: Sequence[Topic],
    stories: Sequence[StoryCandidate],
    timezone: str,
    fallback: FallbackTopic | None = None,
) -> Edition:
    """An edition chosen (and recorded) earlier, put together again from its stories for
    rendering: sections in the digest's order (topics no longer configured last), stories
    ranked as ``plan_edition`` ranks them. No caps: the recorded stories are the edition."""
    fallback = fallback or FallbackTopic()
    titles = {t.key: t.title for t in topics}
    titles[fallback.key] = fallback.title
    order = [k for k in digest.topics if k in titles] or list(titles)
    order += sorted({s.topic for s in stories} - set(order))
    sections = []
    for key in order:
        chosen = sorted((s for s in stories if s.topic == key), key=rank_key)
        if chosen:
            sections.append(Section(topic=key, title=titles.get(key, key), stories=tuple(chosen)))
    return Edition(
        digest=digest.key,
        recipient=recipient,
        edition_key=edition_key,
        cutoff=cutoff,
        subject=subject_line(digest, cutoff, timezone),
        sections=tuple(sections),
    )
