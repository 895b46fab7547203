"""The dedupe index in memory (bandindex), and the store keeping it in step with item_bands."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from aggregator import bandindex
from aggregator import store as store_module
from aggregator.bandindex import BandIndex, pack
from aggregator.clock import micros
from aggregator.dedupe import StoryMatcher
from aggregator.store import SCHEMA_VERSION, Store
from tests.test_dedupe import SPY_A, SPY_B, SPY_LEAD, feed, item

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
S0 = micros(T0)


def test_lookups_find_every_item_with_a_key_however_the_runs_were_merged(monkeypatch):
    monkeypatch.setattr(bandindex, "RUN_KEYS", 4096)  # merges stop early, as at 2**18
    rng = random.Random(7)
    index, truth = BandIndex(), {}
    next_id = 1
    for _ in range(300):  # batches of every size: runs merge, and stop at RUN_KEYS
        rows = []
        for _ in range(rng.choice((1, 3, 40, 400))):
            keys = [rng.randrange(-(2**63), 2**63) for _ in range(5)] + [rng.randrange(50)]
            rows.append((next_id, pack(keys), None, S0))
            for k in keys:
                truth.setdefault(k % 2**32, set()).add(next_id)  # told apart by 32 bits
            next_id += 1
        index.add(rows)
    assert len(index) == sum(len(ids) for ids in truth.values()) > 10 * 4096
    asked = [*rng.sample(sorted(truth), 2000), *range(50), 12345678901, -(2**63)]
    found = index.lookup(asked)
    expected = {k: truth[k % 2**32] for k in asked if k % 2**32 in truth}
    assert {k: set(ids) for k, ids in found.items()} == expected
    assert index.high == next_id - 1
    assert len(index._runs) <= 2 * len(index) // 4096 + 13  # runs end over half RUN_KEYS


def test_keys_alike_in_their_low_32_bits_find_each_others_items():
    """A rare extra candidate, which the verifier turns down: half the memory."""
    index = BandIndex()
    index.add([(1, pack([5]), None, S0), (2, pack([5 + 2**32]), None, S0)])
    assert {k: sorted(v) for k, v in index.lookup([5, 6]).items()} == {5: [1, 2]}


def test_a_naive_time_is_utc_as_sqlite_keeps_it():
    assert micros(datetime(2026, 11, 24, 6, 0, 0, 1)) == micros(T0) + 1


def test_times_read_in_bulk_equal_each_time_read_alone():
    naive = [
        datetime(2026, 11, 24, 6, 0, 0, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999999),
        datetime(2026, 2, 28, 23, 0),
    ]
    as_sqlite_keeps_them = [str(t) for t in naive] + ["2026-11-25 08:25:08.084640", None]
    assert as_sqlite_keeps_them[2] == "2026-02-28 23:00:00"  # no fraction: still read
    expected = [micros(datetime.fromisoformat(t)) for t in as_sqlite_keeps_them[:-1]]
    assert bandindex.micros_many(as_sqlite_keeps_them).tolist() == [*expected, bandindex._NONE]
    aware = [t.replace(tzinfo=UTC) for t in naive]
    assert bandindex.micros_many([*aware, None]).tolist() == [*expected[:3], bandindex._NONE]


def test_times_come_back_exact_and_only_for_items_seen_since():
    index = BandIndex()
    published = datetime(2026, 11, 23, 22, 15, 7, 123457, tzinfo=UTC)
    index.add([(1, pack([1]), micros(published), micros(T0 - timedelta(days=4)))])
    index.add([(5, pack([1]), None, S0 + 1), (9, pack([2]), None, S0)])
    assert index.times([1, 5, 7, 9], since=S0) == {5: (None, S0 + 1), 9: (None, S0)}
    assert index.times([1], since=micros(T0 - timedelta(days=5))) == {
        1: (micros(published), micros(T0 - timedelta(days=4)))
    }


def test_dropping_below_an_id_forgets_those_items_keys_and_times():
    index = BandIndex()
    index.add([(i, pack([7, i]), None, S0) for i in range(1, 2001)])
    index.drop_below(1500)
    assert sorted(index.lookup([7])[7]) == list(range(1500, 2001))
    assert index.lookup([3]) == {}
    assert index.times([1, 1499, 1500], since=S0) == {1500: (None, S0)}
    index.add([(2001, pack([7]), None, S0)])  # still in id order after the drop
    assert len(index.lookup([7])[7]) == 502


def test_items_must_come_in_id_order():
    index = BandIndex()
    index.add([(10, pack([1]), None, S0)])
    with pytest.raises(ValueError, match="id order"):
        index.add([(10, pack([2]), None, S0)])


def test_item_ids_beyond_32_bits_are_kept_whole():
    index = BandIndex()
    index.add([(5, pack([1]), None, S0)])
    index.add([(2**40, pack([1]), None, S0)])
    assert sorted(index.lookup([1])[1]) == [5, 2**40]


def test_keys_are_stored_as_8_little_endian_bytes():
    assert pack([1, -1]) == b"\x01" + b"\x00" * 7 + b"\xff" * 8


# -- the store's side ------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    yield s
    s.close()


def test_a_store_finds_the_copies_another_process_stored_since_it_read_the_index(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    daemon, by_hand = Store.open(url), Store.open(url)
    try:
        a, b, c = (feed(daemon, f"https://{n}.example/feed") for n in "abc")
        matcher = StoryMatcher()
        daemon.upsert_items(
            a, [(item("a1", "Harbour opens a ferry pier", ""), "")], T0, stories=matcher
        )
        by_hand.upsert_items(b, [(item("b1", SPY_A, SPY_LEAD), "")], T0, stories=matcher)
        daemon.upsert_items(c, [(item("c1", SPY_B, SPY_LEAD), "")], T0, stories=matcher)
        story = {i.key: i.story_id for i in daemon.items()}
        assert story["c1"] == story["b1"] != story["a1"]
    finally:
        daemon.close()
        by_hand.close()


def test_a_write_that_rolls_back_leaves_no_phantom_in_the_index(store, monkeypatch):
    """Its item ids are handed out again: the index must read the new items under them."""
    a, b, c = (feed(store, f"https://{n}.example/feed") for n in "abc")
    matcher = StoryMatcher()
    store.upsert_items(a, [(item("a0", "Harbour opens a ferry pier", ""), "")], T0, stories=matcher)
    real = store._stories_for
    calls = []

    def failing_second_feed(*args, **kw):
        calls.append(1)
        found = real(*args, **kw)  # the second feed's lookup reads the first's rows
        if len(calls) == 2:
            raise RuntimeError("disk trouble")
        return found

    monkeypatch.setattr(store, "_stories_for", failing_second_feed)
    with pytest.raises(RuntimeError), store._tx() as conn:
        store._upsert(conn, a, [(item("a1", "Grain ship docks in Odesa", ""), "")], T0, matcher)
        store._upsert(conn, b, [(item("b1", "Grain ship docks in Odesa", ""), "")], T0, matcher)
    monkeypatch.undo()
    store.upsert_items(c, [(item("c1", SPY_A, SPY_LEAD), "")], T0, stories=matcher)  # a1's id
    store.upsert_items(b, [(item("b2", SPY_B, SPY_LEAD), "")], T0, stories=matcher)
    story = {i.key: i.story_id for i in store.items()}
    assert "a1" not in story and story["b2"] == story["c1"]


def test_a_version_12_database_keeps_its_dedupe_index(tmp_path):
    path = tmp_path / "old.sqlite3"
    s = Store.open(f"sqlite:///{path}")
    a, b = feed(s, "https://a.example/feed"), feed(s, "https://b.example/feed")
    s.upsert_items(a, [(item("a1", SPY_A, SPY_LEAD), "")], T0, stories=StoryMatcher())
    keys = s.count_story_bands()
    s.close()
    con = sqlite3.connect(path)  # the index as version 12 kept it: a row per key
    rows = con.execute("select item_id, band_keys from item_bands").fetchall()
    con.execute(
        "create table story_bands (item_id integer not null, band_key bigint not null,"
        " primary key (item_id, band_key)) without rowid"
    )
    con.executemany(
        "insert into story_bands values (?, ?)",
        [
            (i, int.from_bytes(blob[n : n + 8], "little", signed=True))
            for i, blob in rows
            for n in range(0, len(blob), 8)
        ],
    )
    con.execute("drop table item_bands")
    con.execute("update schema_version set version = 12")
    con.commit()
    con.close()
    s = Store.open(f"sqlite:///{path}")
    try:
        assert s.version() == SCHEMA_VERSION and s.count_story_bands() == keys > 0
        s.upsert_items(b, [(item("b1", SPY_B, SPY_LEAD), "")], T0, stories=StoryMatcher())
        story = {i.key: i.story_id for i in s.items()}
        assert story["b1"] == story["a1"]
        tables = {
            r[0]
            for r in s.engine.connect().exec_driver_sql(
                "select name from sqlite_master where type = 'table'"
            )
        }
        assert "story_bands" not in tables
    finally:
        s.close()


def test_a_store_that_reads_the_index_in_parts_still_finds_every_copy(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'parts.sqlite3'}"
    first = Store.open(url)
    a, b = feed(first, "https://a.example/feed"), feed(first, "https://b.example/feed")
    stories = [
        (item(f"a{n}", f"{SPY_A} part {n}", f"{SPY_LEAD} Part {n} of the series."), "")
        for n in range(7)
    ]
    first.upsert_items(a, stories, T0, stories=StoryMatcher())
    first.close()
    monkeypatch.setattr(store_module, "BAND_ROWS", 2)
    later = Store.open(url)  # a new process: the index is read from item_bands, 2 rows a time
    try:
        copies = [(item(f"b{n}", *(i.title, i.lead)), "") for n, (i, _) in enumerate(stories)]
        later.upsert_items(b, copies, T0, stories=StoryMatcher())
        story = {i.key: i.story_id for i in later.items()}
        assert len({story[f"a{n}"] for n in range(7)}) == 7
        assert all(story[f"b{n}"] == story[f"a{n}"] for n in range(7))
    finally:
        later.close()


def test_keys_stored_for_older_items_reach_an_index_already_read(store):
    a, b = feed(store, "https://a.example/feed"), feed(store, "https://b.example/feed")
    matcher = StoryMatcher()
    store.upsert_items(a, [(item("a1", SPY_A, SPY_LEAD), "")], T0)  # no keys: no matcher
    store.upsert_items(a, [(item("a2", "Harbour opens a ferry pier", ""), "")], T0, stories=matcher)
    store.upsert_items(a, [(item("a3", "Grain ship docks in Odesa", ""), "")], T0, stories=matcher)
    [a1] = [i for i in store.items() if i.key == "a1"]
    store.add_story_bands([(a1.id, matcher.band_keys(item("x", SPY_A, SPY_LEAD)))])
    store.upsert_items(b, [(item("b1", SPY_B, SPY_LEAD), "")], T0, stories=matcher)
    story = {i.key: i.story_id for i in store.items()}
    assert story["b1"] == story["a1"]
