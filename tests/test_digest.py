"""digest: which stories make an edition, in which order (pure: candidates in, Edition out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config import DigestConfig, Subscriber, Topic
from aggregator.digest import PLANNED, drop_lowest, plan_edition, rank_key, story_placement
from aggregator.records import Edition, Section, StoryCandidate

CUTOFF = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def story(
    n: int, source: str, also: tuple[tuple[str, str], ...], *, age: timedelta
) -> StoryCandidate:
    return StoryCandidate(
        story_id=n,
        item_id=n,
        title=f"Headline {n}",
        lead="",
        link=f"https://example.org/{n}",
        source=source,
        published_at=CUTOFF - age,
        first_seen_at=CUTOFF - age,
        topic="world",
        priority=0,
        also=also,
    )


def test_a_story_counts_the_sources_that_carry_it_not_their_items():
    # one feed listing its story twice (another link) is one source, not two
    twice = story(1, "Desk", (("Desk", "https://example.org/1b"),), age=timedelta(hours=1))
    two_feeds = story(2, "Desk", (("Wire", "https://wire.example/2"),), age=timedelta(hours=5))
    alone = story(3, "Wire", (), age=timedelta(hours=2))
    assert sorted([twice, two_feeds, alone], key=rank_key) == [two_feeds, twice, alone]
    edition = Edition(
        digest="daily",
        recipient="ann@example.org",
        edition_key="k",
        cutoff=CUTOFF,
        subject="s",
        sections=(Section("world", "World", (two_feeds, twice)),),
    )
    assert drop_lowest(edition, 1).story_ids == (2,)


def test_two_feeds_shown_under_one_name_are_two_sources():
    # two unnamed feeds whose titles are alike: two feeds, however they are shown
    two = replace(
        story(1, "Desk", (("Desk", "https://b.example/1"),), age=timedelta(hours=5)),
        source_feed="https://a.example/feed",
        also_feeds=("https://b.example/feed",),
    )
    once = replace(
        story(2, "Desk", (("Desk", "https://a.example/2b"),), age=timedelta(hours=1)),
        source_feed="https://a.example/feed",
        also_feeds=("https://a.example/feed",),
    )
    assert sorted([once, two], key=rank_key) == [two, once]


@pytest.mark.parametrize(("per_topic", "total"), [(8, 40), (2, 40), (3, 4), (1, 1), (5, 2)])
def test_story_placement_says_planned_exactly_for_the_stories_plan_edition_takes(per_topic, total):
    topics = [Topic(key=k, title=k.title()) for k in ("world", "business", "tech")]
    digest = DigestConfig(
        key="daily", schedule="0 7 * * *", subject="s", max_per_topic=per_topic, max_total=total
    )
    candidates = [
        replace(
            story(
                n,
                f"Feed {n % 3}",
                (("Wire", "https://w.example/"),) * (n % 2),
                age=timedelta(hours=n),
            ),
            topic=("world", "business", "tech", "more")[n % 4],
        )
        for n in range(1, 16)
    ]
    for reader in (
        Subscriber("a@example.org"),
        Subscriber("b@example.org", topics=("tech", "world")),
    ):
        edition = plan_edition(
            digest=digest,
            subscriber=reader,
            topics=topics,
            candidates=candidates,
            scheduled_for=CUTOFF,
            timezone="UTC",
        )
        for c in candidates:
            place = story_placement(
                c,
                digest=digest,
                subscriber=reader,
                topics=topics,
                candidates=candidates,
                sections=edition.sections,
            )
            assert (place.reason == PLANNED) == (c.story_id in edition.story_ids), (c, place)
            if place.reason == PLANNED:  # its rank and room agree with the plan
                assert place.rank <= place.room, (c, place)
            elif place.reason == "max_per_topic":
                assert place.rank > per_topic
            elif place.reason == "max_total":
                assert place.room < place.rank <= per_topic
