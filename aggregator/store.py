"""The only module that speaks SQL: schema, numbered migrations, reads and writes.

SQLAlchemy Core keeps the SQL portable (PostgreSQL is the planned second backend); SQLite in
``data_dir`` is the default. Every datetime is stored as timezone-aware UTC.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .clock import Micros, micros
from .errors import StoreError, error_text, is_environmental
from .records import (
    FetchResult,
    Item,
    PollOutcome,
    RecentItem,
    StoryCandidate,
    StoryMatch,
    TopicLabel,
    feed_display_name,
)
from .text import fold_words

if TYPE_CHECKING:
    from .bandindex import BandIndex

SCHEMA_VERSION = 13


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, whatever the backend keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        # SQLite has no zone type: keep the UTC wall time, naive, so text sorts in time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the values are text ("2026-11-24 06:00:00.000000", SQLAlchemy's format), and
    # SQLAlchemy's own conversion (a regex per value) cost more than fetching the row: these
    # two do the same with datetime's C parser and formatter.
    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_utc = self.process_bind_param
        # The last value and its text: a write gives most rows the same time (first_seen_at,
        # changed_at: its `now`), the very same object. One tuple, so threads see a pair.
        last: tuple[datetime | None, str | None] = (None, None)

        def process(value: datetime | None) -> str | None:
            nonlocal last
            seen, text = last
            if value is seen and value is not None:
                return text
            naive = to_utc(value, dialect)
            text = None if naive is None else naive.isoformat(" ", "microseconds")
            last = (value, text)
            return text

        return process

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | datetime | None) -> datetime | None:
            if value is None:
                return None
            when = parse(value) if isinstance(value, str) else value
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

        return process


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    # The editor's `name:`, "" when feeds.yaml gives none (then the feed is shown under its
    # title: records.feed_display_name). Kept in step with feeds.yaml by sync_feeds.
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("title", sa.Text),  # the feed's own <title>, from its last fetch that had one
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("body_hash", sa.Text),
    sa.Column("ttl_minutes", sa.Integer),
    sa.Column("last_poll_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_new_item_at", UTCDateTime),
    sa.Column("last_outcome", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("error_streak", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_due_at", UTCDateTime),
    sa.Column("moved_to", sa.Text),
    sa.Column("gone_at", UTCDateTime),
    # What the last fetched body came to that an editor should know, errors aside: entries
    # not stored and why, or parse's complaint about sloppy XML (pipeline.parse_body).
    sa.Column("last_note", sa.Text),
)

polls = sa.Table(
    "polls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("new_items", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_items", sa.Integer, nullable=False, server_default="0"),
    sa.Column("elapsed_ms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_due_at", UTCDateTime),
    sa.Index("ix_polls_feed_at", "feed_id", "at"),
)

stories = sa.Table(
    "stories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("link", sa.Text),  # canonical link that merges items from several feeds
    sa.Index("ix_stories_link", "link"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("guid", sa.Text),
    sa.Column("link", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("title_generated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lead", sa.Text, nullable=False, server_default=""),
    sa.Column("author", sa.Text),
    sa.Column("image_url", sa.Text),
    sa.Column("categories", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("published_at", UTCDateTime),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False, server_default=""),
    sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id"), nullable=False),
    # Why the item has its topic and whether it was filtered (categorize; migration 3).
    sa.Column("topic_evidence", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("filtered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("filter_reason", sa.Text),
    # The publisher an aggregator feed names (<source>; migration 8): "Reuters via Google News".
    sa.Column("source", sa.Text),
    # extract.entry_fingerprints of the entry (migration 9): a re-poll skips extracting it.
    sa.Column("entry_hash", sa.Text),
    # Item.archived (migration 12): undated and found on the feed's first poll; set when the
    # item is first stored and kept through edits.
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("feed_id", "key", name="uq_items_feed_key"),
    sa.Index("ix_items_feed_link", "feed_id", "link"),
    sa.Index("ix_items_first_seen", "first_seen_at"),
    sa.Index("ix_items_story", "story_id"),
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("edition_key", sa.Text, nullable=False),
    sa.Column("cutoff", UTCDateTime, nullable=False),
    sa.Column("built_at", UTCDateTime, nullable=False),
    sa.Column("message_name", sa.Text),  # file name in outbox/, None when nothing was sent
    sa.Column("story_count", sa.Integer, nullable=False, server_default="0"),
    # Migration 4: an edition is recorded (stories chosen) before its file is written, and
    # marked written after; the highest story id it could see starts the next edition.
    sa.Column("written_at", UTCDateTime),  # None: recorded, file not yet known to be written
    sa.Column("last_story_id", sa.Integer),  # max(stories.id) when chosen; None before v4
    # Migration 7: when the SMTP server accepted the message (deliver; outbox/sent/ too).
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("digest", "recipient", "edition_key", name="uq_editions_key"),
    sa.Index("ix_editions_recipient_cutoff", "digest", "recipient", "cutoff"),
    sa.Index("ix_editions_message", "message_name"),
)

delivered = sa.Table(
    "delivered",
    metadata,
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id"), nullable=False),
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), nullable=False),
    sa.PrimaryKeyConstraint("digest", "recipient", "story_id"),
    # Migration 11: a reader never gets a story twice, whichever digest sent it first, so
    # what was delivered is looked up by story across every digest.
    sa.Index("ix_delivered_story", "story_id"),
)

# Why an item joined the story it is in (dedupe evidence, for `explain`); none for an item
# that started its story.
story_matches = sa.Table(
    "story_matches",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id"), nullable=False),
    sa.Column("matched_item_id", sa.Integer),  # the stored item it was found like; None: link
    sa.Column("rule", sa.Text, nullable=False),  # link | title | lead | both
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("title_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("lead_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_story_matches_story", "story_id"),
)

# The dedupe index as migration 5 kept it, a row per key; migration 13 packs it into item_bands.
story_bands = sa.Table(
    "story_bands",
    metadata,
    sa.Column("item_id", sa.Integer, nullable=False),  # items.id; no FK: pruned by range
    sa.Column("band_key", sa.BigInteger, nullable=False),  # signed 64-bit
    sa.PrimaryKeyConstraint("item_id", "band_key"),
    sa.Index("ix_story_bands_key", "band_key"),
    sqlite_with_rowid=False,
)

# The dedupe index (migration 13): the LSH band keys of each item first seen within the window,
# packed in one row (bandindex.pack). A new item's candidates are the stored items sharing one
# of its keys (dedupe.band_keys); the lookups are answered in memory (bandindex.BandIndex), so
# rows are only appended, in item order, and the window is pruned by an id range. Rows of items
# that left the window are deleted (prune_story_bands); a lookup also checks first_seen_at.
item_bands = sa.Table(
    "item_bands",
    metadata,
    sa.Column("item_id", sa.Integer, primary_key=True),  # items.id; no FK: pruned by range
    sa.Column("band_keys", sa.LargeBinary, nullable=False),  # bandindex.pack
)

# Who left which digest, and when (migration 6): one row per (digest, address), written once by
# the one-click link, the web form or `aggregator unsubscribe`; editions skip these pairs.
# feeds.yaml is never rewritten for it. Addresses are stored lower-cased.
unsubscribes = sa.Table(
    "unsubscribes",
    metadata,
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("via", sa.Text, nullable=False),  # one-click | web | editor
    sa.PrimaryKeyConstraint("digest", "recipient"),
)

# Small facts about the store itself, e.g. the fingerprint of the topic rules items were
# last categorised with.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def _add_columns(conn: Connection, table: sa.Table, names: Sequence[str]) -> None:
    """ALTER TABLE ... ADD COLUMN for each named column the table lacks (a database created
    by migration 1 of this version already has them), as the dialect spells the column."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    for name in names:
        if name not in present:
            column = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column}"))


def _migrate_topic_evidence(conn: Connection) -> None:
    _add_columns(conn, items, ["topic_evidence", "filtered", "filter_reason"])
    metadata.create_all(conn, tables=[meta])


def _migrate_edition_writes(conn: Connection) -> None:
    _add_columns(conn, editions, ["written_at", "last_story_id"])
    # Editions built before version 4 were recorded after their file was written.
    conn.execute(
        sa.update(editions)
        .where(editions.c.written_at.is_(None))
        .values(written_at=editions.c.built_at)
    )
    for index in editions.indexes:
        index.create(conn, checkfirst=True)


def _migrate_sent(conn: Connection) -> None:
    _add_columns(conn, editions, ["sent_at"])
    for index in editions.indexes:
        index.create(conn, checkfirst=True)


def _migrate_delivered_story(conn: Connection) -> None:
    for index in delivered.indexes:
        index.create(conn, checkfirst=True)


def _migrate_item_bands(conn: Connection) -> None:
    metadata.create_all(conn, tables=[item_bands])
    if not sa.inspect(conn).has_table("story_bands"):
        return
    from .bandindex import pack

    rows = conn.execute(
        sa.select(story_bands.c.item_id, story_bands.c.band_key).order_by(story_bands.c.item_id)
    )
    packed: list[dict[str, Any]] = []
    for item_id, keys in itertools.groupby(rows, key=lambda row: int(row[0])):
        packed.append({"item_id": item_id, "band_keys": pack(int(row[1]) for row in keys)})
        if len(packed) >= 1000:
            conn.execute(sa.insert(item_bands), packed)
            packed = []
    if packed:
        conn.execute(sa.insert(item_bands), packed)
    story_bands.drop(conn)


# Migration N takes a database at version N-1 to version N. Never edit a shipped one: add.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: lambda conn: metadata.create_all(
        conn, tables=[feeds, polls, stories, items, editions, delivered]
    ),
    2: lambda conn: metadata.create_all(conn, tables=[story_matches]),  # dedupe evidence
    3: _migrate_topic_evidence,  # topic evidence, filtered items, meta
    4: _migrate_edition_writes,  # editions recorded before written; story-id watermark
    5: lambda conn: metadata.create_all(conn, tables=[story_bands]),  # dedupe index in the store
    6: lambda conn: metadata.create_all(conn, tables=[unsubscribes]),  # who left, when
    7: _migrate_sent,  # editions.sent_at: the SMTP server accepted the message
    8: lambda conn: _add_columns(conn, items, ["source"]),  # the publisher of an aggregated item
    9: lambda conn: _add_columns(conn, items, ["entry_hash"]),  # unchanged entries not re-extracted
    10: lambda conn: _add_columns(conn, feeds, ["last_note"]),  # why a feed stores nothing
    11: _migrate_delivered_story,  # delivered stories looked up across digests
    12: lambda conn: _add_columns(conn, items, ["archived"]),  # a new feed's undated archive
    13: _migrate_item_bands,  # the dedupe index packed per item, its lookups in memory
}


# -- records the store hands out --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed row: what the poller and `status` need."""

    id: int
    url: str
    name: str  # the editor's `name:`, "" for none (what to show: records.feed_display_name)
    added_at: datetime
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    ttl_minutes: int | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    last_outcome: str | None
    last_status: int | None
    last_error: str | None
    error_streak: int
    next_due_at: datetime | None
    moved_to: str | None
    gone_at: datetime | None
    last_note: str | None = None  # see feeds.last_note
    items_stored: int = 0
    items_recent: int = 0  # first seen in the last 7 days


@dataclass(frozen=True, slots=True)
class EditionMark:
    """Where a subscriber's previous edition of a digest left off (store.last_editions)."""

    cutoff: datetime  # stories first seen up to here were considered
    last_story_id: int | None  # and every story with an id up to here; None before v4


@dataclass(frozen=True, slots=True)
class Delivery:
    """One story delivered to one address in one edition (the delivered table)."""

    address: str  # lower-cased, as delivered_pairs compares them
    story_id: int
    edition_id: int  # editions.id: a lower one was recorded earlier
    digest: str
    edition_key: str


@dataclass(frozen=True, slots=True)
class EditionRecord:
    """One chosen edition as the store keeps it: recorded before its file is written."""

    digest: str
    recipient: str
    edition_key: str
    cutoff: datetime
    built_at: datetime  # also the message's Date header, so a rebuild writes the same bytes
    message_name: str | None  # outbox file name; None when nothing is sent (empty edition)
    story_ids: tuple[int, ...]  # the stories it delivers
    last_story_id: int | None = None  # max(stories.id) visible when the stories were chosen
    id: int | None = None  # row id, when read from the store
    written_at: datetime | None = None  # None: the file may not exist yet


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What pipeline asks the store to remember about one poll attempt."""

    outcome: PollOutcome
    status: int | None
    error: str | None
    elapsed_ms: int
    next_due_at: datetime | None  # None: not scheduled again (410 Gone)
    new_items: int = 0
    updated_items: int = 0
    note: str | None = None  # feeds.last_note, for a fetched body (UPDATED)


@dataclass(frozen=True, slots=True)
class PollWrite:
    """One poll attempt to remember, with the items it brought (pipeline -> store)."""

    feed_id: int
    at: datetime
    result: FetchResult | None
    record: PollRecord  # new_items / updated_items are filled in by the store
    items: Sequence[tuple[Item, TopicLabel | str]] = ()  # (item, topic) parsed from the body
    feed_title: str | None = None  # the feed's own <title>
    ttl_minutes: int | None = None  # RSS <ttl>


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: int
    feed_url: str
    feed_name: str  # as shown (records.feed_display_name); feed_url tells feeds apart
    key: str
    guid: str | None
    link: str | None
    title: str
    title_generated: bool
    lead: str
    author: str | None
    image_url: str | None
    categories: tuple[str, ...]
    published_at: datetime | None
    first_seen_at: datetime
    topic: str
    story_id: int
    topic_evidence: Mapping[str, Any] = field(default_factory=dict)  # categorize's reasons
    filtered: bool = False  # a filter rule dropped it: kept here, never in an edition
    filter_reason: str | None = None
    source: str | None = None  # Item.source: the publisher an aggregator feed names
    archived: bool = False  # Item.archived: a new feed's undated archive, never in an edition

    @property
    def source_name(self) -> str:
        """Who to credit in a digest: the feed, or "Publisher via Feed" for an item an
        aggregator feed (Google News) took from a publisher it names."""
        publisher = " ".join((self.source or "").split())
        if not publisher:
            return self.feed_name
        folded, feed = publisher.casefold(), self.feed_name.casefold()
        if folded in feed or feed in folded:  # "Reuters" in "Reuters World": say it once
            return self.feed_name
        return f"{publisher} via {self.feed_name}"


@dataclass(frozen=True, slots=True)
class UpsertResult:
    new: int
    updated: int


class StoryChooser(Protocol):
    """Decides the story of a new item that no stored story shares a canonical link with
    (dedupe's StoryMatcher). The store keeps its index: the band keys of every new item are
    stored (item_bands), and the items of the window sharing a key are its candidates."""

    window: timedelta  # items first seen before now - window are no candidates

    def band_keys(self, item: Item) -> Sequence[int]:
        """The item's LSH band keys (signed 64-bit)."""
        ...

    def shortlist(
        self, item: Item, now: datetime, peers: Sequence[tuple[int, Micros | None, Micros]]
    ) -> Sequence[int]:
        """The ids among ``peers`` (id, published, first seen, in microseconds: clock.micros;
        those sharing the most band keys first) that story_for would look at: only their text
        is read."""
        ...

    def story_for(
        self,
        feed_id: int,
        item: Item,
        now: datetime,
        peers: Sequence[RecentItem],
        own_stories: Container[int],
    ) -> StoryMatch | None:
        """The story ``item`` joins among ``peers`` (its shortlist, in order), with the
        evidence; None: it starts a new story. ``own_stories``: stories of the peers that
        hold an item of ``feed_id``."""
        ...


# -- the store ---------------------------------------------------------------------------------


SQLITE_FILE = "aggregator.sqlite3"  # in settings.data_dir


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / SQLITE_FILE}"


class Store:
    """All reads and writes. One instance per process; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The dedupe index in memory, read from item_bands at its first lookup and kept up to
        # date; None until then, and again after a transaction that may have added to it rolls
        # back (its item ids would be handed out again).
        self._bands: BandIndex | None = None
        self._bands_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            try:
                store.migrate()
            except sa.exc.OperationalError as exc:  # read-only, full, cannot be opened ...
                if not is_environmental(exc):
                    raise
                store.close()
                where = engine.url.render_as_string(hide_password=True)
                raise StoreError(f"cannot use the database {where}: {error_text(exc)}") from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    def check_writable(self) -> None:
        """StoreError unless the database takes a write (a read-only file or folder, a locked
        database): the daemon checks at start rather than fail at every job. A full disk
        shows only when a write needs room (the one here rewrites a value in place)."""
        try:
            with self._tx() as conn:
                conn.execute(sa.update(schema_version).values(version=schema_version.c.version))
        except sa.exc.OperationalError as exc:
            if not is_environmental(exc):
                raise
            where = self.engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot write the database {where}: {error_text(exc)}") from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except BaseException:
            self._forget_bands()
            raise

    def _forget_bands(self) -> None:
        with self._bands_lock:
            self._bands = None

    # -- schema --

    def version(self) -> int:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("schema_version"):
                return 0
            return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)

    def migrate(self) -> int:
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema is version {current}, newer than this aggregator "
                f"({SCHEMA_VERSION}); upgrade aggregator"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._tx() as conn:
                if version == 1:
                    metadata.create_all(conn, tables=[schema_version])
                MIGRATIONS[version](conn)
                conn.execute(sa.delete(schema_version))
                conn.execute(sa.insert(schema_version).values(version=version))
        return SCHEMA_VERSION

    # -- feeds --

    def sync_feeds(
        self,
        urls_names: Sequence[tuple[str, str | None]],
        now: datetime,
        *,
        first_due: Callable[[str, int], datetime] | None = None,
    ) -> int:
        """Make sure a row exists for every configured feed; keep rows of removed feeds.

        `urls_names`: (URL, the editor's name or None); a name written or removed in
        feeds.yaml since the last call is written or removed here.

        `first_due(url, added_together)` says when a new feed is first polled (default: now).
        Returns how many feeds were added.
        """
        with self._tx() as conn:
            existing = {
                row.url: (row.id, row.name)
                for row in conn.execute(sa.select(feeds.c.id, feeds.c.url, feeds.c.name))
            }
            wanted = {url: name or "" for url, name in urls_names}
            added = [(url, name) for url, name in wanted.items() if url not in existing]
            if added:
                conn.execute(
                    sa.insert(feeds),
                    [
                        {
                            "url": url,
                            "name": name,
                            "added_at": now,
                            "next_due_at": first_due(url, len(added)) if first_due else now,
                        }
                        for url, name in added
                    ],
                )
            renamed = [
                {"b_id": existing[url][0], "b_name": name}
                for url, name in wanted.items()
                if url in existing and existing[url][1] != name
            ]
            if renamed:
                conn.execute(
                    sa.update(feeds)
                    .where(feeds.c.id == sa.bindparam("b_id"))
                    .values(name=sa.bindparam("b_name")),
                    renamed,
                )
        return len(added)

    def feed_states(
        self,
        urls: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        counts: bool = True,
    ) -> list[FeedState]:
        """Feed rows (of `urls`, or all), with item counts unless `counts` is false.

        `items_recent` (first seen in the 7 days before `now`) is counted when `now` is given.
        """
        cols: list[Any] = [feeds]
        source: Any = feeds
        if counts:
            stored = (
                sa.select(items.c.feed_id, sa.func.count().label("n"))
                .group_by(items.c.feed_id)
                .subquery()
            )
            cols.append(sa.func.coalesce(stored.c.n, 0).label("items_stored"))
            source = feeds.outerjoin(stored, stored.c.feed_id == feeds.c.id)
        query = sa.select(*cols).select_from(source)
        recent_counts: dict[int, int] = {}
        with self.engine.connect() as conn:
            if urls is not None:
                query = query.where(feeds.c.url.in_(list(urls)))
            rows = conn.execute(query.order_by(feeds.c.id)).mappings().all()
            if counts and now is not None:
                recent = conn.execute(
                    sa.select(items.c.feed_id, sa.func.count())
                    .where(items.c.first_seen_at >= now - RECENT)
                    .group_by(items.c.feed_id)
                )
                recent_counts = {int(r[0]): int(r[1]) for r in recent}
        return [
            FeedState(
                **{k: row[k] for k in _FEED_STATE_FIELDS},
                items_stored=int(row["items_stored"]) if counts else 0,
                items_recent=recent_counts.get(int(row["id"]), 0),
            )
            for row in rows
        ]

    def record_poll(
        self,
        feed_id: int,
        now: datetime,
        result: FetchResult | None,
        record: PollRecord,
        *,
        feed_title: str | None = None,
        ttl_minutes: int | None = None,
    ) -> None:
        """Remember one attempt: always a polls row, and the feed's state for the next one."""
        self.record_polls(
            [
                PollWrite(
                    feed_id, now, result, record, feed_title=feed_title, ttl_minutes=ttl_minutes
                )
            ]
        )

    def record_polls(
        self, writes: Sequence[PollWrite], *, stories: StoryChooser | None = None
    ) -> list[UpsertResult]:
        """Remember several attempts in one transaction: each one's items, feed row and polls row.

        Items are inserted or updated as `upsert_items` does. Writing many feeds at once keeps
        a poll of thousands of unchanged feeds cheap: a few statements, not thousands.
        """
        counts: list[UpsertResult] = []
        feed_updates: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = {}
        poll_rows: list[dict[str, Any]] = []
        with self._tx() as conn:
            for w in writes:
                counted = self._upsert(conn, w.feed_id, w.items, w.at, stories)
                counts.append(counted)
                record = w.record
                values, failed = _feed_values(w, counted)
                names = tuple(sorted(values))
                feed_updates.setdefault((names, failed), []).append(
                    {"b_id": w.feed_id, **{f"b_{k}": v for k, v in values.items()}}
                )
                poll_rows.append(
                    {
                        "feed_id": w.feed_id,
                        "at": w.at,
                        "outcome": record.outcome.value,
                        "status": record.status,
                        "error": record.error,
                        "new_items": counted.new + record.new_items,
                        "updated_items": counted.updated + record.updated_items,
                        "elapsed_ms": record.elapsed_ms,
                        "next_due_at": record.next_due_at,
                    }
                )
            for (names, failed), rows in feed_updates.items():
                bound: dict[str, Any] = {k: sa.bindparam(f"b_{k}") for k in names}
                if failed:
                    bound["error_streak"] = feeds.c.error_streak + 1
                conn.execute(
                    sa.update(feeds).where(feeds.c.id == sa.bindparam("b_id")).values(**bound),
                    rows,
                )
            if poll_rows:
                conn.execute(sa.insert(polls), poll_rows)
        return counts

    # -- items --

    def upsert_items(
        self,
        feed_id: int,
        batch: Sequence[tuple[Item, TopicLabel | str]],
        now: datetime,
        *,
        stories: StoryChooser | None = None,
    ) -> UpsertResult:
        """Insert new items, update edited ones in place; (item, topic) pairs.

        An item is the same as a stored one when its key matches, or when its GUID changed but
        its link did not (_same_item_by_link: not under a link that several entries share, nor
        with another GUID and another headline). A new item joins the story of any item with
        the same canonical link, else the story ``stories`` chooses (near-duplicates), else a
        new story.
        """
        with self._tx() as conn:
            return self._upsert(conn, feed_id, batch, now, stories)

    def _upsert(
        self,
        conn: Connection,
        feed_id: int,
        batch: Sequence[tuple[Item, TopicLabel | str]],
        now: datetime,
        stories: StoryChooser | None = None,
    ) -> UpsertResult:
        """upsert_items inside a transaction: one read of the feed's items, then bulk writes."""
        if not batch:
            return UpsertResult(new=0, updated=0)
        by_key: dict[str, _Known] = {}
        by_link: dict[str, _Known] = {}  # stored items only
        stored_links: Counter[str] = Counter()
        for row in conn.execute(_FEED_ITEMS, {"feed_id": feed_id}):
            known = _Known(row.id, row.content_hash, entry_hash=row.entry_hash)
            by_key[row.key] = known
            if row.link:
                by_link.setdefault(row.link, known)
                stored_links[row.link] += 1
        has_items = bool(by_key)  # the feed has items stored (its first poll has none)
        # per entry: an entry listed twice (one key) does not share its link with itself
        batch_links = Counter(link for link in {i.key: i.link for i, _ in batch}.values() if link)
        # A link several stored items or entries have names no one entry (a status page).
        shared = {
            link for counts in (stored_links, batch_links) for link, n in counts.items() if n > 1
        }
        # GUID and headline of the stored items an unknown key may be by its link: read only
        # for those, as the scan above runs for every feed of every poll.
        identity = _identities(
            conn,
            {
                by_link[i.link].id
                for i, _ in batch
                if i.key not in by_key and i.link in by_link and i.link not in shared
            },
        )
        inserts: dict[str, dict[str, Any]] = {}  # by key, in feed order
        new_items: dict[str, Item] = {}  # by key: what the story chooser sees
        updates: dict[int, dict[str, Any]] = {}  # by item id
        rehashed: dict[int, str] = {}  # item id -> entry fingerprint, content unchanged
        for item, label in batch:
            fields = {**_item_fields(item), **_label_fields(label)}
            found = by_key.get(item.key)
            if found is None and item.link in by_link and item.link not in shared:
                stored = by_link[item.link]
                if stored.id in identity and _same_item_by_link(*identity[stored.id], item):
                    found = stored
            if found is None:
                pending = _Known(None, item.content_hash, fields)
                inserts[item.key] = fields
                new_items[item.key] = item
                by_key[item.key] = pending
            elif found.content_hash != item.content_hash:
                found.content_hash = item.content_hash
                if found.id is None and found.fields is not None:  # new in this same batch
                    # The later version wins, under the key the pending row was filed by.
                    found.fields.update({k: v for k, v in fields.items() if k != "key"})
                else:
                    assert found.id is not None
                    # An edit of an archived entry is still old: only the first store decides.
                    updates[found.id] = {k: v for k, v in fields.items() if k != "archived"}
            elif found.id is not None and item.entry_hash not in (None, found.entry_hash):
                # Same content from a changed entry (or stored before fingerprints): keep the
                # new fingerprint, so the next poll skips the entry. Not an update.
                found.entry_hash = rehashed[found.id] = item.entry_hash
        if inserts:
            # A link other items of the feed have too names a page, not a story (stored
            # items under it were not matched, so each new one is another entry).
            page_links = {
                link
                for link in (item.link for item in new_items.values())
                if link and (stored_links[link] or batch_links[link] > 1)
            }
            stories_of, matches, keys_of = self._stories_for(
                conn,
                feed_id,
                list(inserts.values()),
                list(new_items.values()),
                now,
                stories,
                page_links,
                feed_stored=has_items,
            )
            conn.execute(
                sa.insert(items),
                [
                    {
                        **fields,
                        "feed_id": feed_id,
                        "first_seen_at": now,
                        "changed_at": now,
                        "story_id": story,
                    }
                    for fields, story in zip(inserts.values(), stories_of, strict=True)
                ],
            )
            if stories is not None or any(matches):
                self._after_insert(
                    conn, feed_id, list(new_items.values()), stories_of, matches, keys_of, now
                )
        if rehashed:
            conn.execute(
                sa.update(items)
                .where(items.c.id == sa.bindparam("b_id"))
                .values(entry_hash=sa.bindparam("b_hash")),
                [{"b_id": i, "b_hash": h} for i, h in rehashed.items()],
            )
        if updates:
            names = list(next(iter(updates.values())))
            conn.execute(
                sa.update(items)
                .where(items.c.id == sa.bindparam("b_id"))
                .values(changed_at=now, **{k: sa.bindparam(f"b_{k}") for k in names}),
                [
                    {"b_id": item_id, **{f"b_{k}": v for k, v in fields.items()}}
                    for item_id, fields in updates.items()
                ],
            )
        return UpsertResult(new=len(inserts), updated=len(updates))

    def _stories_for(
        self,
        conn: Connection,
        feed_id: int,
        rows: Sequence[dict[str, Any]],
        new: Sequence[Item],
        now: datetime,
        chooser: StoryChooser | None,
        shared: Container[str] = (),
        *,
        feed_stored: bool = True,
    ) -> tuple[list[int], list[StoryMatch | None], list[Sequence[int]]]:
        """The story of each new item: the existing story of its link, else the one the chooser
        picks (with its evidence) among the window's items sharing a band key, else a new
        story. Also each item's band keys, to be stored with it.

        A link in ``shared`` (other items of the feed have it too) is treated as no link: it
        says which page, not which of the feed's entries on it (a status page, a podcast's
        show page), so such items are matched by their text alone and their new stories carry
        no link for others to join by. ``feed_stored``: the feed has items stored (else no
        story holds one of its items, and that is not looked up)."""
        link_of = [r["link"] if r["link"] and r["link"] not in shared else None for r in rows]
        links = sorted({link for link in link_of if link})
        known: dict[str, int] = {}
        for start in range(0, len(links), 500):
            chunk = links[start : start + 500]
            for link, story_id in conn.execute(_LINK_STORIES, {"links": chunk}):
                known[link] = int(story_id)
        keys_of = [chooser.band_keys(item) for item in new] if chooser else []
        open_rows = [i for i, link in enumerate(link_of) if not (link and link in known)]
        shortlists: dict[int, Sequence[int]] = {}
        peers: dict[int, RecentItem] = {}
        own: set[int] = set()
        if chooser is not None and open_rows:
            ids_of, times = self._band_peers(
                conn, {k for i in open_rows for k in keys_of[i]}, now - chooser.window
            )
            for i in open_rows:
                counted = Counter(j for k in keys_of[i] for j in ids_of.get(k, ()))
                if not counted:
                    continue
                # Most shared band keys first (the likeliest copies), then the newest.
                ordered = sorted(counted, key=lambda j: (-counted[j], -j))
                shortlists[i] = chooser.shortlist(new[i], now, [(j, *times[j]) for j in ordered])
            peers, own = self._peer_texts(
                conn,
                sorted({j for ids in shortlists.values() for j in ids}),
                feed_id if feed_stored else None,
            )
        matches: list[StoryMatch | None] = []
        for i, (link, item) in enumerate(zip(link_of, new, strict=True)):
            if link and link in known:
                matches.append(
                    StoryMatch(known[link], None, "link", 1.0, reason="same canonical link")
                )
                continue
            found = [peers[j] for j in shortlists.get(i, ()) if j in peers]
            if chooser is None or not found:
                matches.append(None)
                continue
            matches.append(chooser.story_for(feed_id, item, now, found, own))
        needed = [
            link
            for link in dict.fromkeys(
                link for link, m in zip(link_of, matches, strict=True) if link and m is None
            )
            if link not in known
        ]
        linkless = sum(1 for link, m in zip(link_of, matches, strict=True) if not link and not m)
        new_ids = self._insert_stories(conn, [*needed, *([None] * linkless)], now)
        known.update(zip(needed, new_ids, strict=False))
        fresh = iter(new_ids[len(needed) :])
        out = [
            m.story_id if m else known[link] if link else next(fresh)
            for link, m in zip(link_of, matches, strict=True)
        ]
        return out, matches, keys_of

    def _band_peers(
        self, conn: Connection, keys: set[int], since: datetime
    ) -> tuple[dict[int, list[int]], dict[int, tuple[Micros | None, Micros]]]:
        """The items first seen since ``since`` with one of these band keys, by key (of the
        newest PEERS_PER_KEY per key), and when each was published and first seen: no text
        yet, as most never make a shortlist. Sees what this transaction stored: a batch's
        feeds see each other."""
        with self._bands_lock:
            index = self._band_index(conn)
            ids_of = index.lookup(keys)
            for key, ids in ids_of.items():
                if len(ids) > PEERS_PER_KEY:  # a key shared by so many items says little
                    ids_of[key] = sorted(ids)[-PEERS_PER_KEY:]
            times = index.times(sorted({i for ids in ids_of.values() for i in ids}), micros(since))
        return {k: [i for i in ids if i in times] for k, ids in ids_of.items()}, times

    def _peer_texts(
        self, conn: Connection, ids: Sequence[int], feed_id: int | None
    ) -> tuple[dict[int, RecentItem], set[int]]:
        """These items, text included; and which of their stories hold an item of
        ``feed_id`` (None: a feed with no items stored, so none)."""
        found: dict[int, RecentItem] = {}
        for start in range(0, len(ids), _CHUNK):
            for row in conn.execute(_PEERS, {"ids": ids[start : start + _CHUNK]}):
                found[row.id] = RecentItem(*row)
        own: set[int] = set()
        if feed_id is None:
            return found, own
        story_ids = sorted({p.story_id for p in found.values()})
        for start in range(0, len(story_ids), _CHUNK):
            chunk = story_ids[start : start + _CHUNK]
            own.update(conn.execute(_OWN_STORIES, {"feed_id": feed_id, "ids": chunk}).scalars())
        return found, own

    def _after_insert(
        self,
        conn: Connection,
        feed_id: int,
        new: Sequence[Item],
        stories_of: Sequence[int],
        matches: Sequence[StoryMatch | None],
        keys_of: Sequence[Sequence[int]],
        now: datetime,
    ) -> None:
        """Keep the evidence of each joined story and the band keys of each new item."""
        keys = [item.key for item in new]
        ids: dict[str, int] = {}
        if conn.dialect.name == "sqlite":  # the items were the last rows inserted
            ids.update(zip(keys, _last_ids(conn, items, len(keys)), strict=True))
        else:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                for key, item_id in conn.execute(_ITEM_IDS, {"feed_id": feed_id, "keys": chunk}):
                    ids[key] = int(item_id)
        evidence = [
            {
                "item_id": ids[item.key],
                "story_id": story,
                "matched_item_id": m.item_id,
                "rule": m.rule,
                "score": m.score,
                "title_score": m.title_score,
                "lead_score": m.lead_score,
                "reason": m.reason,
                "at": now,
            }
            for item, story, m in zip(new, stories_of, matches, strict=True)
            if m is not None
        ]
        if evidence:
            conn.execute(sa.insert(story_matches), evidence)
        if keys_of:
            self._add_bands(
                conn,
                [(ids[item.key], keys) for item, keys in zip(new, keys_of, strict=True) if keys],
            )

    def _band_index(self, conn: Connection) -> BandIndex:
        """The dedupe index, with the rows stored since it was last read: by another process,
        or by this one (the feeds of one transaction see each other). Under _bands_lock.

        "Since" is by item id: SQLite has one writer at a time, so ids are committed in
        order. A backend whose ids may commit out of order (PostgreSQL sequences) needs
        another watermark."""
        from .bandindex import BandIndex, micros_many

        if self._bands is None:
            self._bands = BandIndex()
        query = _band_rows(conn.dialect.name == "sqlite")
        # In parts: the rows of a whole window at once (71,000 items) took 70 MB more memory
        # than the index they make.
        for rows in conn.execute(query, {"high": self._bands.high}).partitions(BAND_ROWS):
            ids, blobs, when_published, when_seen = zip(*rows, strict=True)
            self._bands.add_columns(
                ids, [bytes(k) for k in blobs], micros_many(when_published), micros_many(when_seen)
            )
        return self._bands

    def _add_bands(self, conn: Connection, rows: Sequence[tuple[int, Iterable[int]]]) -> None:
        """Store the band keys of new items, (item id, keys) pairs. The index in memory reads
        them at its next lookup."""
        from .bandindex import pack

        packed = [(item_id, pack(dict.fromkeys(keys))) for item_id, keys in rows]
        if packed:
            values = _PLACEHOLDERS[conn.dialect.paramstyle]
            # Straight to the driver: SQLAlchemy's per-row parameter handling costs more here.
            conn.exec_driver_sql(
                f"INSERT INTO item_bands (item_id, band_keys) VALUES ({values})", packed
            )

    def _insert_stories(
        self, conn: Connection, links: Sequence[str | None], now: datetime
    ) -> list[int]:
        """New stories, one per entry; their ids in order. Links must be new and distinct.

        Linked ones are inserted with one executemany and their ids read back (SQLite would
        otherwise run an INSERT ... RETURNING per row to keep the order): on SQLite as the last
        ids given (_last_ids), elsewhere by link.
        """
        if not links:
            return []
        linked = [link for link in links if link is not None]
        by_link: dict[str, int] = {}
        if linked:
            conn.execute(sa.insert(stories), [{"first_seen_at": now, "link": x} for x in linked])
            if conn.dialect.name == "sqlite":
                by_link.update(zip(linked, _last_ids(conn, stories, len(linked)), strict=True))
            else:
                for start in range(0, len(linked), 500):
                    chunk = linked[start : start + 500]
                    for link, story_id in conn.execute(_NEW_LINK_STORIES, {"links": chunk}):
                        by_link[link] = int(story_id)
        ids = []
        for link in links:
            if link is not None:
                ids.append(by_link[link])
                continue
            key = conn.execute(
                sa.insert(stories).values(first_seen_at=now, link=None)
            ).inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        return ids

    def entry_hashes(self, feed_id: int) -> frozenset[str]:
        """The entry fingerprints of a feed's stored items (extract.entry_fingerprints)."""
        query = sa.select(items.c.entry_hash).where(
            items.c.feed_id == feed_id, items.c.entry_hash.is_not(None)
        )
        with self.engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def items(
        self,
        *,
        since: datetime | None = None,
        feed_url: str | None = None,
        limit: int | None = None,
    ) -> list[StoredItem]:
        query = (
            sa.select(items, *_ITEM_FEED_COLUMNS)
            .select_from(items.join(feeds, feeds.c.id == items.c.feed_id))
            .order_by(items.c.first_seen_at.desc(), items.c.id.desc())
        )
        if since is not None:
            query = query.where(items.c.first_seen_at >= since)
        if feed_url is not None:
            query = query.where(feeds.c.url == feed_url)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_stored_item(row) for row in conn.execute(query).mappings()]

    def item(self, item_id: int) -> StoredItem | None:
        query = (
            sa.select(items, *_ITEM_FEED_COLUMNS)
            .select_from(items.join(feeds, feeds.c.id == items.c.feed_id))
            .where(items.c.id == item_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _stored_item(row)

    def count_items(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar() or 0)

    # -- topics --

    def undelivered_items(self, *, since: datetime | None = None) -> list[StoredItem]:
        """Items (first seen at or after `since`) of stories not yet delivered to anyone:
        those a new topic config may move."""
        sent = sa.select(delivered.c.story_id)
        query = (
            sa.select(items, *_ITEM_FEED_COLUMNS)
            .select_from(items.join(feeds, feeds.c.id == items.c.feed_id))
            .where(items.c.story_id.not_in(sent))
            .order_by(items.c.id)
        )
        if since is not None:
            query = query.where(items.c.first_seen_at >= since)
        with self.engine.connect() as conn:
            return [_stored_item(row) for row in conn.execute(query).mappings()]

    def is_delivered(self, story_id: int) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(delivered.c.story_id).where(delivered.c.story_id == story_id).limit(1)
            ).first()
        return found is not None

    def relabel_items(self, labels: Sequence[tuple[int, TopicLabel]]) -> int:
        """Store new topics, evidence and filter decisions by item id; how many changed."""
        if not labels:
            return 0
        rows = [
            {"b_id": item_id, **{f"b_{k}": v for k, v in _label_fields(label).items()}}
            for item_id, label in labels
        ]
        names = [k.removeprefix("b_") for k in rows[0] if k != "b_id"]
        with self._tx() as conn:
            conn.execute(
                sa.update(items)
                .where(items.c.id == sa.bindparam("b_id"))
                .values(**{k: sa.bindparam(f"b_{k}") for k in names}),
                rows,
            )
        return len(rows)

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(sa.delete(meta).where(meta.c.key == key))
            conn.execute(sa.insert(meta).values(key=key, value=value))

    # -- stories --

    def recent_items(
        self, since: datetime, *, after_id: int = 0, limit: int | None = None
    ) -> list[RecentItem]:
        """Items first seen at or after ``since`` (and with id > ``after_id``), oldest first,
        at most ``limit``: what the dedupe index should hold (pipeline.band_window)."""
        query = (
            sa.select(*_RECENT_COLUMNS)
            .where(items.c.first_seen_at >= since, items.c.id > after_id)
            .order_by(items.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [RecentItem(*row) for row in conn.execute(query)]

    def add_story_bands(self, rows: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Store the band keys of stored items: (item id, keys) pairs."""
        with self._tx() as conn:
            self._add_bands(conn, rows)
        # Items of any age (banding the window again): the index reads only rows after the
        # newest it holds, so it is read again whole.
        self._forget_bands()

    def prune_story_bands(self, before: datetime) -> int:
        """Forget the band keys of items first seen before ``before`` (item ids grow with
        first_seen_at, so it is one id range); the rows deleted."""
        with self._tx() as conn:
            first = conn.execute(
                sa.select(sa.func.min(items.c.id)).where(items.c.first_seen_at >= before)
            ).scalar()
            if first is None:  # no item is in the window
                first = int(conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0) + 1
            deleted = int(
                conn.execute(sa.delete(item_bands).where(item_bands.c.item_id < first)).rowcount
            )
        with self._bands_lock:
            if self._bands is not None:
                self._bands.drop_below(first)
        return deleted

    def clear_story_bands(self) -> None:
        with self._tx() as conn:
            conn.execute(sa.delete(item_bands))
        self._forget_bands()

    def count_story_bands(self) -> int:
        """The band keys stored, of every item."""
        with self.engine.connect() as conn:
            size = conn.execute(
                sa.select(sa.func.sum(sa.func.length(item_bands.c.band_keys)))
            ).scalar()
        return int(size or 0) // 8  # bandindex.pack: 8 bytes a key

    def story_items(self, story_id: int) -> list[StoredItem]:
        """Every item of one story, in the order they were first seen."""
        query = (
            sa.select(items, *_ITEM_FEED_COLUMNS)
            .select_from(items.join(feeds, feeds.c.id == items.c.feed_id))
            .where(items.c.story_id == story_id)
            .order_by(items.c.first_seen_at, items.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored_item(row) for row in conn.execute(query).mappings()]

    def story_evidence(self, story_id: int) -> dict[int, StoryMatch]:
        """item id -> why it joined the story (items that started it have none)."""
        query = sa.select(story_matches).where(story_matches.c.story_id == story_id)
        with self.engine.connect() as conn:
            return {
                int(r.item_id): StoryMatch(
                    story_id=int(r.story_id),
                    item_id=r.matched_item_id,
                    rule=r.rule,
                    score=float(r.score),
                    title_score=float(r.title_score),
                    lead_score=float(r.lead_score),
                    reason=r.reason,
                )
                for r in conn.execute(query)
            }

    # -- editions --

    def last_edition_cutoff(self, digest: str, recipient: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(editions.c.cutoff)).where(
                    editions.c.digest == digest, editions.c.recipient == recipient
                )
            ).scalar()
        return UTCDateTime().process_result_value(value, self.engine.dialect) if value else None

    def edition_cutoffs_around(
        self, digest: str, at: datetime
    ) -> tuple[datetime | None, datetime | None]:
        """The latest cutoff of ``digest``'s editions before ``at`` and the earliest at or
        after it, over every recipient; None where there is none."""
        with self.engine.connect() as conn:
            before, after = conn.execute(
                sa.select(
                    sa.select(sa.func.max(editions.c.cutoff))
                    .where(editions.c.digest == digest, editions.c.cutoff < at)
                    .scalar_subquery(),
                    sa.select(sa.func.min(editions.c.cutoff))
                    .where(editions.c.digest == digest, editions.c.cutoff >= at)
                    .scalar_subquery(),
                )
            ).one()
        return before, after  # min/max keep the column's type: aware UTC already

    def last_editions(
        self, digest: str, *, before: datetime | None = None
    ) -> dict[str, EditionMark]:
        """Per recipient, where their latest edition of ``digest`` (by cutoff; with
        ``before``, the latest with a cutoff before it) left off."""
        latest_cutoff = sa.select(
            editions.c.recipient, sa.func.max(editions.c.cutoff).label("cutoff")
        ).where(editions.c.digest == digest)
        if before is not None:
            latest_cutoff = latest_cutoff.where(editions.c.cutoff < before)
        latest = latest_cutoff.group_by(editions.c.recipient).subquery()
        query = (
            sa.select(
                editions.c.recipient,
                editions.c.cutoff,
                sa.func.max(editions.c.last_story_id).label("last_story_id"),
            )
            .join(
                latest,
                sa.and_(
                    latest.c.recipient == editions.c.recipient,
                    latest.c.cutoff == editions.c.cutoff,
                ),
            )
            .where(editions.c.digest == digest)
            .group_by(editions.c.recipient, editions.c.cutoff)
        )
        with self.engine.connect() as conn:
            return {
                r.recipient: EditionMark(cutoff=r.cutoff, last_story_id=r.last_story_id)
                for r in conn.execute(query)
            }

    def editions_at(self, digest: str, cutoff: datetime) -> list[EditionRecord]:
        """The editions of ``digest`` with this cutoff, one per recipient, in recorded order
        (story_ids left empty: see ``deliveries``)."""
        query = (
            sa.select(editions)
            .where(editions.c.digest == digest, editions.c.cutoff == cutoff)
            .order_by(editions.c.id)
        )
        with self.engine.connect() as conn:
            return [_edition_record(r) for r in conn.execute(query)]

    def edition_built_at(self, digest: str, edition_key: str) -> datetime | None:
        """When this edition was first built (for anyone); None if it never was."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(editions.c.built_at)).where(
                    editions.c.digest == digest, editions.c.edition_key == edition_key
                )
            ).scalar()
        return value

    def edition_exists(self, digest: str, recipient: str, edition_key: str) -> bool:
        return recipient in self.edition_recipients(digest, edition_key, [recipient])

    def edition_recipients(
        self, digest: str, edition_key: str, among: Sequence[str] | None = None
    ) -> set[str]:
        """Recipients who already have this edition recorded (optionally only ``among``)."""
        query = sa.select(editions.c.recipient).where(
            editions.c.digest == digest, editions.c.edition_key == edition_key
        )
        if among is not None:
            query = query.where(editions.c.recipient.in_(list(among)))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def max_story_id(self) -> int:
        """The highest story id committed so far: the watermark an edition is chosen under.

        SQLite hands out row ids in commit order (one writer at a time), so a story with a
        higher id was not visible when this was read. (PostgreSQL sequences are not commit
        ordered: a second backend needs another watermark.)
        """
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(stories.c.id))).scalar() or 0)

    def story_candidates(
        self,
        *,
        since: datetime,
        cutoff: datetime,
        published_after: datetime,
        feed_priority: Callable[[str], int],
        after_story_id: int | None = None,
        upto_story_id: int | None = None,
        story_ids: Sequence[int] | None = None,
    ) -> list[StoryCandidate]:
        """Stories new for an edition at ``cutoff``, for every reader alike: what already
        reached each of them is the caller's to leave out (``delivered_pairs``).

        New: first seen in (since, cutoff], or (with ``after_story_id``) committed after the
        previous edition was chosen although stamped before its cutoff (a poll that was
        still writing); never above ``upto_story_id``. Items first seen after ``cutoff``,
        published before ``published_after`` or archived (Item.archived) are left out.
        ``story_ids`` instead reads exactly those stories (a recorded edition, rebuilt).
        """
        conditions = [items.c.first_seen_at <= cutoff, items.c.filtered == sa.false()]
        if story_ids is not None:
            conditions.append(items.c.story_id.in_(list(story_ids)))
        else:
            new: sa.ColumnElement[bool] = stories.c.first_seen_at > since
            if after_story_id is not None:
                new = sa.or_(new, stories.c.id > after_story_id)
            conditions += [
                new,
                stories.c.first_seen_at <= cutoff,
                sa.or_(items.c.published_at.is_(None), items.c.published_at >= published_after),
                items.c.archived == sa.false(),
            ]
            if upto_story_id is not None:
                conditions.append(stories.c.id <= upto_story_id)
        query = (
            sa.select(items, *_ITEM_FEED_COLUMNS)
            .select_from(items.join(feeds, feeds.c.id == items.c.feed_id))
            .join(stories, stories.c.id == items.c.story_id)
            .where(*conditions)
            .order_by(items.c.story_id, items.c.first_seen_at, items.c.id)
        )
        by_story: dict[int, list[StoredItem]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                it = _stored_item(row)
                by_story.setdefault(it.story_id, []).append(it)
        out: list[StoryCandidate] = []
        for story_id, members in by_story.items():
            # Representative: highest feed priority, then earliest, then the fullest lead.
            members.sort(
                key=lambda m: (-feed_priority(m.feed_url), m.first_seen_at, -len(m.lead), m.id)
            )
            rep = members[0]
            others = [(m.feed_url, m.source_name, m.link) for m in members[1:] if m.link]
            out.append(
                StoryCandidate(
                    story_id=story_id,
                    item_id=rep.id,
                    title=rep.title,
                    lead=rep.lead,
                    link=rep.link,
                    source=rep.source_name,
                    source_feed=rep.feed_url,
                    published_at=rep.published_at,
                    first_seen_at=rep.first_seen_at,
                    topic=rep.topic,
                    priority=feed_priority(rep.feed_url),
                    also=tuple((name, link) for _, name, link in others),
                    also_feeds=tuple(feed for feed, _, _ in others),
                )
            )
        return out

    def delivered_pairs(self, story_ids: Sequence[int]) -> set[tuple[str, int]]:
        """(address, story id) of these stories already delivered, by any digest: a reader of
        two digests gets a story once. Addresses lower-cased, as unsubscribes keeps them, so
        an address whose case the editor changed is still the same reader."""
        ids = sorted(set(story_ids))
        found: set[tuple[str, int]] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = sa.select(delivered.c.recipient, delivered.c.story_id).where(
                    delivered.c.story_id.in_(ids[start : start + _CHUNK])
                )
                found.update((_address(r.recipient), r.story_id) for r in conn.execute(query))
        return found

    def deliveries(self, story_ids: Sequence[int]) -> list[Delivery]:
        """Every delivery of these stories, by any digest, oldest edition first."""
        ids = sorted(set(story_ids))
        found: list[Delivery] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = (
                    sa.select(
                        delivered.c.recipient,
                        delivered.c.story_id,
                        delivered.c.edition_id,
                        delivered.c.digest,
                        editions.c.edition_key,
                    )
                    .join(editions, editions.c.id == delivered.c.edition_id)
                    .where(delivered.c.story_id.in_(ids[start : start + _CHUNK]))
                )
                found += [
                    Delivery(
                        _address(r.recipient), r.story_id, r.edition_id, r.digest, r.edition_key
                    )
                    for r in conn.execute(query)
                ]
        return sorted(found, key=lambda d: (d.edition_id, d.story_id))

    def record_edition(
        self,
        *,
        digest: str,
        recipient: str,
        edition_key: str,
        cutoff: datetime,
        now: datetime,
        message_name: str | None,
        story_ids: Sequence[int],
    ) -> None:
        """Remember an edition whose file (if any) is already written, with its stories."""
        self.record_editions(
            [
                EditionRecord(
                    digest=digest,
                    recipient=recipient,
                    edition_key=edition_key,
                    cutoff=cutoff,
                    built_at=now,
                    message_name=message_name,
                    story_ids=tuple(story_ids),
                    written_at=now,
                )
            ]
        )

    def record_editions(self, records: Sequence[EditionRecord]) -> list[int]:
        """Remember editions and the stories each delivers, in one transaction; their ids.

        An edition with a message is recorded unwritten (``written_at`` None) unless the
        record says otherwise: the caller writes the file, then calls ``mark_written``. A
        crash in between leaves it in ``unwritten_editions``, to be written again.
        """
        ids: list[int] = []
        with self._tx() as conn:
            for rec in records:
                written = rec.written_at or (rec.built_at if rec.message_name is None else None)
                result = conn.execute(
                    sa.insert(editions).values(
                        digest=rec.digest,
                        recipient=rec.recipient,
                        edition_key=rec.edition_key,
                        cutoff=rec.cutoff,
                        built_at=rec.built_at,
                        message_name=rec.message_name,
                        story_count=len(rec.story_ids),
                        written_at=written,
                        last_story_id=rec.last_story_id,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
            rows = [
                {"digest": rec.digest, "recipient": rec.recipient, "story_id": s, "edition_id": i}
                for rec, i in zip(records, ids, strict=True)
                for s in dict.fromkeys(rec.story_ids)
            ]
            if rows:
                conn.execute(sa.insert(delivered), rows)
        return ids

    def mark_written(self, edition_ids: Sequence[int], now: datetime) -> None:
        """The files of these editions are in the outbox."""
        if not edition_ids:
            return
        with self._tx() as conn:
            conn.execute(
                sa.update(editions)
                .where(editions.c.id.in_(list(edition_ids)), editions.c.written_at.is_(None))
                .values(written_at=now)
            )

    def record_sent(self, message_names: Sequence[str], at: datetime) -> None:
        """The SMTP server accepted these outbox files (deliver): their editions' sent_at."""
        names = sorted(set(message_names))
        with self._tx() as conn:
            for start in range(0, len(names), _CHUNK):
                conn.execute(
                    sa.update(editions)
                    .where(
                        editions.c.message_name.in_(names[start : start + _CHUNK]),
                        editions.c.sent_at.is_(None),
                    )
                    .values(sent_at=at)
                )

    def sent_messages(self, message_names: Sequence[str]) -> list[str]:
        """Of these outbox files, those the SMTP server accepted already (``record_sent``)."""
        names = sorted(set(message_names))
        out: list[str] = []
        with self.engine.connect() as conn:
            for start in range(0, len(names), _CHUNK):
                out.extend(
                    conn.execute(
                        sa.select(editions.c.message_name).where(
                            editions.c.message_name.in_(names[start : start + _CHUNK]),
                            editions.c.sent_at.is_not(None),
                        )
                    ).scalars()
                )
        return sorted(set(out))

    def unsubscribed_messages(self, message_names: Sequence[str]) -> list[str]:
        """Of these outbox files, the unsent ones whose recipient has left their digest since
        they were written."""
        names = sorted(set(message_names))
        out: list[str] = []
        with self.engine.connect() as conn:
            left = {
                (digest, recipient)
                for digest, recipient in conn.execute(
                    sa.select(unsubscribes.c.digest, unsubscribes.c.recipient)
                )
            }
            if not left:
                return []
            for start in range(0, len(names), _CHUNK):
                rows = conn.execute(
                    sa.select(
                        editions.c.message_name, editions.c.digest, editions.c.recipient
                    ).where(
                        editions.c.message_name.in_(names[start : start + _CHUNK]),
                        editions.c.sent_at.is_(None),
                    )
                )
                out.extend(
                    name
                    for name, digest, recipient in rows
                    if (digest, _address(recipient)) in left
                )
        return sorted(out)

    def sent_counts(self, digest: str, cutoff: datetime) -> tuple[int, int]:
        """Of the editions of ``digest`` at ``cutoff``: (messages written, messages sent)."""
        query = sa.select(
            sa.func.count(editions.c.message_name), sa.func.count(editions.c.sent_at)
        ).where(editions.c.digest == digest, editions.c.cutoff == cutoff)
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return int(row[0]), int(row[1])

    def unwritten_editions(self, digest: str) -> list[EditionRecord]:
        """Editions of ``digest`` recorded but not marked written (a run stopped in between),
        oldest first, each with its stories in the order they were recorded."""
        query = (
            sa.select(editions)
            .where(editions.c.digest == digest, editions.c.written_at.is_(None))
            .order_by(editions.c.id)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            if not rows:
                return []
            stories_of: dict[int, list[int]] = {}
            for r in conn.execute(
                sa.select(delivered.c.edition_id, delivered.c.story_id)
                .where(delivered.c.edition_id.in_([r.id for r in rows]))
                .order_by(delivered.c.edition_id, delivered.c.story_id)
            ):
                stories_of.setdefault(r.edition_id, []).append(r.story_id)
        return [_edition_record(r, tuple(stories_of.get(r.id, ()))) for r in rows]

    # -- unsubscribes and health --

    def unsubscribe(self, digest: str, recipient: str, at: datetime, via: str) -> bool:
        """Record that ``recipient`` left ``digest``; False when they had already left (the
        first time and way are kept)."""
        address = _address(recipient)
        with self._tx() as conn:
            found = conn.execute(
                sa.select(unsubscribes.c.at).where(
                    unsubscribes.c.digest == digest, unsubscribes.c.recipient == address
                )
            ).first()
            if found is not None:
                return False
            conn.execute(
                sa.insert(unsubscribes).values(digest=digest, recipient=address, at=at, via=via)
            )
        return True

    def resubscribe(self, digest: str, recipient: str) -> bool:
        """Forget that ``recipient`` left ``digest`` (they asked to come back); False when
        they had not left."""
        address = _address(recipient)
        with self._tx() as conn:
            gone = conn.execute(
                sa.delete(unsubscribes).where(
                    unsubscribes.c.digest == digest, unsubscribes.c.recipient == address
                )
            )
        return bool(gone.rowcount)

    def unsubscribed(self, digest: str) -> set[str]:
        """The lower-cased addresses that left ``digest``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(unsubscribes.c.recipient).where(unsubscribes.c.digest == digest)
            )
            return {str(r) for (r,) in rows}

    def unsubscribes(self) -> list[Unsubscribe]:
        """Every unsubscribe, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(unsubscribes).order_by(unsubscribes.c.at, unsubscribes.c.recipient)
            )
            return [Unsubscribe(r.digest, r.recipient, r.at, r.via) for r in rows]

    def prune_polls(self, before: datetime) -> int:
        """Delete the poll attempts recorded before ``before`` (history: a feed's state is in
        its own row); the rows deleted."""
        with self._tx() as conn:
            return int(conn.execute(sa.delete(polls).where(polls.c.at < before)).rowcount)

    def last_poll_at(self) -> datetime | None:
        """When the latest poll attempt was recorded (None: never); a query that also shows
        the store answers."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(polls.c.at))).scalar()
        if value is None:
            return None
        if isinstance(value, str):  # SQLite hands an aggregate back as text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """One (digest, address) that left, as `aggregator subscribers` shows it."""

    digest: str
    recipient: str  # lower-cased
    at: datetime
    via: str  # one-click (RFC 8058 POST) | web (the page's button) | editor (the CLI)


_FEED_STATE_FIELDS = [
    f for f in FeedState.__dataclass_fields__ if f not in ("items_stored", "items_recent")
]
RECENT = timedelta(days=7)  # FeedState.items_recent counts items first seen this recently


@dataclass(slots=True)
class _Known:
    """An item already stored (id) or about to be inserted (fields), during one upsert."""

    id: int | None
    content_hash: str
    fields: dict[str, Any] | None = None
    entry_hash: str | None = None


def _edition_record(r: Any, story_ids: tuple[int, ...] = ()) -> EditionRecord:
    """An editions row as a record, with the stories given (the delivered table's)."""
    return EditionRecord(
        digest=r.digest,
        recipient=r.recipient,
        edition_key=r.edition_key,
        cutoff=r.cutoff,
        built_at=r.built_at,
        message_name=r.message_name,
        story_ids=story_ids,
        last_story_id=r.last_story_id,
        id=r.id,
        written_at=r.written_at,
    )


def _identities(conn: Connection, ids: set[int | None]) -> dict[int, tuple[str | None, str]]:
    """Item id -> (GUID, headline) of these stored items."""
    wanted = sorted(i for i in ids if i is not None)
    found: dict[int, tuple[str | None, str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        for item_id, guid, title in conn.execute(
            sa.select(items.c.id, items.c.guid, items.c.title).where(
                items.c.id.in_(wanted[start : start + _CHUNK])
            )
        ):
            found[int(item_id)] = (guid, title)
    return found


def _last_ids(conn: Connection, table: sa.Table, count: int) -> range:
    """On SQLite, the ids of the last ``count`` rows this transaction inserted into ``table``
    (with one executemany, without ids), in order. SQLite gives a new row the largest id plus
    one, and once a transaction has written, no other writes until it ends: the rows are the
    ``count`` largest ids. (Not so with PostgreSQL's sequences: other transactions take ids
    between ours.)"""
    last = conn.execute(_LAST_ID[table.name]).scalar_one()
    return range(last - count + 1, last + 1)


def _same_item_by_link(guid: str | None, title: str, item: Item) -> bool:
    """Whether ``item``, whose key no stored item of its feed has, is the feed's stored item
    (``guid``, ``title``) under the same link, a link no other stored item or entry of the
    batch has: a feed that makes up new GUIDs on every poll, or that has started to give
    GUIDs. Not when both have GUIDs and their headlines (folded) differ as well: another
    entry."""
    if guid and item.guid and guid != item.guid:
        return fold_words(title) == fold_words(item.title)
    return True


def _feed_values(w: PollWrite, counted: UpsertResult) -> tuple[dict[str, Any], bool]:
    """The feed row's new values after one attempt, and whether it failed (streak + 1)."""
    record, result = w.record, w.result
    values: dict[str, Any] = {
        "last_poll_at": w.at,
        "last_outcome": record.outcome.value,
        "last_status": record.status,
        "next_due_at": record.next_due_at,
    }
    ok = record.outcome in (PollOutcome.UPDATED, PollOutcome.NOT_MODIFIED)
    if ok:
        values.update(last_success_at=w.at, last_error=None, error_streak=0, gone_at=None)
        if result is not None:
            values.update(etag=result.etag, last_modified=result.last_modified)
            if record.outcome is PollOutcome.UPDATED:
                values["body_hash"] = result.body_hash
        if record.outcome is PollOutcome.UPDATED:
            values["last_note"] = record.note
    else:
        values["last_error"] = record.error
        if record.outcome is PollOutcome.GONE:
            values["gone_at"] = w.at
    if result is not None and result.permanent_redirect:
        values["moved_to"] = result.permanent_redirect
    if counted.new or record.new_items:
        values["last_new_item_at"] = w.at
    if w.feed_title is not None:
        values["title"] = w.feed_title
    if w.ttl_minutes is not None:
        values["ttl_minutes"] = w.ttl_minutes
    return values, not ok


# Columns of a RecentItem, in order.
_RECENT_COLUMNS = (
    items.c.id,
    items.c.story_id,
    items.c.feed_id,
    items.c.title,
    items.c.lead,
    items.c.link,
    items.c.published_at,
    items.c.first_seen_at,
)
_CHUNK = 500  # values per IN (...): well under every backend's limit on bound parameters

# The queries a poll runs for every feed it writes, built once: building and keying a statement
# per call cost more than running it.
_FEED_ITEMS = (  # a feed's stored items, as _upsert compares them with a fetch
    sa.select(items.c.id, items.c.key, items.c.link, items.c.content_hash, items.c.entry_hash)
    .where(items.c.feed_id == sa.bindparam("feed_id"))
    .order_by(items.c.id)
)
_PEERS = sa.select(*_RECENT_COLUMNS).where(items.c.id.in_(sa.bindparam("ids", expanding=True)))
_OWN_STORIES = (  # which of these stories hold an item of the feed
    sa.select(items.c.story_id)
    .distinct()
    .where(
        items.c.feed_id == sa.bindparam("feed_id"),
        items.c.story_id.in_(sa.bindparam("ids", expanding=True)),
    )
)
_ITEM_IDS = sa.select(items.c.key, items.c.id).where(
    items.c.feed_id == sa.bindparam("feed_id"),
    items.c.key.in_(sa.bindparam("keys", expanding=True)),
)
_LAST_ID = {t.name: sa.select(sa.func.max(t.c.id)) for t in (items, stories)}
_LINK_STORIES, _NEW_LINK_STORIES = (  # the first (an item joins it) / last story of each link
    sa.select(stories.c.link, first_or_last(stories.c.id))
    .where(stories.c.link.in_(sa.bindparam("links", expanding=True)))
    .group_by(stories.c.link)
    for first_or_last in (sa.func.min, sa.func.max)
)


@functools.cache
def _band_rows(sqlite: bool) -> sa.Select[Any]:
    """The item_bands rows after item id ``high``, with their items' times, in id order: what
    the index reads (Store._band_index). Built once: a poll runs it for every feed."""
    published: sa.ColumnElement[Any] = items.c.published_at
    first_seen: sa.ColumnElement[Any] = items.c.first_seen_at
    if sqlite:
        # The stored text (UTCDateTime: the UTC wall time), converted by numpy in bulk:
        # UTCDateTime's conversion of each value to an aware datetime took half of the
        # 0.8 s that reading 71,000 items took.
        published, first_seen = (
            sa.type_coerce(published, sa.Text),
            sa.type_coerce(first_seen, sa.Text),
        )
    return (
        sa.select(item_bands.c.item_id, item_bands.c.band_keys, published, first_seen)
        .join(items, items.c.id == item_bands.c.item_id)
        .where(item_bands.c.item_id > sa.bindparam("high"))
        .order_by(item_bands.c.item_id)
    )


PEERS_PER_KEY = 200  # candidates read per band key, the newest
BAND_ROWS = 5000  # item_bands rows read into the index at a time


_PLACEHOLDERS = {"qmark": "?, ?", "format": "%s, %s", "pyformat": "%s, %s", "numeric": ":1, :2"}


def _address(recipient: str) -> str:
    """An e-mail address as unsubscribes keeps it."""
    return recipient.strip().lower()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Checkpoint every 64 MB of WAL, not SQLite's 4 MB: a poll's writes touch index pages all
    # over the file, and each checkpoint copies and syncs them (it was story_bands, a B-tree of
    # random keys, that needed it most: see migration 13).
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.close()


def _item_fields(item: Item) -> dict[str, Any]:
    return {
        "key": item.key,
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "title_generated": item.title_generated,
        "lead": item.lead,
        "author": item.author,
        "image_url": item.image_url,
        "categories": json.dumps(list(item.categories), ensure_ascii=False),
        "published_at": item.published_at,
        "content_hash": item.content_hash,
        "source": item.source,
        "entry_hash": item.entry_hash,
        "archived": item.archived,
    }


# The feed columns read with each item: what its feed is shown as.
_ITEM_FEED_COLUMNS = (
    feeds.c.url.label("feed_url"),
    feeds.c.name.label("feed_name"),
    feeds.c.title.label("feed_title"),
)


def _stored_item(row: Any) -> StoredItem:
    return StoredItem(
        id=row["id"],
        feed_url=row["feed_url"],
        feed_name=feed_display_name(row["feed_name"], row["feed_title"], row["feed_url"]),
        key=row["key"],
        guid=row["guid"],
        link=row["link"],
        title=row["title"],
        title_generated=bool(row["title_generated"]),
        lead=row["lead"],
        author=row["author"],
        image_url=row["image_url"],
        categories=tuple(json.loads(row["categories"] or "[]")),
        published_at=row["published_at"],
        first_seen_at=row["first_seen_at"],
        topic=row["topic"],
        story_id=row["story_id"],
        topic_evidence=json.loads(row["topic_evidence"] or "{}"),
        filtered=bool(row["filtered"]),
        filter_reason=row["filter_reason"],
        source=row["source"],
        archived=bool(row["archived"]),
    )


def _label_fields(label: TopicLabel | str) -> dict[str, Any]:
    """The item columns categorize decides; a bare topic key means 'no evidence kept'."""
    if isinstance(label, str):
        label = TopicLabel(label)
    return {
        "topic": label.topic,
        "topic_evidence": json.dumps(dict(label.evidence), ensure_ascii=False),
        "filtered": label.filtered,
        "filter_reason": label.filter_reason,
    }
