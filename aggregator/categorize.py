"""Topic assignment, filters, and the reasons for both. Pure: no I/O.

    label_items(items, feed_topic=, feed_filters=, rules=, model=) -> [TopicLabel]
        filters     block rules (global, then the feed's): any match -> filtered
                    keep rules (global, then the feed's): where a level has some, one must match
        rules       per topic: keywords and patterns in the headline (2 points) or the lead (1),
                    the feed's own category labels matching the topic's aliases (1.5),
                    the feed's `topic:` as a prior (1); an exclusion word vetoes the topic
        model       + model_weight x how far the topic model's probability rises above
                    chance (0 at 1/k for k topics, 1 when certain; a TopicScorer, optional)
        choice      total = (rules + model) x topic weight; the best total wins when it
                    reaches the threshold, else the item goes to the fallback topic

Filtered items keep a topic too (so `explain` can show it); they never reach an edition.
Every number that went into a choice is kept in TopicLabel.evidence, JSON-ready.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from functools import lru_cache
from typing import Protocol

from .config import (
    DEFAULT_FALLBACK_TITLE,
    DEFAULT_FALLBACK_TOPIC,
    DEFAULT_MODEL_WEIGHT,
    DEFAULT_TOPIC_THRESHOLD,
    Config,
    FallbackTopic,
    FilterRule,
    Filters,
    Topic,
)
from .records import TopicLabel
from .text import fold_accents as fold  # 'CAFÉ' -> 'cafe'

FALLBACK_TOPIC = DEFAULT_FALLBACK_TOPIC  # the shipped default; settings.fallback_topic changes it
FALLBACK_TITLE = DEFAULT_FALLBACK_TITLE
HEADLINE_WEIGHT = 2.0  # a keyword or pattern found in the headline
LEAD_WEIGHT = 1.0  # ... found only in the lead
ALIAS_WEIGHT = 1.5  # one of the feed's own category labels is an alias of the topic
FEED_PRIOR = 1.0  # the feed's `topic:` hint
THRESHOLD = DEFAULT_TOPIC_THRESHOLD
MODEL_TERMS = 6  # model terms kept in the evidence of the chosen topic


class ItemText(Protocol):
    """What categorize reads of an item: records.Item and store.StoredItem both fit."""

    @property
    def title(self) -> str: ...
    @property
    def lead(self) -> str: ...
    @property
    def link(self) -> str | None: ...
    @property
    def author(self) -> str | None: ...
    @property
    def categories(self) -> tuple[str, ...]: ...


class TopicScorer(Protocol):
    """A learned layer (topicmodel.TopicModel): probabilities per topic key, and why."""

    def probabilities(self, texts: Sequence[tuple[str, str]]) -> list[dict[str, float]]:
        """For each (headline, lead): topic key -> probability (summing to 1)."""
        ...

    def top_terms(self, headline: str, lead: str, topic: str, n: int) -> list[tuple[str, float]]:
        """The n terms of this text that pushed most towards `topic`, with their weight."""
        ...

    def top_terms_many(
        self, texts: Sequence[tuple[str, str]], topics: Sequence[str], n: int
    ) -> list[list[tuple[str, float]]]:
        """top_terms of each (headline, lead) towards its topic, in one go."""
        ...


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything categorize needs from the config, in one picklable value."""

    topics: tuple[Topic, ...]
    filters: Filters = field(default_factory=Filters)  # global block / keep rules
    fallback: FallbackTopic = field(default_factory=FallbackTopic)
    threshold: float = THRESHOLD
    model_weight: float = DEFAULT_MODEL_WEIGHT

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        s = config.settings
        return cls(
            topics=config.topics,
            filters=config.filters,
            fallback=s.fallback_topic,
            threshold=s.topic_threshold,
            model_weight=s.topic_model_weight,
        )


@dataclass(frozen=True, slots=True)
class TopicScore:
    """One topic's score for one item, and what made it."""

    topic: str
    total: float  # (rules + model) x weight; 0 when excluded
    rules: float  # keyword, pattern, alias and feed-prior points
    model: float  # model_weight x probability
    weight: float  # the topic's weight
    matches: tuple[str, ...]  # "headline:ukraine", "lead:/regex/", "category:World", "feed:world"
    excluded: tuple[str, ...] = ()  # exclusion words found: they veto the topic


@dataclass(frozen=True, slots=True)
class TopicChoice:
    topic: str  # a topic key, or the fallback key
    score: float  # the winning total (the best total when it fell to the fallback)
    evidence: tuple[str, ...]  # matches of the best topic, e.g. ("headline:ukraine", "feed:world")
    scores: tuple[TopicScore, ...] = ()  # every topic, best first
    fallback: bool = False  # True when no topic reached the threshold


@dataclass(frozen=True, slots=True)
class FilterDecision:
    filtered: bool
    reason: str | None  # why it was filtered, for people
    checks: tuple[str, ...] = ()  # every rule that matched, and every unmet keep level


# -- text ------------------------------------------------------------------------------------


_TOKEN = re.compile(r"[^\W\d_]{2,}")

# Words that say nothing about a topic: English function words and newsroom filler.
_STOP_WORDS = """
    a about above after again against ago all almost also although always am among an and
    another any are around as at away back be became because been before being below between
    both but by can cannot could did do does doing done down during each early either else
    even ever every few first for from further get gets getting give given go goes going got
    had has have having he her here hers herself him himself his how however if in into is it
    its itself just last late later least less like likely made make makes many may me might
    more most much must my myself near need new news next no nor not now of off often on once
    one only or other our ours out over own per put rather really s said same say saying says
    see seen set several she should since so some still such take than that the their theirs
    them themselves then there these they this those though three through to today told too
    took two under until up upon us use used very via want was way we week weeks well were
    what when where whether which while who whom whose why will with within without would
    year years yet you your yours yesterday day days time times amid across top big
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def tokens(text: str) -> list[str]:
    """Folded words of two letters or more, in order (digits and punctuation dropped)."""
    return _TOKEN.findall(fold(text))


def _is_content_word(token: str) -> bool:
    """Not an English stop-word, nor a word of two letters."""
    return len(token) > 2 and token not in STOP_WORDS


# Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer,
# Burmese) or with particles joined to nouns (Korean: its syllables, or folded, their jamo):
# a keyword in them is a run of letters inside a longer one ('医生' in '上海医生罢工'), so it
# is found without word boundaries. (Georgian, between Burmese and the jamo, spaces its words.)
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


@lru_cache(maxsize=8192)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in fold(keyword).split()]
    if _UNSPACED.search(keyword):
        return re.compile(r"\s*".join(words))
    # Tolerate plurals on the last word ("market" matches "markets", "economy" "economies").
    last = words[-1]
    if last.endswith("y") and len(last) > 2:
        last = f"(?:{last}|{last[:-1]}ies)"
    else:
        last = f"{last}(?:s|es)?"
    # A word boundary only where the keyword has a letter or digit: one that starts or ends
    # with a sign ('c++', '.net', '#metoo') has no word boundary there ('C++26' has 'c++').
    start = r"\b" if re.match(r"\w", words[0]) else ""
    end = r"\b" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + r"\s+".join([*words[:-1], last]) + end)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def keyword_in(keyword: str, folded_text: str, words: frozenset[str] | None = None) -> bool:
    """Is `keyword` (a word or phrase) in text already passed through fold()?

    `words`, the text's tokens(), lets most keywords be ruled out without a regex search.
    """
    if words is not None:
        first = _first_words(keyword)
        if first is not None and first.isdisjoint(words):
            return False
    return _keyword_pattern(keyword).search(folded_text) is not None


@lru_cache(maxsize=8192)
def _first_words(keyword: str) -> frozenset[str] | None:
    """The tokens a text must contain for `keyword` to match in it; None: no shortcut."""
    parts = fold(keyword).split()
    first = parts[0]
    if not first.isalpha() or len(first) < 2 or _UNSPACED.search(first):
        return None
    if len(parts) > 1:
        return frozenset([first])
    return frozenset([first, first + "s", first + "es", first[:-1] + "ies"])


# -- rules -----------------------------------------------------------------------------------


def rule_score(
    topic: Topic,
    folded_title: str,
    folded_lead: str,
    *,
    raw_title: str,
    raw_lead: str,
    labels: frozenset[str],
    feed_topic: str | None,
) -> tuple[float, list[str], list[str]]:
    """(points, matches, exclusions found) of one topic's rules on one item."""
    points = 0.0
    matches: list[str] = []
    title_words, lead_words = _words_of(folded_title), _words_of(folded_lead)
    index = _index(topic.keywords)
    in_title, in_lead = index.candidates(title_words), index.candidates(lead_words)
    # The candidates in the order (and as often) topic.keywords lists them: the others can
    # match neither, and most of a topic's keywords are in neither text.
    for _, keyword in sorted((at, k) for k in in_title | in_lead for at in index.places[k]):
        if keyword in in_title and keyword_in(keyword, folded_title):
            points += HEADLINE_WEIGHT
            matches.append(f"headline:{keyword}")
        elif keyword in in_lead and keyword_in(keyword, folded_lead):
            points += LEAD_WEIGHT
            matches.append(f"lead:{keyword}")
    for pattern in topic.patterns:
        regex = _regex(pattern)
        if regex.search(raw_title):
            points += HEADLINE_WEIGHT
            matches.append(f"headline:/{pattern}/")
        elif regex.search(raw_lead):
            points += LEAD_WEIGHT
            matches.append(f"lead:/{pattern}/")
    for alias, folded in _folded_aliases(topic.aliases) if labels else ():
        if folded in labels:
            points += ALIAS_WEIGHT
            matches.append(f"category:{alias}")
    if feed_topic == topic.key:
        points += FEED_PRIOR
        matches.append(f"feed:{topic.key}")
    excluded = [
        word
        for word in topic.exclude
        if keyword_in(word, folded_title, title_words) or keyword_in(word, folded_lead, lead_words)
    ]
    return points, matches, excluded


@lru_cache(maxsize=256)
def _words_of(folded: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(folded))


@dataclass(frozen=True, slots=True)
class _KeywordIndex:
    """Keywords by the tokens that can start them, so a text is checked only against the
    keywords whose first word it contains (a few, not hundreds)."""

    by_word: Mapping[str, frozenset[str]]
    always: frozenset[str]  # keywords with no shortcut (digits, one letter): always checked
    starts: frozenset[str]  # by_word's words, for one set intersection
    places: Mapping[str, tuple[int, ...]]  # where each keyword is in the topic's list

    def candidates(self, words: frozenset[str]) -> frozenset[str]:
        # the intersection runs over the smaller set (a lead has ~60 words, a topic a few
        # keywords): the words of each text are not looked up one by one, topic by topic
        return self.always.union(*map(self.by_word.__getitem__, words & self.starts))


@lru_cache(maxsize=256)
def _index(keywords: tuple[str, ...]) -> _KeywordIndex:
    by_word: dict[str, set[str]] = {}
    always = set()
    places: dict[str, tuple[int, ...]] = {}
    for at, keyword in enumerate(keywords):
        places[keyword] = (*places.get(keyword, ()), at)
        first = _first_words(keyword)
        if first is None:
            always.add(keyword)
            continue
        for word in first:
            by_word.setdefault(word, set()).add(keyword)
    return _KeywordIndex(
        {w: frozenset(k) for w, k in by_word.items()},
        frozenset(always),
        frozenset(by_word),
        places,
    )


@lru_cache(maxsize=256)
def _folded_aliases(aliases: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each alias, and as a feed's category label is compared with it."""
    return tuple((alias, fold(alias).strip()) for alias in aliases)


def categorize(
    title: str,
    lead: str,
    *,
    topics: Sequence[Topic],
    feed_topic: str | None = None,
    categories: Sequence[str] = (),
    probabilities: Mapping[str, float] | None = None,
    model_weight: float = DEFAULT_MODEL_WEIGHT,
    threshold: float = THRESHOLD,
    fallback: str = FALLBACK_TOPIC,
) -> TopicChoice:
    """The best topic for one item, with every topic's score; `probabilities` from a model."""
    folded_title, folded_lead = fold(title), fold(lead)
    labels = frozenset(fold(c).strip() for c in categories)
    scores: list[TopicScore] = []
    for topic in topics:
        points, matches, excluded = rule_score(
            topic,
            folded_title,
            folded_lead,
            raw_title=title,
            raw_lead=lead,
            labels=labels,
            feed_topic=feed_topic,
        )
        learned = model_weight * above_chance(probabilities, topic.key) if probabilities else 0.0
        total = 0.0 if excluded else (points + learned) * topic.weight
        scores.append(
            TopicScore(
                topic=topic.key,
                total=round(total, 4),
                rules=points,
                model=round(learned, 4),
                weight=topic.weight,
                matches=tuple(matches),
                excluded=tuple(excluded),
            )
        )
    # Best first; ties keep the config's topic order (sorted() is stable).
    ranked = tuple(sorted(scores, key=lambda s: -s.total))
    if not ranked or ranked[0].total <= 0:
        return TopicChoice(fallback, 0.0, (), ranked, fallback=True)
    best = ranked[0]
    if best.total < threshold:
        return TopicChoice(fallback, best.total, best.matches, ranked, fallback=True)
    return TopicChoice(best.topic, best.total, best.matches, ranked)


def above_chance(probabilities: Mapping[str, float], topic: str) -> float:
    """How far the model's probability for `topic` rises above a blind guess among its k
    topics, from 0 (at or below 1/k) to 1 (certain): a model that knows nothing adds
    nothing, however few topics there are."""
    k = len(probabilities)
    if k < 2:
        return 0.0
    chance = 1.0 / k
    return max(0.0, (probabilities.get(topic, 0.0) - chance) / (1.0 - chance))


# -- filters ---------------------------------------------------------------------------------


def describe_rule(rule: FilterRule) -> str:
    """A filter rule as the editor would recognise it: words 'a', 'b' / /regex/ in fields."""
    what = [", ".join(repr(w) for w in rule.words)] if rule.words else []
    if rule.pattern is not None:
        what.append(f"/{rule.pattern}/")
    return f"{' or '.join(what)} in {'/'.join(rule.fields)}"


def rule_matches(rule: FilterRule, fields: Mapping[str, str]) -> str | None:
    """Where the rule matched ("'sponsored' in headline"), or None."""
    for name in rule.fields:
        text = fields.get(name) or ""
        if not text:
            continue
        folded = fold(text)
        words = _words_of(folded) if rule.words else None  # (categorize's: the same text)
        for word in rule.words:
            if keyword_in(word, folded, words):
                return f"{word!r} in {name}"
        if rule.pattern is not None:
            found = _regex(rule.pattern).search(text)
            if found is not None:
                return f"/{rule.pattern}/ matched {found.group(0)!r} in {name}"
    return None


def filter_item(
    item: ItemText, *, filters: Filters, feed_filters: Filters | None = None
) -> FilterDecision:
    """Block rules win over keep rules; global and feed keep rules must each be met."""
    fields = {
        "headline": item.title,
        "lead": item.lead,
        "link": item.link or "",
        "author": item.author or "",
    }
    checks: list[str] = []
    reason: str | None = None
    levels = (("global", filters), ("feed", feed_filters or Filters()))
    for level, rules in levels:
        for rule in rules.block:
            where = rule_matches(rule, fields)
            if where is not None:
                checks.append(f"{level} block rule [{describe_rule(rule)}]: {where}")
                reason = reason or f"blocked by {level} rule: {where}"
    for level, rules in levels:
        if not rules.keep:
            continue
        kept = [(rule, rule_matches(rule, fields)) for rule in rules.keep]
        met = [(rule, where) for rule, where in kept if where is not None]
        if met:
            rule, where = met[0]
            checks.append(f"{level} keep rule [{describe_rule(rule)}]: {where}")
        else:
            wanted = "; ".join(describe_rule(r) for r in rules.keep)
            checks.append(f"{level} keep rules not met: {wanted}")
            reason = reason or f"no {level} keep rule matched ({wanted})"
    return FilterDecision(reason is not None, reason, tuple(checks))


# -- both, for a batch of items --------------------------------------------------------------


def label_items(
    items: Sequence[ItemText],
    *,
    rules: Rules,
    feed_topic: str | None = None,
    feed_filters: Filters | None = None,
    model: TopicScorer | None = None,
) -> list[TopicLabel]:
    """Topic, evidence and filter decision of each item (one model call for the batch)."""
    if not items:
        return []
    use_model = model is not None and rules.model_weight > 0
    probs: list[dict[str, float] | None] = [None] * len(items)
    if use_model and model is not None:
        probs = list(model.probabilities([(it.title, it.lead) for it in items]))
    choices = []
    for item, p in zip(items, probs, strict=True):
        choice = categorize(
            item.title,
            item.lead,
            topics=rules.topics,
            feed_topic=feed_topic,
            categories=item.categories,
            probabilities=p,
            model_weight=rules.model_weight,
            threshold=rules.threshold,
            fallback=rules.fallback.key,
        )
        choices.append(choice)
    terms: list[list[tuple[str, float]]] = [[] for _ in items]
    if use_model and model is not None:
        texts = [(it.title, it.lead) for it in items]
        terms = model.top_terms_many(texts, [c.topic for c in choices], MODEL_TERMS)
    labels = []
    for item, choice, found in zip(items, choices, terms, strict=True):
        decision = filter_item(item, filters=rules.filters, feed_filters=feed_filters)
        labels.append(
            TopicLabel(
                topic=choice.topic,
                evidence=evidence(choice, rules, decision, found if not choice.fallback else ()),
                filtered=decision.filtered,
                filter_reason=decision.reason,
            )
        )
    return labels


def evidence(
    choice: TopicChoice,
    rules: Rules,
    decision: FilterDecision,
    model_terms: Sequence[tuple[str, float]] = (),
) -> dict[str, object]:
    """The JSON-ready record kept with an item: why this topic, why (not) filtered."""
    return {
        "topic": choice.topic,
        "score": choice.score,
        "threshold": rules.threshold,
        "fallback": choice.fallback,
        "scores": [_score_record(s) for s in choice.scores if s.total > 0 or s.excluded],
        "model_terms": [[term, round(weight, 4)] for term, weight in model_terms],
        "filters": list(decision.checks),
    }


_SCORE_FIELDS = tuple(f.name for f in dataclass_fields(TopicScore))


def _score_record(score: TopicScore) -> dict[str, object]:
    """asdict(score) without its empty fields, "topic" and "total" always kept. (asdict
    deep-copies every value, a tenth of label_items' time; the values are immutable.)"""
    record = {}
    for name in _SCORE_FIELDS:
        value = getattr(score, name)
        if value or name in ("topic", "total"):
            record[name] = value
    return record


def fingerprint(config: Config, model_key: str | None) -> str:
    """Changes whenever anything that places or filters items changes (topics, filters, feed
    hints and filters, fallback, threshold, the examples the model learns from)."""
    rules = Rules.from_config(config)
    feeds = [(f.url, f.topic, asdict(f.filters)) for f in config.feeds]
    text = json.dumps(
        [asdict(rules), feeds, model_key], sort_keys=True, default=str, ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- for editors: what fell through ----------------------------------------------------------


def frequent_words(
    texts: Iterable[str], *, n: int = 20, ignore: Iterable[str] = ()
) -> list[tuple[str, int]]:
    """The n words found in most texts (each text counts a word once), stop-words and the
    `ignore` words (e.g. existing keywords) left out: English ones, and the function words of
    the language each text is in ("der", "und", "میں": stopwords.py)."""
    from .stopwords import function_words_for  # for `topics` only: polling never needs it

    ignored = {fold(w) for w in ignore}
    counts: Counter[str] = Counter()
    for text in texts:
        words = tokens(text)
        foreign = function_words_for(words)
        counts.update(
            {w for w in words if _is_content_word(w) and w not in foreign and w not in ignored}
        )
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
