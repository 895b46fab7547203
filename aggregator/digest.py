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


def is_archive(published_at: datetime | None, *, first_poll: bool) -> bool:
    """Whether an entry is its feed's archive rather than news: it has no published time and
    was found on the feed's first successful poll. Nothing tells which of such entries are
    new (most feeds list the newest first, some the oldest; a guess of "the first few" would
    send old news from those), so none is: a new feed's archive does not flood the next
    edition when it has no dates either. An undated entry a later poll finds is news from
    when it was first seen."""
    return first_poll and published_at is None


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


def choose_sections(
    *,
    digest: DigestConfig,
    subscriber: Subscriber,
    topics: Sequence[Topic],
    candidates: Sequence[StoryCandidate],
    fallback: FallbackTopic | None = None,
) -> tuple[Section, ...]:
    """The sections of one subscriber's edition: per topic in section order, the best-ranked
    candidates, at most max_per_topic each and max_total in all."""
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
    return tuple(sections)


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
    return Edition(
        digest=digest.key,
        recipient=subscriber.email,
        edition_key=edition_key(digest.key, scheduled_for, timezone),
        cutoff=scheduled_for,
        subject=subject_line(digest, scheduled_for, timezone),
        sections=choose_sections(
            digest=digest,
            subscriber=subscriber,
            topics=topics,
            candidates=candidates,
            fallback=fallback,
        ),
    )


# Placement.reason: the story is in the planned edition (the size cap may still drop it) ...
PLANNED = "planned"
# ... or left out: its topic is none of the subscriber's sections; its section was full
# (max_per_topic); the edition was (max_total).
NOT_THEIR_TOPIC, MAX_PER_TOPIC, MAX_TOTAL = "topics", "max_per_topic", "max_total"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one candidate story stands in one subscriber's planned edition."""

    reason: str  # PLANNED, NOT_THEIR_TOPIC, MAX_PER_TOPIC or MAX_TOTAL
    topic: str  # the story's topic key
    rank: int = 0  # its place in its topic's ranking, 1 first (0: not their topic)
    ranked: int = 0  # candidates ranked in that topic
    room: int = 0  # how many of them the section could take


def story_placement(
    story: StoryCandidate,
    *,
    digest: DigestConfig,
    subscriber: Subscriber,
    topics: Sequence[Topic],
    candidates: Sequence[StoryCandidate],
    sections: Sequence[Section],
    fallback: FallbackTopic | None = None,
) -> Placement:
    """Whether ``story`` (one of ``candidates``) is in ``sections``, the edition
    ``choose_sections`` planned from ``candidates`` for this subscriber, and if not, which cap
    left it out. The rendered size is not known here: a planned story may still be dropped to
    fit (drop_lowest)."""
    keys = [k for k, _ in subscriber_topics(topics, digest, subscriber, fallback)]
    if story.topic not in keys:
        return Placement(NOT_THEIR_TOPIC, story.topic)
    ranked = sorted((c for c in candidates if c.topic == story.topic), key=rank_key)
    rank = 1 + next(i for i, c in enumerate(ranked) if c.story_id == story.story_id)
    before = keys.index(story.topic)
    taken = sum(len(sec.stories) for sec in sections if keys.index(sec.topic) < before)
    room = max(0, min(digest.max_per_topic, digest.max_total - taken))
    if any(s.story_id == story.story_id for sec in sections for s in sec.stories):
        reason = PLANNED
    else:  # past its section's room: the section's own cap, or what the total left it
        reason = MAX_PER_TOPIC if rank > digest.max_per_topic else MAX_TOTAL
    return Placement(reason, story.topic, rank, len(ranked), room)


def why_no_candidate(
    *,
    story_id: int,
    story_first_seen: datetime,
    item_first_seen: datetime,
    item_published: datetime | None,
    item_filtered: bool,
    item_archived: bool,
    since: datetime,
    after_story_id: int | None,
    cutoff: datetime,
    upto_story_id: int | None,
    published_after: datetime,
) -> str:
    """Why a story is not among the candidates of an edition (as store.story_candidates
    chooses them: new in (since, cutoff] or above the previous watermark, at most the
    edition's own), told by one of its items: "not_new" (an earlier edition's), "later" (the
    next edition's), "filtered", "archive" (is_archive), "too_old" (published before
    ``published_after``), else "other" (the item qualifies; the story changed since)."""
    if story_first_seen <= since and (after_story_id is None or story_id <= after_story_id):
        return "not_new"
    late = upto_story_id is not None and story_id > upto_story_id
    if late or story_first_seen > cutoff or item_first_seen > cutoff:
        return "later"
    if item_filtered:
        return "filtered"
    if item_archived:
        return "archive"
    if item_published is not None and item_published < published_after:
        return "too_old"
    return "other"


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
