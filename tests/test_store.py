"""The store on real SQLite files: schema, identity, polls, editions."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.errors import StoreError
from aggregator.records import FetchResult, Item, PollOutcome
from aggregator.store import SCHEMA_VERSION, PollRecord, Store, sqlite_url
from tests.builders import feed_row

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def make_item(
    key: str, *, title: str = "A headline", link: str | None = None, lead: str = ""
) -> Item:
    return Item(
        key=key,
        guid=key,
        link=link,
        title=title,
        title_generated=False,
        lead=lead,
        author=None,
        image_url=None,
        categories=("World",),
        published_at=T0 - timedelta(hours=1),
        content_hash=f"{title}|{lead}|{link}",
    )


@pytest.fixture
def store(tmp_path):
    s = Store.open(sqlite_url(tmp_path / "data"))
    yield s
    s.close()


def feed_id(store: Store, url: str) -> int:
    return feed_row(store, url, T0)


def test_new_database_is_migrated_to_current_version_with_wal(tmp_path):
    store = Store.open(sqlite_url(tmp_path / "d"))
    assert store.version() == SCHEMA_VERSION
    store.close()
    conn = sqlite3.connect(tmp_path / "d" / "aggregator.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("select version from schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def test_database_from_a_newer_version_is_refused(tmp_path):
    Store.open(sqlite_url(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / "aggregator.sqlite3")
    conn.execute("update schema_version set version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(sqlite_url(tmp_path))


def test_reopening_keeps_data_and_does_not_remigrate(tmp_path):
    s = Store.open(sqlite_url(tmp_path))
    fid = feed_id(s, "https://a.example/feed")
    s.upsert_items(fid, [(make_item("g1"), "world")], T0)
    s.close()
    s = Store.open(sqlite_url(tmp_path))
    assert s.count_items() == 1
    s.close()


def test_same_key_twice_updates_in_place(store):
    fid = feed_id(store, "https://a.example/feed")
    first = store.upsert_items(fid, [(make_item("g1"), "world")], T0)
    again = store.upsert_items(fid, [(make_item("g1"), "world")], T0 + timedelta(hours=1))
    edited = store.upsert_items(
        fid, [(make_item("g1", title="A corrected headline"), "world")], T0 + timedelta(hours=2)
    )
    assert (first.new, again.new, again.updated, edited.new, edited.updated) == (1, 0, 0, 0, 1)
    [stored] = store.items()
    assert stored.title == "A corrected headline"
    assert stored.first_seen_at == T0  # an edit is not a new story


def test_changed_guid_with_same_link_is_the_same_item(store):
    fid = feed_id(store, "https://a.example/feed")
    store.upsert_items(fid, [(make_item("g1", link="https://a.example/s/1"), "")], T0)
    result = store.upsert_items(fid, [(make_item("g2", link="https://a.example/s/1"), "")], T0)
    assert result.new == 0
    assert store.count_items() == 1


def test_a_feed_that_started_giving_guids_keeps_its_items(store):
    fid = feed_id(store, "https://a.example/feed")
    link = "https://a.example/s/1"
    untagged = replace(make_item(link, link=link), guid=None)
    store.upsert_items(fid, [(untagged, "")], T0)
    result = store.upsert_items(fid, [(make_item("g1", title="Edited", link=link), "")], T0)
    assert (result.new, result.updated) == (0, 1)


def test_another_guid_under_another_headline_is_a_new_item_though_the_link_is_the_same(store):
    # A status page: every incident links the page itself.
    fid = feed_id(store, "https://status.example/feed")
    page = "https://status.example/"
    store.upsert_items(fid, [(make_item("inc-1", title="API errors", link=page), "")], T0)
    result = store.upsert_items(
        fid, [(make_item("inc-2", title="Login delays", link=page), "")], T0 + timedelta(hours=1)
    )
    assert (result.new, result.updated) == (1, 0)
    assert [i.key for i in store.items()] == ["inc-2", "inc-1"]


def test_a_link_several_entries_share_names_none_of_them(store):
    fid = feed_id(store, "https://show.example/feed")
    page = "https://show.example/"
    batch = [(make_item(f"ep-{n}", title="Episode", link=page), "") for n in (1, 2)]
    first = store.upsert_items(fid, batch, T0)
    # a new GUID under the same headline, but the page holds two items already: not theirs
    again = store.upsert_items(fid, [(make_item("ep-3", title="Episode", link=page), "")], T0)
    assert (first.new, first.updated, again.new, again.updated) == (2, 0, 1, 0)
    assert store.count_items() == 3


def test_database_enforces_unique_key_per_feed(store):
    import sqlalchemy as sa

    from aggregator.store import items

    fid = feed_id(store, "https://a.example/feed")
    store.upsert_items(fid, [(make_item("g1"), "")], T0)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.insert(items).values(
                feed_id=fid,
                key="g1",
                title="x",
                first_seen_at=T0,
                changed_at=T0,
                content_hash="h",
                story_id=1,
            )
        )


def test_same_key_in_two_feeds_is_two_items(store):
    a = feed_id(store, "https://a.example/feed")
    b = feed_id(store, "https://b.example/feed")
    store.upsert_items(a, [(make_item("g1"), "")], T0)
    store.upsert_items(b, [(make_item("g1"), "")], T0)
    assert store.count_items() == 2


def test_same_canonical_link_from_two_feeds_is_one_story(store):
    a = feed_id(store, "https://a.example/feed")
    b = feed_id(store, "https://b.example/feed")
    store.upsert_items(a, [(make_item("a1", link="https://news.example/x"), "")], T0)
    store.upsert_items(b, [(make_item("b1", link="https://news.example/x"), "")], T0)
    stories = {i.story_id for i in store.items()}
    assert len(stories) == 1


def test_every_poll_attempt_is_recorded_with_streak_and_next_due(store):
    fid = feed_id(store, "https://a.example/feed")
    url = "https://a.example/feed"
    err = FetchResult(url=url, final_url=url, outcome=PollOutcome.ERROR, error="HTTP 500")
    for n in range(3):
        store.record_poll(
            fid,
            T0 + timedelta(minutes=n),
            err,
            PollRecord(PollOutcome.ERROR, 500, "HTTP 500", 12, T0 + timedelta(hours=n + 1)),
        )
    [state] = store.feed_states()
    assert (state.error_streak, state.last_error, state.last_status) == (3, "HTTP 500", 500)
    assert state.next_due_at == T0 + timedelta(hours=3)
    ok = FetchResult(
        url=url,
        final_url=url,
        outcome=PollOutcome.UPDATED,
        etag='"v1"',
        last_modified="Tue, 24 Nov 2026 05:00:00 GMT",
        body_hash="abc",
    )
    store.record_poll(
        fid,
        T0 + timedelta(hours=4),
        ok,
        PollRecord(PollOutcome.UPDATED, 200, None, 5, T0 + timedelta(hours=5)),
    )
    [state] = store.feed_states()
    assert (state.error_streak, state.last_error, state.etag, state.body_hash) == (
        0,
        None,
        '"v1"',
        "abc",
    )
    assert state.last_success_at == T0 + timedelta(hours=4)
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        from aggregator.store import polls

        assert conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar() == 4


def test_a_delivered_story_is_delivered_to_that_reader_only_by_any_digest(store):
    fid = feed_id(store, "https://a.example/feed")
    store.upsert_items(fid, [(make_item("g1", link="https://n.example/1"), "world")], T0)
    kwargs = dict(
        since=T0 - timedelta(days=1),
        cutoff=T0 + timedelta(hours=1),
        published_after=T0 - timedelta(days=1),
        feed_priority=lambda _u: 0,
    )
    [cand] = store.story_candidates(**kwargs)
    store.record_edition(
        digest="daily",
        recipient="r@example.org",
        edition_key="k1",
        cutoff=T0 + timedelta(hours=1),
        now=T0 + timedelta(hours=1),
        message_name="m.eml",
        story_ids=[cand.story_id],
    )
    assert store.last_edition_cutoff("daily", "r@example.org") == T0 + timedelta(hours=1)
    # Still a candidate, for every reader alike; delivered_pairs says whom it reached, so
    # another subscriber still gets it and this reader does not.
    assert store.story_candidates(**kwargs) == [cand]
    assert store.delivered_pairs([cand.story_id]) == {("r@example.org", cand.story_id)}
    # By any digest, and whatever the case of the address it was recorded under: one reader.
    store.record_edition(
        digest="evening",
        recipient="R@Example.org",
        edition_key="k2",
        cutoff=T0 + timedelta(hours=1),
        now=T0 + timedelta(hours=1),
        message_name="m2.eml",
        story_ids=[cand.story_id],
    )
    assert store.delivered_pairs([cand.story_id]) == {("r@example.org", cand.story_id)}


def test_an_archived_item_stays_archived_and_out_of_editions_when_edited(store):
    fid = feed_id(store, "https://a.example/feed")
    old = replace(make_item("u1", link="https://n.example/1"), published_at=None, archived=True)
    store.upsert_items(fid, [(old, "world")], T0)
    # A later poll finds the entry edited; only the first store decides what is archive.
    edited = replace(old, lead="Edited since.", content_hash="edited", archived=False)
    assert store.upsert_items(fid, [(edited, "world")], T0 + timedelta(hours=1)).updated == 1
    [stored] = store.items()
    assert (stored.archived, stored.lead) == (True, "Edited since.")
    found = store.story_candidates(
        since=T0 - timedelta(days=1),
        cutoff=T0 + timedelta(hours=2),
        published_after=T0 - timedelta(days=2),
        feed_priority=lambda _u: 0,
    )
    assert found == []


def test_representative_prefers_priority_then_earliest(store):
    a = feed_id(store, "https://a.example/feed")
    b = feed_id(store, "https://b.example/feed")
    store.upsert_items(a, [(make_item("a1", link="https://n.example/1"), "world")], T0)
    store.upsert_items(
        b, [(make_item("b1", link="https://n.example/1"), "world")], T0 + timedelta(minutes=5)
    )
    kwargs = dict(
        since=T0 - timedelta(days=1),
        cutoff=T0 + timedelta(hours=1),
        published_after=T0 - timedelta(days=1),
    )
    [c] = store.story_candidates(**kwargs, feed_priority=lambda _u: 0)
    assert c.source == "https://a.example/feed"
    assert c.also == (("https://b.example/feed", "https://n.example/1"),)
    [c] = store.story_candidates(
        **kwargs, feed_priority=lambda u: 5 if u == "https://b.example/feed" else 0
    )
    assert c.source == "https://b.example/feed"


def test_items_first_seen_after_cutoff_wait_for_next_edition(store):
    fid = feed_id(store, "https://a.example/feed")
    store.upsert_items(fid, [(make_item("late"), "world")], T0 + timedelta(hours=2))
    found = store.story_candidates(
        since=T0 - timedelta(days=1),
        cutoff=T0 + timedelta(hours=1),
        published_after=T0 - timedelta(days=2),
        feed_priority=lambda _u: 0,
    )
    assert found == []


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive"):
        store.sync_feeds([("https://x.example/", "x")], datetime(2026, 1, 1))


def test_sqlite_datetimes_are_stored_and_read_exactly_as_sqlalchemy_does():
    """The fast SQLite conversions keep SQLAlchemy's text format, so stores written before
    them read the same and compare in time order."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from aggregator.store import UTCDateTime

    dialect = sqlite.dialect()
    theirs = sa.DateTime().dialect_impl(dialect)
    their_bind = theirs.bind_processor(dialect)
    their_result = theirs.result_processor(dialect, None)
    our_bind = UTCDateTime().bind_processor(dialect)
    our_result = UTCDateTime().result_processor(dialect, None)
    assert their_bind and their_result and our_bind and our_result
    for when in (
        datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5))),
    ):
        text = our_bind(when)
        assert text == their_bind(when.astimezone(UTC).replace(tzinfo=None))
        assert our_result(text) == when
    for text in ("2026-11-24 06:00:00", "2026-11-24 06:00:00.123", "2026-11-24 06:00:00.123456"):
        assert our_result(text) == their_result(text).replace(tzinfo=UTC)
    with pytest.raises(ValueError):
        our_bind(datetime(2026, 11, 24))  # naive: refused, as before


# -- who a story is credited to ------------------------------------------------------------------


def test_an_aggregated_item_is_credited_to_its_publisher_via_the_feed(store):
    gnews = feed_id(store, "https://news.google.example/rss")
    item = make_item("g1", title="Central bank holds rates", link="https://news.google.example/a/1")
    store.upsert_items(gnews, [(replace(item, source="Reuters"), "business")], T0)
    [stored] = store.items()
    assert stored.source == "Reuters"
    assert stored.source_name == f"Reuters via {stored.feed_name}"
    [candidate] = store.story_candidates(
        since=T0 - timedelta(days=1),
        cutoff=T0 + timedelta(hours=1),
        published_after=T0 - timedelta(days=2),
        feed_priority=lambda url: 0,
    )
    assert candidate.source == f"Reuters via {stored.feed_name}"


@pytest.mark.parametrize(
    ("feed", "publisher", "credit"),
    [
        ("Google News", "Reuters", "Reuters via Google News"),
        ("Reuters World", "Reuters", "Reuters World"),  # the feed already names it
        ("BBC", "bbc", "BBC"),
        ("Techmeme", None, "Techmeme"),
        ("Techmeme", "  ", "Techmeme"),
    ],
)
def test_source_name_names_the_publisher_once(feed, publisher, credit):
    from aggregator.store import StoredItem

    item = StoredItem(
        id=1, feed_url="https://f.example/", feed_name=feed, key="k", guid=None, link=None,
        title="T", title_generated=False, lead="", author=None, image_url=None, categories=(),
        published_at=None, first_seen_at=T0, topic="", story_id=1, source=publisher,
    )  # fmt: skip
    assert item.source_name == credit


def test_version_7_database_gains_the_publisher_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    s = Store.open(f"sqlite:///{path}")
    fid = feed_id(s, "https://a.example/feed")
    s.upsert_items(fid, [(make_item("g1"), "world")], T0)
    s.close()
    con = sqlite3.connect(path)
    con.execute("update schema_version set version = 7")
    con.execute("alter table items drop column source")
    con.commit()
    con.close()
    s = Store.open(f"sqlite:///{path}")
    try:
        assert s.version() == SCHEMA_VERSION
        [old] = s.items()
        assert old.source is None and old.source_name == old.feed_name
    finally:
        s.close()


def test_edition_times_read_back_as_aware_utc(store):
    for cutoff, key in ((T0, "a"), (T0 + timedelta(days=1), "b")):
        store.record_edition(
            digest="daily",
            recipient="r@example.org",
            edition_key=key,
            cutoff=cutoff,
            now=cutoff + timedelta(minutes=5),
            message_name=None,
            story_ids=[],
        )
    before, after = store.edition_cutoffs_around("daily", T0 + timedelta(hours=1))
    assert (before, after) == (T0, T0 + timedelta(days=1))
    assert before.tzinfo is UTC and after.tzinfo is UTC
    built = store.edition_built_at("daily", "b")
    assert built == T0 + timedelta(days=1, minutes=5) and built.tzinfo is UTC
    assert store.edition_built_at("daily", "nope") is None
