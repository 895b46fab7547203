"""Stories across feeds: the dedupe index, the store's hook, and the whole path through the CLI."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from aggregator import config as config_module
from aggregator import dedupe
from aggregator.cli import cli
from aggregator.clock import micros
from aggregator.dedupe import StoryIndex, StoryMatcher, clean_headline, explain_pair
from aggregator.pipeline import band_window
from aggregator.records import Item
from aggregator.store import SCHEMA_VERSION, Store, sqlite_url
from tests.builders import feed_row

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)

SPY_A = "Ukraine spy chief: North Korea may be Russia's most dangerous ally"
SPY_B = "North Korea may be Russia's most dangerous ally, Ukraine spy chief says"
SPY_LEAD = (
    "Kyrylo Budanov said on Monday that North Korea now supplies about half of the artillery "
    "shells Russia fires in Ukraine and could soon send more troops."
)


def item(key: str, title: str, lead: str = "", link: str | None = None, published=None) -> Item:
    return Item(
        key=key,
        guid=key,
        link=link,
        title=title,
        title_generated=False,
        lead=lead,
        author=None,
        image_url=None,
        categories=(),
        published_at=published or T0 - timedelta(hours=1),
        content_hash=f"{title}|{lead}|{link}",
    )


# -- the pure part -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Update: Fed cuts rates | Reuters", "Fed cuts rates"),
        ("UPDATE 2-Fed cuts rates", "Fed cuts rates"),
        ("Fed cuts rates — report", "Fed cuts rates"),
        ("Fed cuts rates - The Wall Street Journal", "Fed cuts rates"),
        ("Fed cuts rates (video)", "Fed cuts rates"),
        ("Ukraine war: Russia strikes Odesa - live", "Ukraine war: Russia strikes Odesa"),
        ("Salah scores - again", "Salah scores - again"),
    ],
)
def test_headline_labels_and_site_names_are_dropped(raw, clean):
    assert clean_headline(raw) == clean


def test_the_issue_example_is_one_story():
    verdict = explain_pair(SPY_A, "", SPY_B, "")
    assert verdict.same and verdict.rule == "title"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Ukraine war: Russia strikes Odesa port", "Ukraine war: Russia strikes Kharkiv port"),
        ("Apple Q3 revenue beats forecasts", "Apple Q4 revenue beats forecasts"),
        ("Apple third-quarter revenue beats forecasts", "Apple Q4 revenue beats forecasts"),
        ("Ukraine war live: day 1,001", "Ukraine war live: day 1,002"),
        ("Two killed in Kyiv drone attack", "Three killed in Kyiv drone attack"),
        ("Your Monday Briefing", "Your Monday Briefing"),
    ],
)
def test_same_topic_different_events_stay_apart(a, b):
    lead_a = f"{a}. Officials gave details of the first event on Monday morning."
    lead_b = f"{b}. Reporters described a wholly other scene later that evening."
    assert not explain_pair(a, lead_a, b, lead_b).same


def test_index_matches_a_rewrite_from_another_feed_with_evidence():
    index = StoryIndex()
    index.add(7, SPY_A, SPY_LEAD, at=T0, item_id=70, source=1)
    match = index.match(SPY_B, SPY_LEAD, at=T0 + timedelta(hours=2), source=2)
    assert match is not None
    assert (match.story_id, match.item_id, match.rule) == (7, 70, "title")
    assert match.title_score >= 0.86 and match.lead_score == 1.0


def test_index_keeps_a_feeds_own_items_apart_unless_identical():
    index = StoryIndex()
    index.add(7, SPY_A, SPY_LEAD, at=T0, item_id=70, source=1)
    rewrite = "Ukraine spy chief: North Korea may be Moscow's most dangerous ally"
    assert index.match(rewrite, SPY_LEAD, at=T0, source=2) is not None
    assert index.match(rewrite, SPY_LEAD, at=T0, source=1) is None
    assert index.match(SPY_A, SPY_LEAD, at=T0, source=1) is not None


def test_a_feeds_own_copy_without_a_lead_is_the_same_story_as_its_copy_with_one():
    # UOL lists an article twice: once with its lead, once without (another link)
    index = StoryIndex()
    index.add(7, SPY_A, SPY_LEAD, at=T0, item_id=70, source=1)
    assert index.match(SPY_A, "", at=T0 + timedelta(minutes=5), source=1) is not None
    index = StoryIndex()
    index.add(7, SPY_A, "", at=T0, item_id=70, source=1)
    assert index.match(SPY_A, SPY_LEAD, at=T0 + timedelta(minutes=5), source=1) is not None
    # the headline must be the same, word for word
    rewrite = "Ukraine spy chief: North Korea may be Moscow's most dangerous ally"
    assert index.match(rewrite, SPY_LEAD, at=T0, source=1) is None
    index = StoryIndex()
    index.add(8, "Liverpool beat Everton 2-1 at Anfield", "", at=T0, item_id=80, source=1)
    lead = "Mohamed Salah scored twice as the hosts came from behind in the derby on Sunday."
    assert index.match("Everton beat Liverpool 2-1 at Anfield", lead, at=T0, source=1) is None


def test_a_feeds_own_items_without_leads_are_one_story_only_under_the_same_headline():
    # the same words in another order are another result, not a copy
    index = StoryIndex()
    index.add(8, "Liverpool beat Everton 2-1 at Anfield", "", at=T0, item_id=80, source=1)
    assert index.match("Everton beat Liverpool 2-1 at Anfield", "", at=T0, source=1) is None
    assert index.match("Liverpool beat Everton 2-1 at Anfield", "", at=T0, source=1) is not None
    # another feed's copy with the words swapped still joins the story
    assert index.match("Everton beat Liverpool 2-1 at Anfield", "", at=T0, source=2) is not None


def test_index_window_and_eviction():
    index = StoryIndex(window=timedelta(hours=72))
    index.add(7, SPY_A, SPY_LEAD, at=T0, seen_at=T0, item_id=70, source=1)
    assert index.match(SPY_B, SPY_LEAD, at=T0 + timedelta(hours=73), source=2) is None
    assert index.match(SPY_B, SPY_LEAD, at=T0 + timedelta(hours=71), source=2) is not None
    assert index.evict(T0 - timedelta(seconds=1)) == 0
    assert index.evict(T0 + timedelta(seconds=1)) == 1
    assert len(index) == 0
    assert index.match(SPY_B, SPY_LEAD, at=T0, source=2) is None


def test_config_defaults_agree_with_dedupe_defaults():
    d = config_module.DedupeSettings()
    assert d.window == dedupe.DEFAULT_WINDOW
    assert d.title_threshold == dedupe.DEFAULT_TITLE_THRESHOLD
    assert d.lead_threshold == dedupe.DEFAULT_LEAD_THRESHOLD
    assert d.combined_threshold == dedupe.DEFAULT_COMBINED_THRESHOLD


FEEDS = "feeds:\n  - url: https://x.example/feed\n"


def test_dedupe_settings_are_validated_and_dumped(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "settings:\n  dedupe: {window: 48h, title_threshold: 0.9}\n" + FEEDS, encoding="utf-8"
    )
    loaded = config_module.load_config(path)
    assert loaded.settings.dedupe.window == timedelta(hours=48)
    assert loaded.settings.dedupe.title_threshold == 0.9
    assert "title_threshold: 0.9" in config_module.dump_config(loaded)
    path.write_text(
        "settings:\n  dedupe: {title_threshold: 3, windw: 2h}\n" + FEEDS, encoding="utf-8"
    )
    with pytest.raises(config_module.ConfigError) as caught:
        config_module.load_config(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "title_threshold" in text and "at most 1" in text
    assert "windw" in text


# -- the store's hook ----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = Store.open(sqlite_url(tmp_path / "data"))
    yield s
    s.close()


def feed(store: Store, url: str) -> int:
    return feed_row(store, url, T0)


def test_schema_has_the_evidence_table(store):
    assert store.version() == SCHEMA_VERSION >= 2


def test_upsert_lets_the_index_choose_the_story_and_keeps_the_evidence(store):
    a, b, c = (feed(store, f"https://{n}.example/feed") for n in "abc")
    index = StoryMatcher()
    store.upsert_items(
        a, [(item("a1", SPY_A, SPY_LEAD, "https://a.example/1"), "world")], T0, stories=index
    )
    store.upsert_items(
        b, [(item("b1", SPY_B, SPY_LEAD, "https://b.example/9"), "world")], T0, stories=index
    )
    # same canonical link as a1: the link rule comes first
    store.upsert_items(
        c, [(item("c1", "Something else", "", "https://a.example/1"), "")], T0, stories=index
    )
    by_key = {i.key: i for i in store.items()}
    assert by_key["a1"].story_id == by_key["b1"].story_id == by_key["c1"].story_id
    evidence = store.story_evidence(by_key["a1"].story_id)
    assert by_key["a1"].id not in evidence  # it started the story
    assert evidence[by_key["b1"].id].rule == "title"
    assert evidence[by_key["b1"].id].item_id == by_key["a1"].id
    assert evidence[by_key["c1"].id].rule == "link"
    assert store.count_story_bands() > 0  # the index lives in the store


def test_one_link_is_one_story_across_feeds_but_not_for_a_feeds_entries_under_one_page(store):
    status, mirror, show = (feed(store, f"https://{n}.example/feed") for n in ("s", "m", "p"))
    index = StoryMatcher()
    page = "https://status.example/"

    def put(feed_id, *items):
        store.upsert_items(feed_id, [(i, "") for i in items], T0, stories=index)

    put(status, item("inc-1", "API errors", "Requests to the API fail.", page))
    put(mirror, item("m-1", "API errors at Example", "", page))  # another feed: the link joins
    put(status, item("inc-3", "Login delays", "Logins take minutes.", page))  # another entry
    put(show, *(item(f"ep-{n}", f"Episode {n}", "", "https://p.example/") for n in (1, 2)))
    story = {i.key: i.story_id for i in store.items()}
    assert story["m-1"] == story["inc-1"]
    assert len({story["inc-1"], story["inc-3"], story["ep-1"], story["ep-2"]}) == 4
    # a link several entries of a feed share names none of them: others do not join by it
    put(mirror, item("m-3", "A podcast worth hearing", "", "https://p.example/"))
    assert {i.key: i.story_id for i in store.items()}["m-3"] not in story.values()


def test_repolled_and_edited_items_never_make_a_new_story(store):
    a = feed(store, "https://a.example/feed")
    index = StoryMatcher()
    store.upsert_items(a, [(item("a1", SPY_A, SPY_LEAD), "")], T0, stories=index)
    bands = store.count_story_bands()
    store.upsert_items(a, [(item("a1", SPY_A, SPY_LEAD), "")], T0, stories=index)
    edited = item("a1", SPY_A + " (updated)", SPY_LEAD)
    result = store.upsert_items(a, [(edited, "")], T0 + timedelta(hours=1), stories=index)
    assert (result.new, result.updated) == (0, 1)
    [stored] = store.items()
    assert stored.story_id == 1 and store.count_story_bands() == bands


def test_recent_items_seed_the_index_from_the_window(store):
    a = feed(store, "https://a.example/feed")
    store.upsert_items(a, [(item("old", "Old story about grain"), "")], T0 - timedelta(days=5))
    store.upsert_items(a, [(item("new", SPY_A, SPY_LEAD), "")], T0)
    recent = store.recent_items(T0 - timedelta(hours=72))
    assert [r.title for r in recent] == [SPY_A]
    assert store.recent_items(T0 - timedelta(days=9), after_id=recent[0].id) == []


def test_the_store_index_keeps_the_window_and_matches_across_feeds_and_batches(store, tmp_path):
    a, b = feed(store, "https://a.example/feed"), feed(store, "https://b.example/feed")
    matcher = StoryMatcher(window=timedelta(hours=72))
    old = item("a0", SPY_A, SPY_LEAD, published=T0 - timedelta(days=5))
    store.upsert_items(a, [(old, "")], T0 - timedelta(days=5), stories=matcher)
    store.upsert_items(a, [(item("a1", "Egypt buys Ukrainian wheat", GRAIN[3]), "")], T0)
    # a1 was stored without a matcher: no keys. Banding the window again finds it, and
    # pruning forgets a0, first seen before the window.
    config = config_module.load_config(_config_file(tmp_path))
    assert band_window(config, store, T0) == 1
    assert store.get_meta("dedupe_bands") == dedupe.BAND_SCHEME
    assert band_window(config, store, T0) == 0  # done once
    copy = item("b1", "Egypt buys Ukrainian wheat | Paper", GRAIN[3])
    late = item("b2", SPY_B, SPY_LEAD)  # a copy of a0, out of the window: a new story
    store.upsert_items(b, [(copy, ""), (late, "")], T0 + timedelta(hours=1), stories=matcher)
    by_key = {i.key: i for i in store.items()}
    assert by_key["b1"].story_id == by_key["a1"].story_id
    assert by_key["b2"].story_id != by_key["a0"].story_id
    assert store.story_evidence(by_key["b1"].story_id)[by_key["b1"].id].item_id == by_key["a1"].id


class _KeyedMatcher(StoryMatcher):
    """Band keys chosen by the test: look-alikes share one key with the new item, the copy
    shares ten."""

    def band_keys(self, it: Item) -> tuple[int, ...]:
        if it.key.startswith("alike"):
            return (1, 1000 + int(it.key.removeprefix("alike")))
        return tuple(range(1, 11))


def test_a_flood_of_look_alikes_is_verified_up_to_the_cap_the_copy_first(store, monkeypatch):
    a, b = feed(store, "https://a.example/feed"), feed(store, "https://b.example/feed")
    matcher = _KeyedMatcher()
    alikes = [
        (item(f"alike{n}", f"Harbour {n} opens a new ferry pier for tourists", ""), "")
        for n in range(dedupe.MAX_VERIFIED + 40)
    ]
    store.upsert_items(a, alikes, T0, stories=matcher)
    # Stored last: in key order it would come after every look-alike, past the cap.
    store.upsert_items(a, [(item("copy-of", SPY_A, SPY_LEAD), "")], T0, stories=matcher)
    verified: list[str] = []
    real_verify = dedupe.verify

    def counting(f, g, **kw):
        verified.append(g.title)
        return real_verify(f, g, **kw)

    monkeypatch.setattr(dedupe, "verify", counting)
    given: list[int] = []
    real_story_for = matcher.story_for

    def story_for(feed_id, it, now, peers, own):
        given.append(len(peers))
        return real_story_for(feed_id, it, now, peers, own)

    monkeypatch.setattr(matcher, "story_for", story_for)
    store.upsert_items(b, [(item("b1", SPY_B, SPY_LEAD), "")], T0, stories=matcher)
    by_key = {i.key: i for i in store.items()}
    assert by_key["b1"].story_id == by_key["copy-of"].story_id  # found despite the flood
    assert len(verified) == dedupe.MAX_VERIFIED  # the rest were never verified
    assert given == [dedupe.MAX_VERIFIED]  # ... and their text never read


def test_the_shortlist_keeps_the_order_drops_peers_outside_the_window_and_stops_at_the_cap():
    new = item("n", SPY_A, SPY_LEAD, published=T0)
    window = dedupe.DEFAULT_WINDOW
    old, undated, s0 = micros(T0 - window - timedelta(hours=1)), None, micros(T0)
    peers = [(1, s0, s0), (2, old, s0), (3, undated, micros(T0 - window - timedelta(hours=2)))]
    peers += [(4, undated, micros(T0 + timedelta(hours=1)))]  # undated: when it was first seen
    assert dedupe.shortlist(new, T0, peers, window) == [1, 4]
    many = [(n, s0, s0) for n in range(dedupe.MAX_VERIFIED + 10, 0, -1)]
    assert dedupe.shortlist(new, T0, many, window) == [n for n, _, _ in many][: dedupe.MAX_VERIFIED]


def test_the_shortlist_window_is_exact_to_the_microsecond_as_story_for_applies_it():
    """The store's index gives times in microseconds; story_for's test (_nearest) takes
    datetimes: the same peers at the window's edges pass both, or neither."""
    window, tick = dedupe.DEFAULT_WINDOW, timedelta(microseconds=1)
    new = item("n", SPY_A, SPY_LEAD, published=T0 + tick)
    now = T0 + 3 * window
    edges = [T0 - window, T0 + tick - window, T0 + tick + window, T0 + 2 * tick + window]
    peers = [(1, None, T0), (2, T0 + 9 * window, T0)]  # published after first seen: seen
    for when in edges:
        peers += [(len(peers) + 1, when, T0 + 2 * window), (len(peers) + 2, None, when)]
        peers += [(len(peers) + 1, T0 + 9 * window, when)]
    in_micros = [(n, None if p is None else micros(p), micros(s)) for n, p, s in peers]
    chosen = dedupe.shortlist(new, now, in_micros, window)
    assert chosen == [n for n, _ in dedupe._nearest(T0 + tick, peers, window)]
    assert chosen == [1, 2, 6, 7, 8, 9, 10, 11]


def _config_file(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(f"settings:\n  data_dir: {tmp_path / 'd'}\n" + FEEDS, encoding="utf-8")
    return path


# -- end to end ----------------------------------------------------------------------------------


def rss(*items: tuple[str, str, str, str, str]) -> str:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{g}</guid><pubDate>{d}</pubDate>"
        f"<description>{lead}</description></item>"
        for g, t, link, lead, d in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{body}</channel></rss>'
    )


SPY_WIRE = ("w-1", SPY_A, "https://wire.example/spy", SPY_LEAD, "Tue, 24 Nov 2026 05:00:00 GMT")
SPY_COPY = ("p-1", SPY_B, "https://paper.example/world/spy-chief", SPY_LEAD,
            "Tue, 24 Nov 2026 05:30:00 GMT")  # fmt: skip
GRAIN = (
    "p-2",
    "Egypt buys 240,000 tonnes of Ukrainian wheat",
    "https://paper.example/business/wheat",
    "Egypt's state grain buyer bought 240,000 tonnes of Ukrainian wheat in a tender on Tuesday.",
    "Tue, 24 Nov 2026 05:40:00 GMT",
)


@pytest.fixture
def site(feed_server, tmp_path, clock):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"""settings:
  timezone: UTC
  from: "Brief <brief@example.org>"
topics:
  world: {{title: World, keywords: [ukraine, korea, wheat]}}
feeds:
  - {{url: "{feed_server.url("/wire.xml")}", name: Wire, priority: 1}}
  - {{url: "{feed_server.url("/paper.xml")}", name: Paper}}
digests:
  daily: {{schedule: "0 7 * * *"}}
subscribers:
  - email: reader@example.org
""",
        encoding="utf-8",
    )
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(
            cli, ["--config", str(path), *args], obj=SimpleNamespace(clock=clock)
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return SimpleNamespace(server=feed_server, run=run, clock=clock, dir=tmp_path)


def html_of(path: Path) -> str:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return msg.get_body(("html",)).get_content()


def test_a_delivered_story_never_comes_back_when_a_new_source_joins_it(site):
    site.server.route("/wire.xml", rss(SPY_WIRE))
    site.server.route("/paper.xml", rss())
    site.run("fetch")
    assert "1 stories" in site.run("digest")
    site.clock.advance(timedelta(hours=20))
    site.server.route("/paper.xml", rss(SPY_COPY, GRAIN))
    site.run("fetch")
    items = {i["headline"]: i for i in json.loads(site.run("items", "--json"))["items"]}
    assert items[SPY_B]["story"] == items[SPY_A]["story"]
    out = site.run("digest")
    assert "1 stories" in out, out
    newest = sorted((site.dir / "outbox" / "pending").glob("*.eml"))[-1]
    html = html_of(newest)
    assert "Ukrainian wheat" in html
    assert "dangerous ally" not in html


def test_one_story_from_two_feeds_shows_the_priority_source_and_credits_the_other(site):
    site.server.route("/wire.xml", rss(SPY_WIRE))
    site.server.route("/paper.xml", rss(SPY_COPY))
    site.run("fetch")
    assert "1 stories" in site.run("digest")
    html = html_of(next((site.dir / "outbox" / "pending").glob("*.eml")))
    assert SPY_A.replace("'", "&#39;") in html or SPY_A in html  # Wire has priority 1
    assert "Also covered by" in html and "https://paper.example/world/spy-chief" in html


def test_explain_shows_the_story_its_siblings_and_the_evidence(site):
    site.server.route("/wire.xml", rss(SPY_WIRE))
    site.server.route("/paper.xml", rss())
    site.run("fetch")  # the wire first, so which item started the story is known
    site.server.route("/paper.xml", rss(SPY_COPY))
    site.clock.advance(timedelta(minutes=20))
    site.run("fetch")
    items = {i["headline"]: i for i in json.loads(site.run("items", "--json"))["items"]}
    copy_id = items[SPY_B]["id"]
    doc = json.loads(site.run("explain", str(copy_id), "--json"))
    story = doc["story"]
    assert story["id"] == items[SPY_A]["story"]
    assert story["representative"] == items[SPY_A]["id"]
    assert [i["source"] for i in story["items"]] == ["Wire", "Paper"]
    assert story["joined"]["rule"] == "title"
    assert story["joined"]["matched_item"] == items[SPY_A]["id"]
    text = site.run("explain", str(copy_id))
    assert "started the story" in text and "joined: title match with item" in text
    result = CliRunner().invoke(
        cli,
        ["--config", str(site.dir / "feeds.yaml"), "explain", "999"],
        obj=SimpleNamespace(clock=site.clock),
    )
    assert result.exit_code == 2 and "no item 999" in result.output


def _datasketch_band_keys(f: dedupe.Features) -> tuple[int, ...]:
    """The band keys as datasketch's own MinHash makes them, one object per set."""
    import zlib

    import numpy as np
    from datasketch import MinHash

    keys: list[int] = []
    # Headline words are hashed here; lead shingles are kept as their CRC-32 already.
    for tokens, hashfunc, kind, (n, rows) in (
        ([w.encode("utf-8") for w in set(f.title_words)], zlib.crc32, 0, dedupe.TITLE_BANDS),
        (list(f.lead_shingles), int, 1, dedupe.LEAD_BANDS),
    ):
        if len(tokens) < (2 if kind == 0 else dedupe._MIN_LEAD_WORDS - 2):
            continue
        m = MinHash(num_perm=dedupe.NUM_PERM, seed=1, scheme="affine32", hashfunc=hashfunc)
        m.update_batch(tokens)
        h = dedupe._hasher()
        bands = m.hashvalues[: n * rows].astype(np.uint64).reshape(n, rows)
        key = (bands * h.row_mix[:rows]).sum(axis=1, dtype=np.uint64)
        key ^= h.salt[kind * dedupe.NUM_PERM : kind * dedupe.NUM_PERM + n]
        key *= h.finish
        key ^= key >> h.shift
        keys += key.view("int64").tolist()
    return tuple(dict.fromkeys(keys))


def test_batched_band_keys_are_datasketchs_minhash_keys():
    texts = [
        (SPY_A, SPY_LEAD),
        (SPY_B, SPY_LEAD + " Officials in Seoul did not comment."),
        ("Fed holds rates", ""),  # a title of 2+ words and no lead
        ("Hi", "Too short a lead."),  # neither: no keys
        ("Страны ЕС договорились о новых санкциях", "Послы стран ЕС в среду согласовали " * 3),
        ("東京で地震 震度5弱を観測", "気象庁によると、午前9時ごろ東京都で震度5弱の地震があった。"),
        ("Apple's Q3 revenue rises 5% to $85.8bn", "Apple said on Thursday that revenue " * 4),
    ]
    fs = [dedupe.features(t, lead) for t, lead in texts]
    batched = dedupe.band_keys_many(fs)
    assert batched == [_datasketch_band_keys(f) for f in fs]
    assert batched == [dedupe.band_keys(f) for f in fs]
    assert batched[3] == ()
    assert len(batched[0]) == 16 + 12 and len(batched[2]) == 16
    many = fs * 100  # more than one batch of arrays (a huge feed is hashed in parts)
    assert dedupe.band_keys_many(many) == batched * 100


def test_story_matcher_uses_keys_made_by_the_parse_workers_until_told_to_forget() -> None:
    matcher = StoryMatcher()
    a = item("a", "Storm closes the northern ports for a third day", "Ferries stay in harbour.")
    assert matcher.band_keys(a) == dedupe.band_keys(dedupe.features(a.title, a.lead))
    matcher.remember([a], [dedupe.pack_keys((1, 2, -(2**63)))])
    assert matcher.band_keys(a) == (1, 2, -(2**63))
    matcher.forget([a])
    assert matcher.band_keys(a) == dedupe.band_keys(dedupe.features(a.title, a.lead))


def test_lead_shingles_are_the_crc32_of_each_three_word_run():
    import zlib

    f = dedupe.features("Fed holds rates", "The Fed held its rate at 5.25% on Wednesday.")
    runs = ["the fed held", "fed held its", "held its rate", "its rate at", "rate at 5.25"]
    runs += ["at 5.25 on", "5.25 on wednesday"]
    assert f.lead_shingles == {zlib.crc32(r.encode("utf-8")) for r in runs}


def test_fold_drops_accents_and_makes_typographic_quotes_plain():
    assert dedupe.fold("Zürich’s CAFÉ ‘Ångström’") == "zurich's cafe 'angstrom'"
    assert dedupe.fold("Straße Ǆ ﬁ x²") == "strasse dz fi x2"
    assert dedupe.fold("IT'S") == "it's"
