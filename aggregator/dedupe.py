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

import array
import functools
import heapq
import itertools
import re
import types
import zlib
from collections.abc import Callable, Collection, Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .clock import Micros, micros, span_micros
from .records import Item, RecentItem, StoryMatch
from .text import fold_accents

if TYPE_CHECKING:
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
# Peers in the window verified per new item at most, those sharing the most band keys first:
# a flood of look-alike headlines ("Live: ...", a small vocabulary) costs a bounded amount.
# Real feeds stay far below it (shared corpus: 1.5 a new item on average, 28 at most).
MAX_VERIFIED = 64
_COMBINED_FLOOR = 0.3  # ... and each at least this
_LEAD_AGREES = 0.15  # a lead sharing this share of shingles confirms a matching headline
_LEAD_WORDS_AGREE = 0.25  # ... or sharing this share of content words

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
# _WORD on ASCII text (most of it): ranges are tested faster than \w, and ++ never backtracks.
_ASCII_WORD = re.compile(r"[a-zA-Z0-9]++(?:[.,'][a-zA-Z0-9]++)*+")
# What makes a _WORD more than a plain run: ".", ",", "'" between two letters or digits
# (looked for from the mark: a search from each letter cost as much as the findall).
_JOINER = re.compile(r"[.,'’](?=[^\W_])(?<=[^\W_][.,'’])")
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
    return fold_accents(text).replace("’", "'").replace("‘", "'")


def clean_headline(title: str) -> str:
    """The headline without labels and site names: "Update: X | Site" -> "X"."""
    text = " ".join(title.split())
    for _ in range(3):
        before = text
        text = _PREFIX.sub("", text)
        # Each suffix pattern is tried from every position of the headline: only when the
        # headline has a character the pattern needs (most have none of them).
        if any(bar in text for bar in "|•·»"):
            text = _SUFFIX_BAR.sub("", text)
        if text.rstrip().endswith((")", "]")):
            text = _SUFFIX_BRACKET.sub("", text)
        tail = _SUFFIX_DASH.search(text) if any(d in text for d in "-–—") else None
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


def _figures(words: list[str]) -> list[str | None]:
    """_number of each word; a plain word is looked up, not parsed (most words are)."""
    get = _NUMBER_WORDS.get
    return [get(w) if w.isalpha() else _number(w) for w in words]


def _words(text: str) -> list[str]:
    out: list[str] = []
    if "uarter" in text:
        text = _QUARTER.sub(lambda m: f"q{m.lastindex}", text)
    text = fold(text)
    found = (_ASCII_WORD if text.isascii() else _WORD).findall(text)
    if not _JOINER.search(text):
        return found  # every word a plain run of letters and digits: the usual case
    for raw in found:
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
    lead_shingles: frozenset[int]  # 3-word shingles over every word of the lead (CRC-32)
    lead_length: int  # words in the lead
    lead: str  # the lead as given: names, lead_words and lead_numbers are read from it
    # (lead_words, lead_numbers), made at their first use: verify turns most candidates down
    # on the headlines and the shingles alone, and band keys need neither.
    _terms: tuple[frozenset[str], frozenset[str]] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def names(self) -> frozenset[str]:
        """Folded words written capitalised mid-sentence: places, people, firms."""
        return _names_of(self.title, self.lead)

    @property
    def lead_words(self) -> frozenset[str]:
        """Folded content words of the lead."""
        return self._lead_terms()[0]

    @property
    def lead_numbers(self) -> frozenset[str]:
        """Figures in the lead."""
        return self._lead_terms()[1]

    def _lead_terms(self) -> tuple[frozenset[str], frozenset[str]]:
        terms = self._terms
        if terms is None:
            terms = _content_and_figures(_words(self.lead))
            object.__setattr__(self, "_terms", terms)  # frozen: a memo of what lead gives
        return terms


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


def _content_and_figures(l_words: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The content words (figures canonical) and the figures among a lead's words."""
    l_content: set[str] = set()
    l_numbers: set[str] = set()
    for w, n in zip(l_words, _figures(l_words), strict=True):
        if n:
            l_numbers.add(n)
            l_content.add(n)
        elif w not in _STOPWORDS and len(w) > 1:
            l_content.add(w)
    return frozenset(l_content), frozenset(l_numbers)


def features(title: str, lead: str) -> Features:
    cleaned = clean_headline(title)
    t_words = _words(cleaned)
    t_figures = _figures(t_words)
    t_numbers = frozenset(n for n in t_figures if n)
    content = tuple(
        n or w
        for w, n in zip(t_words, t_figures, strict=True)
        if w not in _STOPWORDS and (len(w) > 1 or _DIGIT.search(w))
    )
    l_words = _words(lead)
    # CRC-32 of each shingle, not its text: a third of the memory of the features cache, and
    # the very value the MinHash of the lead starts from (band_keys_many). Each word encoded
    # once, each shingle joined and hashed by map: in C, without a generator's frame.
    encoded = list(map(str.encode, l_words))  # UTF-8
    shingles = frozenset(
        map(zlib.crc32, map(b" ".join, zip(encoded, encoded[1:], encoded[2:], strict=False)))
    )
    return Features(
        title=cleaned,
        title_words=content,
        title_numbers=t_numbers,
        title_bag=tuple(sorted(t_words)),
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


@functools.cache
def _token_sort_ratio() -> Callable[[str, str], float]:
    # Imported on the first comparison: a poll with nothing new never loads rapidfuzz.
    from rapidfuzz import fuzz

    ratio: Callable[[str, str], float] = fuzz.token_sort_ratio
    return ratio


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
        _token_sort_ratio()(" ".join(a.title_words), " ".join(b.title_words)) / 100.0
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
    # Contained: one headline is the other plus a clause ("... title" / "... title without
    # dropping a set").
    contained = min(len(a_words), len(b_words)) >= _MIN_CONTAINED_WORDS and (
        a_words <= b_words or b_words <= a_words
    )
    if not (
        title_score >= title_threshold
        or contained
        or copied_lead
        or (
            title_score + lead_score >= combined_threshold
            and min(title_score, lead_score) >= _COMBINED_FLOOR
        )
    ):
        return no("", "not alike")  # no rule could say yes: skip the vetoes (most candidates)
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


# -- signatures: LSH band keys ---------------------------------------------------------------

# MinHash (datasketch) over the headline's content words and over the lead's 3-word shingles,
# cut into `bands` bands of `rows` values; each band reduces to one signed 64-bit key. Two
# texts share a key with probability 1 - (1 - J**rows)**bands for Jaccard similarity J, as in
# datasketch's MinHashLSH, which keys its hash tables by the same slices of ``hashvalues``.
# Headlines are small sets, and unrelated ones often share a word or two (J ~ 0.1): 4 rows
# keep those apart (3 rows made 18x the candidates on the bench corpus); a restyled headline
# keeps its words (J >= 0.7). Leads are sets of 30-60 shingles and unrelated ones share
# none, so 2 rows catch a lead copied into a longer one.
# The keys are stored (store.item_bands), so they must not change between processes: crc32
# and the permutations of seed 1 are deterministic. Change any of these and BAND_SCHEME
# changes, and the pipeline bands the window again.
NUM_PERM = 64
TITLE_BANDS = (16, 4)  # (bands, rows): J=0.5 -> 0.64, 0.6 -> 0.89, 0.7 -> 0.98; 0.1 -> 0.002
LEAD_BANDS = (12, 2)  # _optimal_param(0.3, 32), on the first 24 values: 0.68, 0.97
BAND_SCHEME = f"minhash-crc32-affine32-p{NUM_PERM}-t{TITLE_BANDS}-l{LEAD_BANDS}-v1"
SAME_SOURCE_THRESHOLD = 0.97  # a feed's own items merge only when (nearly) identical
_TITLE_KIND, _LEAD_KIND = 0, 1
# Odd 64-bit multipliers: one per row of a band, one to finish; then a salt per (kind, band).
_ROW_MIX = (
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xA0761D6478BD642F,
    0xE7037ED1A0B428DB,
    0x8EBC6AF09C88C6E3,
    0x589965CC75374CC3,
)
_FINISH = 0xFF51AFD7ED558CCD
_SALT = 0x94D049BB133111EB


@dataclass(frozen=True, slots=True)
class _Hasher:
    a: Any  # datasketch's affine32 permutations of seed 1: h -> a * h + b (mod 2^32)
    b: Any
    row_mix: Any  # numpy uint64 arrays
    salt: Any
    finish: Any
    shift: Any


@functools.lru_cache(maxsize=1)
def _hasher() -> _Hasher:
    # Imported when the first item is sketched, so a poll of unchanged feeds never pays.
    import numpy as np

    a, b = _datasketch_minhash()(num_perm=NUM_PERM, seed=1, scheme="affine32").permutations
    u64 = np.uint64
    return _Hasher(
        a=a,
        b=b,
        row_mix=np.array(_ROW_MIX, dtype=u64),
        salt=(np.arange(2 * NUM_PERM, dtype=u64) + u64(1)) * u64(_SALT),
        finish=u64(_FINISH),
        shift=u64(31),
    )


def _datasketch_minhash() -> type[MinHash]:
    """datasketch's MinHash class. Its package __init__ imports every sketch it has, and with
    them scipy (~55 MB of memory, ~0.5 s): when nothing has imported datasketch yet, only its
    minhash module (numpy, hashlib) is loaded, under its own name, so a later
    ``import datasketch`` runs the real __init__ and finds that module already there."""
    import importlib.util
    import sys

    if "datasketch" in sys.modules:
        from datasketch import MinHash as loaded

        found: type[MinHash] = loaded
        return found
    spec = importlib.util.find_spec("datasketch")  # finds, does not run, the package
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("datasketch is not installed")
    package = types.ModuleType("datasketch")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["datasketch"] = package
    try:
        from datasketch.minhash import MinHash as alone
    finally:
        del sys.modules["datasketch"]
    found = alone
    return found


def _fmix32(hv: Any) -> Any:
    """MurmurHash3's 32-bit finalizer: datasketch's affine32 pre-mix of each input hash."""
    import numpy as np

    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


_KEYS_CHUNK = 256  # items hashed in one set of arrays


def band_keys_many(fs: Sequence[Features]) -> list[tuple[int, ...]]:
    """``band_keys`` of many items at once. The MinHash values are exactly those of
    datasketch's MinHash (affine32, seed 1, zlib.crc32 of each token's UTF-8; a test holds
    them equal), computed for the whole batch in a few array operations: one MinHash object
    per item costs ten times more in numpy's per-call overhead than the hashing itself."""
    if len(fs) > _KEYS_CHUNK:  # the arrays hold 256 bytes a token: a huge feed goes in parts
        return [
            k
            for i in range(0, len(fs), _KEYS_CHUNK)
            for k in band_keys_many(fs[i : i + _KEYS_CHUNK])
        ]
    import numpy as np

    h = _hasher()
    # (item index, CRC-32 of each token) of each set: the headlines', then the leads'
    titles = ((i, set(f.title_words)) for i, f in enumerate(fs))
    sets: list[tuple[int, Collection[int]]] = [
        (i, list(map(zlib.crc32, map(str.encode, words)))) for i, words in titles if len(words) >= 2
    ]
    n_titles = len(sets)
    sets += [
        (i, f.lead_shingles)
        for i, f in enumerate(fs)
        if len(f.lead_shingles) >= _MIN_LEAD_WORDS - 2
    ]
    if not sets:
        return [()] * len(fs)
    sizes = [len(s) for _, s in sets]
    hv = np.fromiter(
        itertools.chain.from_iterable(s for _, s in sets), dtype=np.uint32, count=sum(sizes)
    )
    mixed = _fmix32(hv)
    split = sum(sizes[:n_titles])
    out: list[list[int]] = [[] for _ in fs]
    # Title keys first, then lead keys, each in band order; a key made twice counts once.
    for kind, (n, rows), part, tokens in (
        (_TITLE_KIND, TITLE_BANDS, slice(0, n_titles), mixed[:split]),
        (_LEAD_KIND, LEAD_BANDS, slice(n_titles, None), mixed[split:]),
    ):
        owners, set_sizes = sets[part], sizes[part]
        if not owners:
            continue
        # Only the first n * rows MinHash values make bands (a lead's 24 of the 64): the
        # others are not computed. uint32: wraps mod 2^32 as datasketch's does.
        permuted = tokens[:, None] * h.a[: n * rows] + h.b[: n * rows]
        starts = list(itertools.accumulate(set_sizes[:-1], initial=0))
        values = np.minimum.reduceat(permuted, starts, axis=0).astype(h.row_mix.dtype)
        bands = values.reshape(len(owners), n, rows)
        key = (bands * h.row_mix[:rows]).sum(axis=2, dtype=h.row_mix.dtype)
        key ^= h.salt[kind * NUM_PERM : kind * NUM_PERM + n]
        key *= h.finish
        key ^= key >> h.shift
        for (i, _), item_keys in zip(owners, key.view("int64").tolist(), strict=True):
            out[i].extend(item_keys)
    return [tuple(dict.fromkeys(keys)) for keys in out]


def band_keys(f: Features) -> tuple[int, ...]:
    """The LSH band keys of one item: of its headline (2+ content words) and of its lead
    (a real one). Items sharing a key are candidates; none: it can only start a story."""
    return band_keys_many([f])[0]


def pack_keys(keys: Sequence[int]) -> bytes:
    """Band keys as 8 bytes each: what a parse worker sends and the writer holds until the
    item is stored (28 Python ints cost ~1 KB an item; this, a quarter of that)."""
    return array.array("q", keys).tobytes()


def unpack_keys(packed: bytes) -> tuple[int, ...]:
    keys = array.array("q")
    keys.frombytes(packed)
    return tuple(keys)


# Features of the items a batch is compared with: a story's earlier items are candidates of
# each copy that arrives, so they are read again and again. Bounded.
cached_features = functools.lru_cache(maxsize=1024)(features)


# -- choosing the story ------------------------------------------------------------------------

Source = int | str | None  # where an item came from (a feed id): a feed's own items stay apart


def _when(published_at: datetime | None, now: datetime) -> datetime:
    """When the story happened: published (never after now), else now."""
    return min(published_at, now) if published_at else now


_P = TypeVar("_P")  # a peer: an id, or a RecentItem


def shortlist(
    item: Item,
    now: datetime,
    peers: Iterable[tuple[int, Micros | None, Micros]],
    window: timedelta,
) -> list[int]:
    """Which of ``peers`` (id, published, first seen; likeliest first) story_for verifies for
    ``item``: those whose story happened within the window of the item's, at most
    MAX_VERIFIED. The store reads the text of these alone. The peers' times are microseconds
    (clock.micros, as the store's index keeps them): a cold poll passes ~480,000, which as
    datetimes took a second of the writer's CPU. The same test as _nearest's, exactly."""
    at, span = micros(_when(item.published_at, now)), span_micros(window)
    near = (
        peer
        for peer, published, seen in peers
        if abs((seen if published is None else min(published, seen)) - at) <= span
    )
    return list(itertools.islice(near, MAX_VERIFIED))


def _nearest(
    at: datetime, peers: Iterable[tuple[_P, datetime | None, datetime]], window: timedelta
) -> list[tuple[_P, datetime]]:
    """The first MAX_VERIFIED of ``peers`` (peer, published, first seen) whose story happened
    within ``window`` of ``at``, each with that time."""
    near = (
        (peer, when)
        for peer, published, seen in peers
        if abs((when := _when(published, seen)) - at) <= window
    )
    return list(itertools.islice(near, MAX_VERIFIED))


@dataclass(frozen=True, slots=True)
class Peer:
    """A stored item sharing a band key with the new one: a candidate to verify."""

    story_id: int
    item_id: int | None
    at: datetime  # when its story happened: published, else first seen
    feats: Features


@dataclass(slots=True)
class _Stats:
    added: int = 0
    evicted: int = 0
    queries: int = 0
    candidates: int = 0
    matches: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Thresholds:
    window: timedelta = DEFAULT_WINDOW
    title: float = DEFAULT_TITLE_THRESHOLD
    lead: float = DEFAULT_LEAD_THRESHOLD
    combined: float = DEFAULT_COMBINED_THRESHOLD


def best_match(
    f: Features,
    at: datetime,
    peers: Iterable[Peer],
    *,
    has_source: Callable[[int], bool],
    limits: Thresholds,
    stats: _Stats | None = None,
) -> StoryMatch | None:
    """The story among ``peers`` that the item (features ``f``, story time ``at``) belongs to,
    with the evidence; None for a new story. ``has_source(story_id)``: the story already has
    an item of this item's feed, whose own items stay apart unless identical."""
    best: tuple[float, Peer, Verdict] | None = None
    for peer in peers:
        if stats is not None:
            stats.candidates += 1
        if abs(peer.at - at) > limits.window:
            continue
        verdict = verify(
            f,
            peer.feats,
            title_threshold=limits.title,
            lead_threshold=limits.lead,
            combined_threshold=limits.combined,
        )
        if not verdict.same:
            continue
        if has_source(peer.story_id) and not _same_text(f, peer.feats, verdict):
            continue  # a feed's own items are different stories unless they are the same text
        rank = verdict.score + (0.01 if verdict.rule == "title" else 0.0)
        if best is None or rank > best[0]:
            best = (rank, peer, verdict)
    if best is None:
        return None
    _, peer, verdict = best
    if stats is not None:
        stats.matches += 1
        stats.by_rule[verdict.rule] = stats.by_rule.get(verdict.rule, 0) + 1
    return StoryMatch(
        story_id=peer.story_id,
        item_id=peer.item_id,
        rule=verdict.rule,
        score=round(verdict.score, 4),
        title_score=round(verdict.title_score, 4),
        lead_score=round(verdict.lead_score, 4),
        reason=verdict.reason,
    )


def _same_text(a: Features, b: Features, verdict: Verdict) -> bool:
    """Two items of one feed are one story only when they are the same text: (nearly) the same
    headline over the same lead. Without a lead on one or both, the headlines must be the same
    word for word, in order: UOL lists an article twice, once without its lead (with another
    link), while "Everton beat Liverpool" and "Liverpool beat Everton" score 1.0 (the title
    score sorts the words) and are two results."""
    if verdict.title_score < SAME_SOURCE_THRESHOLD:
        return False
    if a.lead_length and b.lead_length:
        return verdict.lead_score >= SAME_SOURCE_THRESHOLD
    return _words(a.title) == _words(b.title)


class StoryMatcher:
    """The store's StoryChooser: the index lives in the store.

    For a batch of new items the store asks ``band_keys`` of each, reads the stored items of
    the window that share a key (one query per batch), and asks ``story_for`` with them. Holds
    nothing between batches but a bounded cache of features.
    """

    def __init__(
        self,
        *,
        window: timedelta = DEFAULT_WINDOW,
        title_threshold: float = DEFAULT_TITLE_THRESHOLD,
        lead_threshold: float = DEFAULT_LEAD_THRESHOLD,
        combined_threshold: float = DEFAULT_COMBINED_THRESHOLD,
    ) -> None:
        self.window = window
        self.limits = Thresholds(window, title_threshold, lead_threshold, combined_threshold)
        self.stats = _Stats()
        # Keys made elsewhere (the parse workers), by (title, lead): used instead of hashing
        # again. Packed (pack_keys): they wait here with the write buffer.
        self._known: dict[tuple[str, str], bytes] = {}

    def remember(self, items: Iterable[Item], keys: Iterable[bytes]) -> None:
        """Band keys already made for these items (``pack_keys`` of ``band_keys_many``)."""
        for item, k in zip(items, keys, strict=True):
            self._known[(item.title, item.lead)] = k

    def forget(self, items: Iterable[Item]) -> None:
        """Drop remembered keys of items that have been written (used or not)."""
        for item in items:
            self._known.pop((item.title, item.lead), None)

    def band_keys(self, item: Item) -> tuple[int, ...]:
        known = self._known.get((item.title, item.lead))
        if known is not None:
            return unpack_keys(known)
        return band_keys(cached_features(item.title, item.lead))

    def shortlist(
        self, item: Item, now: datetime, peers: Sequence[tuple[int, Micros | None, Micros]]
    ) -> list[int]:
        chosen = shortlist(item, now, peers, self.window)
        self.stats.candidates += len(peers) - len(chosen)  # seen, never verified
        return chosen

    def story_for(
        self,
        feed_id: int,
        item: Item,
        now: datetime,
        peers: Sequence[RecentItem],
        own_stories: Container[int],
    ) -> StoryMatch | None:
        """The story ``item`` joins among ``peers`` (stored items sharing a band key, those
        sharing the most keys first), with the evidence; None: a new story. At most
        MAX_VERIFIED of them in the window are verified. ``own_stories``: stories with an
        item of this feed."""
        self.stats.queries += 1
        at = _when(item.published_at, now)
        # The store passes a shortlist; applied here too, so story_for holds on its own.
        # best_match skips peers outside the window; leaving them out here first saves their
        # features (most peers, when a feed's archive spans weeks). Still counted as candidates.
        near = _nearest(
            at, ((p, p.published_at, p.first_seen_at) for p in peers), self.limits.window
        )
        self.stats.candidates += len(peers) - len(near)
        return best_match(
            cached_features(item.title, item.lead),
            at,
            (Peer(p.story_id, p.id, when, cached_features(p.title, p.lead)) for p, when in near),
            has_source=own_stories.__contains__,
            limits=self.limits,
            stats=self.stats,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "queries": self.stats.queries,
            "candidates": self.stats.candidates,
            "matches": self.stats.matches,
            "by_rule": dict(self.stats.by_rule),
        }


@dataclass(slots=True)
class _Entry:
    story_id: int
    item_id: int | None
    source: Source
    at: datetime  # when the story happened: published, else first seen
    seen_at: datetime  # when we first saw it: eviction
    feats: Features
    keys: tuple[int, ...]


class StoryIndex:
    """The same decision over an in-memory index of band keys: for tests, the labelled set
    and tools that have no store. ``add`` each item as it is stored (with its story),
    ``match`` a new one before it is stored, ``evict`` what was first seen before a time."""

    def __init__(
        self,
        *,
        window: timedelta = DEFAULT_WINDOW,
        title_threshold: float = DEFAULT_TITLE_THRESHOLD,
        lead_threshold: float = DEFAULT_LEAD_THRESHOLD,
        combined_threshold: float = DEFAULT_COMBINED_THRESHOLD,
    ) -> None:
        self.window = window
        self.limits = Thresholds(window, title_threshold, lead_threshold, combined_threshold)
        self._entries: dict[int, _Entry] = {}
        self._by_key: dict[int, list[int]] = {}
        self._by_story: dict[int, list[int]] = {}
        self._expiry: list[tuple[datetime, int]] = []  # heap of (seen_at, entry number)
        self._next = 0
        self.stats = _Stats()

    def __len__(self) -> int:
        return len(self._entries)

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
        f = feats or cached_features(title, lead)
        n, self._next = self._next, self._next + 1
        entry = _Entry(story_id, item_id, source, at, seen_at or at, f, band_keys(f))
        self._entries[n] = entry
        for key in entry.keys:
            self._by_key.setdefault(key, []).append(n)
        self._by_story.setdefault(story_id, []).append(n)
        heapq.heappush(self._expiry, (entry.seen_at, n))
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
        f = feats or cached_features(title, lead)
        self.stats.queries += 1
        found = {n for key in band_keys(f) for n in self._by_key.get(key, ())}
        peers = (
            Peer(e.story_id, e.item_id, e.at, e.feats)
            for e in (self._entries[n] for n in sorted(found))
        )

        def has_source(story_id: int) -> bool:
            if source is None:
                return False
            return any(self._entries[n].source == source for n in self._by_story[story_id])

        return best_match(f, at, peers, has_source=has_source, limits=self.limits, stats=self.stats)

    def evict(self, before: datetime) -> int:
        """Forget items first seen before ``before``; the number forgotten."""
        n = 0
        while self._expiry and self._expiry[0][0] < before:
            _, number = heapq.heappop(self._expiry)
            entry = self._entries.pop(number)
            for key in entry.keys:
                bucket = self._by_key[key]
                bucket.remove(number)
                if not bucket:
                    del self._by_key[key]
            members = self._by_story[entry.story_id]
            members.remove(number)
            if not members:
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
