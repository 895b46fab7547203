"""Same story across feeds: near-duplicate detection on headline + lead. Pure: no I/O.

A story reaches us from a wire service, the papers that run its copy and a site that scraped
it: other URLs, rewritten titles ("Ukraine spy chief: North Korea may be Russia's most dangerous
ally" / "North Korea may be Russia's most dangerous ally, Ukraine spy chief says"), the same
lead. ``StoryIndex`` holds the items of recent stories and answers, for one new item, "which
story is this, and why?" without comparing all pairs:

    features(title, lead)                  -- folded tokens, numbers, lead shingles
    -> candidates: MinHash LSH (datasketch) on headline tokens, and on lead 3-word shingles
    -> verify each candidate (rapidfuzz on the headline, shingle containment on the lead,
       numbers that differ veto, a feed never merges its own items unless identical)
    -> the best verified story, with its evidence, or None (a new story)

Precision comes first: two different stories on one topic ("Ukraine war: X" / "Ukraine war:
Y", two earnings reports of one company, a live blog's entries) must stay apart, so a match
needs a near-identical headline whose lead does not disagree, or a copied lead whose headline
agrees; differing figures veto either. Thresholds and the evidence behind them: docs/design.md.

The index is bounded: ``evict`` drops items first seen before the window; the store seeds it
with the items first seen within the window.
"""

from __future__ import annotations

import functools
import heapq
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz

from .records import Item, StoryMatch

if TYPE_CHECKING:  # datasketch pulls in scipy (~0.8 s): imported when an index is made
    from datasketch import MinHash

DEFAULT_WINDOW = timedelta(hours=72)
# Headline similarity (rapidfuzz token_sort_ratio / 100 on folded content words) at or above
# which two items are one story, when nothing else disagrees. See docs/design.md.
DEFAULT_TITLE_THRESHOLD = 0.86
# Share of the shorter lead's 3-word shingles found in the other lead, at or above which the
# leads are one copy.
DEFAULT_LEAD_THRESHOLD = 0.6
# Headline and lead similarity added up, when neither alone is enough (rewritten wire copy).
DEFAULT_COMBINED_THRESHOLD = 1.15
_COMBINED_FLOOR = 0.3  # ... and each at least this
_LEAD_AGREES = 0.15  # a lead sharing this share of shingles confirms a matching headline
_LEAD_WORDS_AGREE = 0.25  # ... or sharing this share of content words

NUM_PERM = 64  # MinHash permutations: enough for candidate recall at these thresholds
CANDIDATE_THRESHOLD = 0.3  # LSH Jaccard threshold: generous, the verifier decides
SAME_SOURCE_THRESHOLD = 0.97  # a feed's own items merge only when (nearly) identical
_MIN_LEAD_WORDS = 8  # a lead shorter than this says too little to match on
_MIN_TITLE_WORDS = 3  # a headline of fewer content words needs its lead to agree
_MIN_CONTAINED_WORDS = 5  # a headline inside another one counts when it has this many words

_STOPWORD_TEXT = """
    a an the and or but nor of to in into on onto at by for from with without as is are was
    were be been being am it its it's this that these those there here he she they we you i his
    her their our your my me him them us who whom whose which what when where why how than then
    so if not no do does did has have had will would can could should may might must shall
    about after before over under amid among against up down out off via per vs versus also just
    says said say saying tells told report reports reported reportedly according sources source
    update updated updates latest breaking live new news"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "first": "1",
    "second": "2",
    "third": "3",
    "fourth": "4",
    "fifth": "5",
    "sixth": "6",
    "seventh": "7",
    "eighth": "8",
    "ninth": "9",
    "tenth": "10",
}
_WORD = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*")
_DIGIT = re.compile(r"\d")
_FIGURE = re.compile(r"\d+(?:\.\d+)?")
# "third-quarter", "3rd quarter" -> "q3", as "Q3" is written elsewhere.
_QUARTER = re.compile(
    r"\b(?:(first|1st)|(second|2nd)|(third|3rd)|(fourth|4th))[\s-]+quarter\b", re.IGNORECASE
)
_LABEL = (
    r"update(?:d|s)?(?:\s*\d+)?|breaking(?:\s+news)?|exclusive|just\s+in|watch|video|listen|"
    r"live(?:\s+updates?)?|analysis|explainer|opinion|corrected|correction|factbox|"
    r"fact\s+box|wrap(?:-?up)?|timeline|photos?|in\s+pictures|urgent|flash"
)
# "Update: ", "UPDATE 2-", "Breaking News | ", "[Video] " before the headline.
_PREFIX = re.compile(rf"^\s*(?:(?:{_LABEL})\s*[:|\-–—]\s*|\[[^\]]{{1,30}}\]\s*)", re.IGNORECASE)
# " | Site", " — report", " (video)", " [updated]" after it.
_SUFFIX_BAR = re.compile(r"\s+[|•·»]\s+[^|]{1,60}$")
_SUFFIX_DASH = re.compile(r"\s+[-–—]+\s+([^-–—]{1,40})$")
_SUFFIX_BRACKET = re.compile(r"\s*[(\[][^)\]]{1,30}[)\]]\s*$")
_BOILERPLATE_TAIL = re.compile(
    rf"^(?:{_LABEL}|reports?|sources?(?:\s+says?)?|officials?\s+says?|as\s+it\s+happened|"
    r"what\s+we\s+know|full\s+story|latest)$",
    re.IGNORECASE,
)


# -- features ----------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case, accents off, typographic quotes made plain."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    out = "".join(c for c in decomposed if not unicodedata.combining(c))
    return out.replace("’", "'").replace("‘", "'")


def clean_headline(title: str) -> str:
    """The headline without labels and site names: "Update: X | Site" -> "X"."""
    text = " ".join(title.split())
    for _ in range(3):
        before = text
        text = _PREFIX.sub("", text)
        text = _SUFFIX_BAR.sub("", text)
        text = _SUFFIX_BRACKET.sub("", text)
        tail = _SUFFIX_DASH.search(text)
        if tail and _is_site_or_label(tail.group(1)):
            text = text[: tail.start()]
        if text == before:
            break
    return text.strip(" :-–—|") or title.strip()


def _is_site_or_label(tail: str) -> bool:
    words = tail.split()
    if _BOILERPLATE_TAIL.match(tail.strip()):
        return True
    # A site name: a few capitalised words, or a domain.
    return (
        0 < len(words) <= 4
        and not _DIGIT.search(tail)
        and (all(w[:1].isupper() for w in words) or bool(re.search(r"\.\w{2,4}$", tail)))
    )


def _number(token: str) -> str | None:
    """The figure in a token, canonical: "1,000" -> "1000", "$95bn" -> "95", "m6.8" -> "6.8"."""
    if token.isalpha():
        return _NUMBER_WORDS.get(token)
    m = _FIGURE.search(token.replace(",", ""))
    if m is None:
        return None
    value = m.group(0)
    return value.rstrip("0").rstrip(".") if "." in value else value


def _words(text: str) -> list[str]:
    out: list[str] = []
    if "uarter" in text:
        text = _QUARTER.sub(lambda m: f"q{m.lastindex}", text)
    for raw in _WORD.findall(fold(text)):
        if raw.isalnum():
            out.append(raw)
            continue
        token = raw.replace("'", "")
        if token.endswith("s") and raw.endswith("'s"):
            token = token[:-1]  # possessive
        if "." in token and not _DIGIT.search(token):
            out.extend(t for t in token.split(".") if t)  # "u.s." -> "u", "s"
            continue
        out.append(token)
    return out


@dataclass(frozen=True, slots=True)
class Features:
    """What the verifier compares, computed once per item."""

    title: str  # the cleaned headline, as shown
    title_words: tuple[str, ...]  # folded content words of the cleaned headline, in order
    title_numbers: frozenset[str]  # figures in the headline
    title_bag: tuple[str, ...]  # every folded word of the cleaned headline, sorted
    lead_words: frozenset[str]  # folded content words of the lead
    lead_numbers: frozenset[str]  # figures in the lead
    lead_shingles: frozenset[str]  # 3-word shingles over every word of the lead
    lead_length: int  # words in the lead
    lead: str  # the lead as given: names are read from it when a candidate is verified

    @property
    def names(self) -> frozenset[str]:
        """Folded words written capitalised mid-sentence: places, people, firms."""
        return _names_of(self.title, self.lead)


_RAW_WORD = re.compile(r"[^\W_]+(?:[.'’][^\W_]+)*")
_SENTENCE_BREAK = frozenset('.!?:;"“‘([—–-')


@functools.lru_cache(maxsize=4096)
def _names_of(title: str, lead: str) -> frozenset[str]:
    return frozenset(_names(title, title=True) | _names(lead, title=False))


def _names(text: str, *, title: bool) -> set[str]:
    """Words capitalised where a sentence does not start: names. A Title Case headline says
    nothing (every word is capitalised) except through its acronyms."""
    found: set[str] = set()
    matches = list(_RAW_WORD.finditer(text))
    long_words = [m.group(0) for m in matches if len(m.group(0)) > 3]
    title_case = (
        title and long_words and (sum(w[:1].isupper() for w in long_words) >= 0.8 * len(long_words))
    )
    end = 0
    for m in matches:
        word = m.group(0)
        # The first word, or one after sentence punctuation, is capitalised anyway.
        initial = end == 0 or not _SENTENCE_BREAK.isdisjoint(text[end : m.start()])
        end = m.end()
        if not word[:1].isupper():
            continue
        acronym = len(word) >= 2 and word.isupper()
        if acronym or not (initial or title_case):
            found.update(_words(word))
    return found


def features(title: str, lead: str) -> Features:
    cleaned = clean_headline(title)
    t_words = _words(cleaned)
    t_numbers = frozenset(n for w in t_words if (n := _number(w)))
    content = tuple(
        _number(w) or w for w in t_words if w not in _STOPWORDS and (len(w) > 1 or _DIGIT.search(w))
    )
    l_words = _words(lead)
    l_content: set[str] = set()
    l_numbers: set[str] = set()
    for w in l_words:
        n = _number(w)
        if n:
            l_numbers.add(n)
            l_content.add(n)
        elif w not in _STOPWORDS and len(w) > 1:
            l_content.add(w)
    shingles = frozenset(" ".join(l_words[i : i + 3]) for i in range(max(0, len(l_words) - 2)))
    return Features(
        title=cleaned,
        title_words=content,
        title_numbers=t_numbers,
        title_bag=tuple(sorted(t_words)),
        lead_words=frozenset(l_content),
        lead_numbers=frozenset(l_numbers),
        lead_shingles=shingles,
        lead_length=len(l_words),
        lead=lead,
    )


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """How alike two items are, and whether that makes them one story."""

    same: bool
    rule: str  # "title" | "lead" | "" when not the same; or why not: "numbers", ...
    score: float  # the deciding similarity
    title_score: float  # rapidfuzz token_sort_ratio / 100 on the headlines' content words
    lead_score: float  # share of the shorter lead's shingles found in the other (0 if no lead)
    reason: str  # a short human-readable explanation


def _abbreviates(a: str, b: str) -> bool:
    return len(a) >= 3 and len(b) >= 3 and (a.startswith(b) or b.startswith(a))


def _conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    """Each side has a figure the other lacks: 200 prisoners vs 300, Q3 vs Q4."""
    return bool(a - b) and bool(b - a)


def verify(
    a: Features,
    b: Features,
    *,
    title_threshold: float = DEFAULT_TITLE_THRESHOLD,
    lead_threshold: float = DEFAULT_LEAD_THRESHOLD,
    combined_threshold: float = DEFAULT_COMBINED_THRESHOLD,
) -> Verdict:
    """Are ``a`` and ``b`` one story? Several signals must agree; differing figures veto."""
    title_score = (
        fuzz.token_sort_ratio(" ".join(a.title_words), " ".join(b.title_words)) / 100.0
        if a.title_words and b.title_words
        else 0.0
    )
    both_leads = a.lead_length >= _MIN_LEAD_WORDS and b.lead_length >= _MIN_LEAD_WORDS
    lead_score = 0.0
    if both_leads and a.lead_shingles and b.lead_shingles:
        shared = len(a.lead_shingles & b.lead_shingles)
        lead_score = shared / min(len(a.lead_shingles), len(b.lead_shingles))

    def yes(rule: str, score: float, reason: str) -> Verdict:
        return Verdict(True, rule, score, title_score, lead_score, reason)

    def no(rule: str, reason: str) -> Verdict:
        return Verdict(False, rule, max(title_score, lead_score), title_score, lead_score, reason)

    if _conflict(a.title_numbers, b.title_numbers):
        return no("numbers", "the headlines give different figures")
    a_words, b_words = set(a.title_words), set(b.title_words)
    union = a_words | b_words
    jaccard = len(a_words & b_words) / len(union) if union else 0.0
    copied_lead = lead_score >= lead_threshold
    # A name in one headline swapped for another name in the other ("Senate passes" / "House
    # passes", "Odesa" / "Kharkiv"): another event, unless the leads are one copy.
    names = a.names | b.names
    a_names, b_names = (a_words - b_words) & names, (b_words - a_words) & names
    # "Man City" / "Manchester City": a short form is the same name.
    a_names, b_names = (
        {n for n in a_names if not any(_abbreviates(n, m) for m in b_names)},
        {n for n in b_names if not any(_abbreviates(n, m) for m in a_names)},
    )
    if a_names and b_names and not copied_lead and title_score < SAME_SOURCE_THRESHOLD:
        return no("names", f"headlines name {sorted(a_names)} / {sorted(b_names)}")
    lead_figures_differ = both_leads and _conflict(a.lead_numbers, b.lead_numbers)

    # One headline is the other plus a clause ("... title" / "... title without dropping a set").
    contained = min(len(a_words), len(b_words)) >= _MIN_CONTAINED_WORDS and (
        a_words <= b_words or b_words <= a_words
    )
    if title_score >= title_threshold or contained:
        short = min(len(a_words), len(b_words)) < _MIN_TITLE_WORDS
        if not both_leads:
            # Few content words ("Was open what year"): only every word alike will do.
            if short and a.title_bag != b.title_bag:
                return no("short", "short headline and no lead to confirm it")
            # A word swapped for another, and no lead to say it is a restyle: most words
            # must be shared (the character-level ratio alone likes "Xankane" / "Taxanxan").
            if a_words - b_words and b_words - a_words and jaccard <= 0.5:
                return no("words", "headlines differ in words and there is no lead to confirm")
            return yes("title", title_score, "headline")
        if lead_score >= _LEAD_AGREES:
            return yes("title", title_score, "headline, and the leads share phrasing")
        if lead_figures_differ:
            return no("numbers", "same headline, but the leads give different figures")
        overlap = len(a.lead_words & b.lead_words) / max(
            1, min(len(a.lead_words), len(b.lead_words))
        )
        if short or overlap < _LEAD_WORDS_AGREE:
            return no("lead", "same headline over unrelated leads")
        return yes("title", title_score, f"headline; the leads share {overlap:.0%} of their words")

    if copied_lead:
        if lead_figures_differ and lead_score < 0.9:
            return no("numbers", "copied lead, but with different figures")
        if jaccard >= 0.2 or title_score >= 0.5:
            return yes("lead", lead_score, "copied lead under a rewritten headline")
        return no("title", "copied lead under an unrelated headline")

    if (
        both_leads
        and not lead_figures_differ
        and title_score + lead_score >= combined_threshold
        and min(title_score, lead_score) >= _COMBINED_FLOOR
    ):
        return yes(
            "both", (title_score + lead_score) / 2, "rewritten headline over a rewritten lead"
        )
    return no("", "not alike")


# -- the index ---------------------------------------------------------------------------------

Source = int | str | None  # where an item came from (a feed id): a feed's own items stay apart


def _when(item: Item, now: datetime) -> datetime:
    """When the story happened: published (never after now), else now."""
    return min(item.published_at, now) if item.published_at else now


@dataclass(slots=True)
class _Entry:
    key: int
    story_id: int
    item_id: int | None
    source: Source
    at: datetime  # when the story happened: published, else first seen
    seen_at: datetime  # when we first saw it: eviction
    feats: Features
    in_title: bool = False
    in_lead: bool = False


@dataclass(frozen=True, slots=True)
class _Prepared:
    feats: Features
    title_sketch: MinHash | None  # of the headline's content words (None: too few)
    lead_sketch: MinHash | None  # of the lead's shingles (None: no real lead)


@dataclass(slots=True)
class _Stats:
    added: int = 0
    evicted: int = 0
    queries: int = 0
    candidates: int = 0
    matches: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


class StoryIndex:
    """Items of recent stories, searchable by near-duplicate headline or lead.

    ``add`` every item as it is stored (with its story), ``match`` a new one before it is
    stored, ``evict`` what was first seen before the window. Memory is bounded by the window.
    """

    def __init__(
        self,
        *,
        window: timedelta = DEFAULT_WINDOW,
        title_threshold: float = DEFAULT_TITLE_THRESHOLD,
        lead_threshold: float = DEFAULT_LEAD_THRESHOLD,
        combined_threshold: float = DEFAULT_COMBINED_THRESHOLD,
        num_perm: int = NUM_PERM,
    ) -> None:
        self.window = window
        self.title_threshold = title_threshold
        self.lead_threshold = lead_threshold
        self.combined_threshold = combined_threshold
        from datasketch import MinHash, MinHashLSH

        self._minhash_class = MinHash
        self._num_perm = num_perm
        self._permutations = MinHash(num_perm=num_perm).permutations
        self._title_lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=num_perm)
        self._lead_lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=num_perm)
        self._entries: dict[int, _Entry] = {}
        self._by_story: dict[int, list[int]] = {}
        self._expiry: list[tuple[datetime, int]] = []  # heap of (seen_at, key)
        self._next_key = 0
        self._prepared: dict[tuple[str, str], _Prepared] = {}
        self.last_item_id = 0  # highest stored item id added: the store catches up from here
        self.stats = _Stats()

    def __len__(self) -> int:
        return len(self._entries)

    def _minhash(self, tokens: Iterable[str]) -> MinHash:
        # crc32 (C, deterministic) instead of the default sha1: the sketches live in memory only,
        # and datasketch's affine32 scheme mixes the 32-bit input hash before permuting it.
        m = self._minhash_class(
            num_perm=self._num_perm,
            permutations=self._permutations,
            scheme="affine32",
            hashfunc=zlib.crc32,
        )
        m.update_batch([t.encode("utf-8") for t in tokens])
        return m

    def _prepare(self, title: str, lead: str, feats: Features | None) -> _Prepared:
        """Features and sketches of one text; what `match` made is reused by `add`."""
        key = (title, lead)
        found = self._prepared.get(key)
        if found is not None:
            return found
        f = feats or features(title, lead)
        title_set = set(f.title_words)
        prepared = _Prepared(
            f,
            self._minhash(title_set) if len(title_set) >= 2 else None,
            self._minhash(f.lead_shingles) if len(f.lead_shingles) >= _MIN_LEAD_WORDS - 2 else None,
        )
        if len(self._prepared) >= 4096:  # matched but never added: do not keep them forever
            self._prepared.clear()
        self._prepared[key] = prepared
        return prepared

    def add(
        self,
        story_id: int,
        title: str,
        lead: str,
        *,
        at: datetime,
        seen_at: datetime | None = None,
        item_id: int | None = None,
        source: Source = None,
        feats: Features | None = None,
    ) -> None:
        """Remember one stored item of ``story_id``."""
        prepared = self._prepare(title, lead, feats)
        self._prepared.pop((title, lead), None)
        f = prepared.feats
        key = self._next_key
        self._next_key += 1
        entry = _Entry(key, story_id, item_id, source, at, seen_at or at, f)
        if prepared.title_sketch is not None:
            self._title_lsh.insert(key, prepared.title_sketch, check_duplication=False)
            entry.in_title = True
        if prepared.lead_sketch is not None:
            self._lead_lsh.insert(key, prepared.lead_sketch, check_duplication=False)
            entry.in_lead = True
        self._entries[key] = entry
        self._by_story.setdefault(story_id, []).append(key)
        heapq.heappush(self._expiry, (entry.seen_at, key))
        if item_id is not None and item_id > self.last_item_id:
            self.last_item_id = item_id
        self.stats.added += 1

    def match(
        self,
        title: str,
        lead: str,
        *,
        at: datetime,
        source: Source = None,
        feats: Features | None = None,
    ) -> StoryMatch | None:
        """The recent story this item belongs to, with the evidence; None for a new story."""
        prepared = self._prepare(title, lead, feats)
        f = prepared.feats
        self.stats.queries += 1
        keys: set[int] = set()
        if prepared.title_sketch is not None:
            keys.update(self._title_lsh.query(prepared.title_sketch))
        if prepared.lead_sketch is not None:
            keys.update(self._lead_lsh.query(prepared.lead_sketch))
        self.stats.candidates += len(keys)
        best: tuple[float, _Entry, Verdict] | None = None
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or abs(entry.at - at) > self.window:
                continue
            verdict = verify(
                f,
                entry.feats,
                title_threshold=self.title_threshold,
                lead_threshold=self.lead_threshold,
                combined_threshold=self.combined_threshold,
            )
            if not verdict.same:
                continue
            if source is not None and self._story_has_source(entry.story_id, source):
                # A feed's own items are different stories unless they are the same text.
                identical = verdict.title_score >= SAME_SOURCE_THRESHOLD and (
                    verdict.lead_score >= SAME_SOURCE_THRESHOLD
                    or not (f.lead_length or entry.feats.lead_length)
                )
                if not identical:
                    continue
            rank = verdict.score + (0.01 if verdict.rule == "title" else 0.0)
            if best is None or rank > best[0]:
                best = (rank, entry, verdict)
        if best is None:
            return None
        _, entry, verdict = best
        self.stats.matches += 1
        self.stats.by_rule[verdict.rule] = self.stats.by_rule.get(verdict.rule, 0) + 1
        return StoryMatch(
            story_id=entry.story_id,
            item_id=entry.item_id,
            rule=verdict.rule,
            score=round(verdict.score, 4),
            title_score=round(verdict.title_score, 4),
            lead_score=round(verdict.lead_score, 4),
            reason=verdict.reason,
        )

    # The store's StoryChooser protocol: the store asks, then tells.

    def story_for(self, feed_id: int, item: Item, now: datetime) -> StoryMatch | None:
        return self.match(item.title, item.lead, at=_when(item, now), source=feed_id)

    def stored(self, feed_id: int, item_id: int, story_id: int, item: Item, now: datetime) -> None:
        self.add(
            story_id,
            item.title,
            item.lead,
            at=_when(item, now),
            seen_at=now,
            item_id=item_id,
            source=feed_id,
        )

    def _story_has_source(self, story_id: int, source: Source) -> bool:
        return any(self._entries[k].source == source for k in self._by_story.get(story_id, ()))

    def evict(self, before: datetime) -> int:
        """Forget items first seen before ``before``; the number forgotten."""
        n = 0
        while self._expiry and self._expiry[0][0] < before:
            _, key = heapq.heappop(self._expiry)
            entry = self._entries.pop(key, None)
            if entry is None:
                continue
            if entry.in_title:
                self._title_lsh.remove(key)
            if entry.in_lead:
                self._lead_lsh.remove(key)
            keys = self._by_story.get(entry.story_id)
            if keys is not None:
                keys.remove(key)
                if not keys:
                    del self._by_story[entry.story_id]
            n += 1
        self.stats.evicted += n
        return n

    def describe(self) -> dict[str, Any]:
        return {
            "items": len(self._entries),
            "stories": len(self._by_story),
            "added": self.stats.added,
            "evicted": self.stats.evicted,
            "queries": self.stats.queries,
            "candidates": self.stats.candidates,
            "matches": self.stats.matches,
            "by_rule": dict(self.stats.by_rule),
        }


def explain_pair(title_a: str, lead_a: str, title_b: str, lead_b: str) -> Verdict:
    """The verifier's verdict on two texts (default thresholds), for tuning and tests."""
    return verify(features(title_a, lead_a), features(title_b, lead_b))
