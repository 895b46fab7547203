"""Frozen records passed between pipeline stages.

No feedparser dict, httpx response or lxml tree crosses a stage boundary: each stage turns
what it got into one of these. Each field says where its value comes from.
"""

from __future__ import annotations

import enum
import operator
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

# -- names -----------------------------------------------------------------------------------


def feed_display_name(name: str | None, title: str | None, url: str) -> str:
    """What a feed is called wherever it is shown (fetch, status, items, explain, topics,
    digest credits, web pages): the editor's `name:`; else the feed's own <title>, which the
    store keeps from its last successful fetch; else, before that, its URL's host (a file:
    URL's file name). A host alone would name every feed of one server alike."""
    if name and name.strip():
        return name.strip()
    # Stored titles are plain text since parse_body's feed_title_text; an older database may
    # hold a raw one, so format and control characters (bidi overrides) go here too.
    shown = " ".join((title or "").split())
    if not shown.isprintable():  # C-fast and true for nearly every title: rarely filtered
        shown = "".join(c for c in shown if unicodedata.category(c)[0] != "C")
    if shown:
        return shown
    parts = urlsplit(url)
    return parts.hostname or PurePosixPath(unquote(parts.path)).name or url


class PollOutcome(enum.StrEnum):
    """What one poll of one feed came to; recorded for every attempt."""

    UPDATED = "updated"  # 200, parsed, items stored (maybe zero new)
    NOT_MODIFIED = "not_modified"  # 304, or the same body bytes as last time: nothing parsed
    GONE = "gone"  # 410: polling stops until the editor acts
    RATE_LIMITED = "rate_limited"  # 429/503 with or without Retry-After
    ERROR = "error"  # network error, other 4xx/5xx, too large, not a feed, broken XML


# -- fetch -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedSource:
    """What fetch needs to know about one feed: from config plus the store's validators."""

    url: str  # as the editor wrote it (http(s):// or file:)
    etag: str | None = None  # ETag of the last 200, sent back as If-None-Match
    last_modified: str | None = None  # Last-Modified of the last 200, sent back verbatim
    body_hash: str | None = None  # sha256 of the last parsed body, to skip identical bodies
    max_bytes: int = 10 * 1024 * 1024  # decompressed body cap (settings / per feed)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of fetching one feed. Made by fetch; read by pipeline and parse."""

    url: str  # FeedSource.url
    final_url: str  # after redirects; base for relative links
    outcome: PollOutcome  # UPDATED here means "a body to parse"
    status: int | None = None  # last HTTP status; None for file: and network errors
    body: bytes | None = None  # decompressed body when outcome is UPDATED
    headers: Mapping[str, str] = field(default_factory=dict)  # response headers, lower-case keys
    etag: str | None = None  # from the response (or kept from FeedSource on 304)
    last_modified: str | None = None  # likewise
    body_hash: str | None = None  # sha256 hex of body
    permanent_redirect: str | None = None  # target of a 301/308 seen on the way
    retry_after: datetime | None = None  # from Retry-After on 429/503, as an absolute UTC time
    max_age_seconds: int | None = None  # Cache-Control max-age / Expires, for scheduling
    error: str | None = None  # human-readable reason when outcome is ERROR/GONE/RATE_LIMITED
    elapsed_ms: int = 0  # wall time of the fetch


# -- parse -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the feed said it, before any interpretation. Made by parse."""

    guid: str | None  # <guid>, <id>; JSON Feed id (a number read as text)
    # <link>, Atom rel=alternate, resolved against xml:base / feed URL; JSON Feed url, else
    # external_url, resolved against feed_url / feed URL
    link: str | None
    orig_link: str | None  # FeedBurner feedburner:origLink
    title: str | None  # as given; may still hold markup or entities
    # content:encoded / Atom <content> values, richest first; JSON Feed content_html, then
    # content_text escaped so that extract reads it as text (parse._plain_text_as_html)
    content_html: tuple[str, ...]
    summary_html: str | None  # <description> / Atom <summary> / JSON Feed summary
    author: str | None  # JSON Feed: the authors' names, joined (the feed's when none)
    published: datetime | None  # <pubDate> / <published> / date_published, UTC
    updated: datetime | None  # <updated> / <atom:updated> / date_modified, UTC
    dc_date: datetime | None  # <dc:date>, UTC (when distinct from the above)
    categories: tuple[str, ...]  # <category> / Atom category labels / JSON Feed tags
    # media:thumbnail / media:content image / image enclosure / itunes:image; JSON Feed image,
    # banner_image, an image attachment
    image_url: str | None
    source_title: str | None = None  # RSS <source> / Atom <source><title>: the original publisher


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed document turned into our records. Made by parse."""

    title: str | None  # channel <title>, JSON Feed title
    link: str | None  # channel <link> (the site), JSON Feed home_page_url
    ttl_minutes: int | None  # RSS <ttl>
    entries: tuple[RawEntry, ...]
    # a recoverable well-formedness problem feedparser noted; in a JSON Feed, values of the
    # wrong type ignored and items that are no objects
    warning: str | None = None


# -- extract ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One story as one feed told it, cleaned for the digest. Made by extract (pure)."""

    key: str  # stable identity within the feed: GUID, else canonical link, else content hash
    guid: str | None  # RawEntry.guid
    link: str | None  # canonical http(s) link, trackers removed; None if the feed had none
    title: str  # plain-text headline
    title_generated: bool  # True when the headline was made from the text (no <title>)
    lead: str  # plain-text lead paragraph; "" for title-only feeds
    author: str | None
    image_url: str | None  # http(s) only
    categories: tuple[str, ...]  # the feed's own labels, plain text
    published_at: datetime | None  # published, else updated, else dc:date (UTC)
    content_hash: str  # sha256 of title + lead + link + author as the feed gave them: an edit
    # changes it; a lead filled in later from the article page (article.py) keeps it
    source: str | None = None  # RawEntry.source_title: the publisher an aggregator feed names
    # extract.entry_fingerprints of the entry it came from: a re-poll skips extracting entries
    # whose fingerprint is stored (None: made without one)
    entry_hash: str | None = None
    # Set by the pipeline (digest.is_archive): no published time, and found on its feed's
    # first successful poll, so the feed's archive: never in an edition
    archived: bool = False

    def __reduce__(self) -> tuple[type[Item], tuple[Any, ...]]:
        return (Item, _item_values(self))  # see _pickled_by_value


# -- dedupe ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryMatch:
    """Why a new item joins a stored story. Made by dedupe (or the store's link rule); kept
    by the store for `explain`."""

    story_id: int  # the story the item joins
    item_id: int | None  # the stored item it matched
    rule: str  # "link" (same canonical link) | "title" (headline) | "lead" (copied lead)
    score: float  # the deciding similarity, 0..1
    title_score: float = 0.0  # headline similarity, 0..1
    lead_score: float = 0.0  # lead shingle containment, 0..1
    reason: str = ""  # a short explanation for people


@dataclass(frozen=True, slots=True)
class RecentItem:
    """A stored item of a recent story: a dedupe candidate (store.story_peers), or what
    store.recent_items reads to band the window again."""

    id: int
    story_id: int
    feed_id: int
    title: str
    lead: str
    link: str | None
    published_at: datetime | None
    first_seen_at: datetime


# -- digest ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """A stored story that may go into an edition. Read by digest from the store."""

    story_id: int
    item_id: int  # the representative item
    title: str
    lead: str
    link: str | None
    source: str  # who the representative item is credited to (StoredItem.source_name)
    published_at: datetime | None
    first_seen_at: datetime
    topic: str  # topic key
    priority: int  # the representative feed's priority
    also: tuple[tuple[str, str], ...] = ()  # (source name, link) of the other items in the story
    # The feed URL of the representative item and of each `also` entry, in order: names alone
    # cannot tell sources apart, two feeds may be shown alike. "" / (): not known (then the
    # name is all there is).
    source_feed: str = ""
    also_feeds: tuple[str, ...] = ()

    def source_keys(self) -> tuple[tuple[str, str], ...]:
        """(feed URL, name) of the story's own source, then of each `also` entry: equal keys
        are one source. Two feeds of one name are two sources; a feed that lists the story
        twice is one; an aggregator feed crediting two publishers ("X via Feed") is two."""
        if not self.also_feeds:  # feeds unknown: compare names
            return ((self.source, self.source), *((name, name) for name, _ in self.also))
        also = zip(self.also_feeds, self.also, strict=True)
        return ((self.source_feed, self.source), *((feed, name) for feed, (name, _) in also))


@dataclass(frozen=True, slots=True)
class Section:
    topic: str  # topic key
    title: str  # topic title for display
    stories: tuple[StoryCandidate, ...]


@dataclass(frozen=True, slots=True)
class Edition:
    """What one subscriber gets in one digest run. Made by digest (pure)."""

    digest: str  # digest key
    recipient: str  # subscriber e-mail
    edition_key: str  # stable per (digest, scheduled time): names files and Message-IDs
    cutoff: datetime  # stories first seen up to this moment (UTC)
    subject: str
    sections: tuple[Section, ...]

    @property
    def story_ids(self) -> tuple[int, ...]:
        return tuple(s.story_id for sec in self.sections for s in sec.stories)

    @property
    def is_empty(self) -> bool:
        return not any(sec.stories for sec in self.sections)


# -- categorize ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicLabel:
    """Where one item goes and why. Made by categorize (pure); stored with the item."""

    topic: str  # a topic key, or the fallback topic's key
    evidence: Mapping[str, object] = field(default_factory=dict)  # scores and matched terms
    # per topic, filter decisions, model terms: JSON-ready, shown by `explain`
    filtered: bool = False  # a block rule matched, or keep rules exist and none matched
    filter_reason: str | None = None  # e.g. "block: 'sponsored' in headline"

    def __reduce__(self) -> tuple[type[TopicLabel], tuple[Any, ...]]:
        return (TopicLabel, _label_values(self))  # see _pickled_by_value


def _pickled_by_value(cls: type) -> operator.attrgetter[Any]:
    """A record's fields, in the order its constructor takes them: what its __reduce__ pickles.

    The parse workers send every item back to the writing process pickled. A frozen dataclass
    with slots pickles its state and sets it back field by field in Python (dataclasses'
    __setstate__); a constructor call with the values costs that process less (71,000 items
    and their labels of a cold poll of 2,000 feeds: 0.51 -> 0.32 CPU s of unpickling, without
    the cyclic GC's share) and the workers less to pickle (0.56 -> 0.33 s)."""
    return operator.attrgetter(*(f.name for f in fields(cls)))


_item_values = _pickled_by_value(Item)
_label_values = _pickled_by_value(TopicLabel)
