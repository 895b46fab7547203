"""Topic assignment and the reason for it. Pure: no I/O.

A first, rule-based layer: editor keywords on word boundaries (case- and accent-folded, plural
tolerant), headline evidence weighing more than lead evidence, the feed's topic as a prior.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .config import Topic

FALLBACK_TOPIC = "more"
FALLBACK_TITLE = "More news"
HEADLINE_WEIGHT = 2.0
LEAD_WEIGHT = 1.0
FEED_PRIOR = 1.0
THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class TopicChoice:
    topic: str  # a topic key, or FALLBACK_TOPIC
    score: float
    evidence: tuple[str, ...]  # e.g. ("headline:ukraine", "feed:world")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in fold(keyword).split()]
    # Tolerate plurals on the last word ("market" matches "markets", "economy" "economies").
    last = words[-1]
    if last.endswith("y") and len(last) > 2:
        last = f"(?:{last}|{last[:-1]}ies)"
    else:
        last = f"{last}(?:s|es)?"
    return re.compile(r"\b" + r"\s+".join([*words[:-1], last]) + r"\b")


def categorize(
    title: str, lead: str, *, topics: Sequence[Topic], feed_topic: str | None
) -> TopicChoice:
    folded_title, folded_lead = fold(title), fold(lead)
    best = TopicChoice(FALLBACK_TOPIC, 0.0, ())
    for topic in topics:
        score = 0.0
        evidence: list[str] = []
        for keyword in topic.keywords:
            pattern = _keyword_pattern(keyword)
            if pattern.search(folded_title):
                score += HEADLINE_WEIGHT
                evidence.append(f"headline:{keyword}")
            elif pattern.search(folded_lead):
                score += LEAD_WEIGHT
                evidence.append(f"lead:{keyword}")
        if feed_topic == topic.key:
            score += FEED_PRIOR
            evidence.append(f"feed:{topic.key}")
        if score > best.score:
            best = TopicChoice(topic.key, score, tuple(evidence))
    if best.score < THRESHOLD:
        return TopicChoice(FALLBACK_TOPIC, best.score, best.evidence)
    return best
