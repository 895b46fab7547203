"""Rule-based topic assignment: keywords, plurals, accents, headline weight, feed prior."""

from __future__ import annotations

from aggregator.categorize import FALLBACK_TOPIC, categorize
from aggregator.config import Topic

TOPICS = (
    Topic("world", "World", ("ukraine", "russia", "north korea", "sanction")),
    Topic("business", "Business", ("economy", "market", "earnings")),
)


def test_headline_keyword_wins():
    choice = categorize("Russia and North Korea sign deal", "", topics=TOPICS, feed_topic=None)
    assert choice.topic == "world"
    assert "headline:north korea" in choice.evidence


def test_plural_and_accent_tolerant():
    assert (
        categorize("Markets rally as economies recover", "", topics=TOPICS, feed_topic=None).topic
        == "business"
    )
    accented = (Topic("world", "World", ("kyiv",)), Topic("x", "X", ("cafe",)))
    assert categorize("Le CAFÉ reopens", "", topics=accented, feed_topic=None).topic == "x"


def test_word_boundaries_are_respected():
    assert (
        categorize("Prussian history exhibit", "", topics=TOPICS, feed_topic=None).topic
        == FALLBACK_TOPIC
    )


def test_headline_outweighs_lead_and_feed_prior_breaks_silence():
    choice = categorize(
        "Earnings season opens", "Officials in Ukraine said", topics=TOPICS, feed_topic=None
    )
    assert choice.topic == "business"
    assert categorize("Quiet day", "", topics=TOPICS, feed_topic="world").topic == "world"


def test_nothing_matches_goes_to_fallback():
    assert (
        categorize("Cat rescued from tree", "", topics=TOPICS, feed_topic=None).topic
        == FALLBACK_TOPIC
    )
