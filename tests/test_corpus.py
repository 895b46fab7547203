"""Conformance over the shared real-world corpus (../shared/corpus, see its README.md).

The whole path runs: the corpus folder is served by the test HTTP server on 127.0.0.1, every
file is a feed in feeds.yaml, and pipeline.poll_feeds polls them all into a SQLite store in
tmp_path under a frozen clock. Then:

- every entry that feedparser finds with a title and a link reaches the store (matched by
  canonical link, else GUID, else headline; not by a link other entries of the feed have too),
  and every JSON Feed item with a title and a url;
  each JSON Feed gives the items and note it is known to give (JSON_FEEDS);
- nothing crashes, and every feed that stored nothing says why in its report (and so in
  `status`): an error, or a note that it lists no entries or none that can be stored;
- no stored lead carries markup, a raw entity or a trailer phrase; no link is other than
  http(s).

Skipped when the corpus is absent (a user's checkout has no ../shared). The numbers are
printed (pytest -s) for the record.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import feedparser
import pytest

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.extract import canonical_link, plain_text
from aggregator.records import PollOutcome

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FEEDS = CORPUS / "feeds"

pytestmark = pytest.mark.skipif(not FEEDS.is_dir(), reason=f"no corpus at {CORPUS}")

MARKUP = re.compile(
    r"</?(?:p|div|span|a|img|br|b|i|u|em|strong|ul|ol|li|table|tr|td|th|h[1-6]|script|style"
    r"|iframe|font|blockquote|pre|code|figure|figcaption|hr|section|article|small|sup|sub"
    r"|center|noscript|object|embed|video|audio|source|picture|svg|input|form|button)\b[^>]*>"
    r"|<!--|<!\[CDATA\[",
    re.IGNORECASE,
)
ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
TRAILER = re.compile(
    r"appeared first on|was originally published in|\[\s*(?:…|\.\.\.|&hellip;)\s*\]"
    r"|\[link\]\s*\[comments\]|submitted by\s+/u/"
    r"|(?:continue reading|read more|keep reading)\W{0,3}$",
    re.IGNORECASE,
)
CONTENT_TYPES = {".json": "application/json", ".atom": "application/atom+xml"}


@pytest.fixture(scope="module")
def corpus_poll(tmp_path_factory):
    """Serve the corpus, poll every file once, and hand back what reached the store."""
    from aggregator.clock import FrozenClock
    from tests.conftest import FROZEN_NOW
    from tests.feedserver import FeedServer

    files = sorted(p for p in FEEDS.rglob("*") if p.is_file())
    tmp = tmp_path_factory.mktemp("corpus")
    with FeedServer() as server:
        urls: dict[str, Path] = {}
        for path in files:
            route = "/" + path.relative_to(FEEDS).as_posix()
            kind = CONTENT_TYPES.get(path.suffix, "application/xml")
            server.route(route, path.read_bytes(), headers={"Content-Type": kind})
            urls[server.url(route)] = path
        config_path = tmp / "feeds.yaml"
        lines = ["settings:", "  data_dir: data", "  outbox: outbox"]
        lines += ["  concurrency: 16", "  per_host: 16", "  timeout: 60s", "feeds:"]
        for url, path in urls.items():
            lines += [f"  - url: {url}", f'    name: "{path.relative_to(FEEDS).as_posix()}"']
        config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        config = load_config(config_path)
        store = pipeline.open_store(config)
        try:
            reports = pipeline.poll_feeds(config, store, FrozenClock(FROZEN_NOW), due_only=False)
            stored = store.items()
        finally:
            store.close()
    return urls, {r.url: r for r in reports}, stored


def expected_entries(url: str, path: Path) -> list[dict]:
    """The entries feedparser itself (defaults, as the corpus README counts them: 4,457)
    finds with both a title and a link; in a JSON Feed, which feedparser 6 does not read, the
    items with a title and a url (read with the json module, not with parse)."""
    if path.suffix == ".json":
        items = json.loads(path.read_bytes()).get("items")
        return [
            {"title": item["title"], "link": item["url"], "id": str(item.get("id"))}
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
            and isinstance(item.get("title"), str)
            and isinstance(item.get("url"), str)
        ]
    parsed = feedparser.parse(str(path))
    return [e for e in parsed.entries if e.get("title") and e.get("link")]


def test_every_feed_is_polled_and_nothing_crashes(corpus_poll):
    urls, reports, _ = corpus_poll
    assert set(reports) == set(urls)
    outcomes = Counter(r.outcome for r in reports.values())
    assert outcomes[PollOutcome.UPDATED] + outcomes[PollOutcome.ERROR] == len(urls)
    assert all(r.error for r in reports.values() if r.outcome is PollOutcome.ERROR)


def test_every_entry_with_a_title_and_a_link_reaches_the_store(corpus_poll):
    urls, _, stored = corpus_poll
    by_feed: dict[str, list] = {}
    for item in stored:
        by_feed.setdefault(item.feed_url, []).append(item)
    total = reached = 0
    missing = []
    for url, path in urls.items():
        items = by_feed.get(url, [])
        links = {i.link for i in items}
        guids = {i.guid for i in items}
        titles = {i.title for i in items}
        entries = expected_entries(url, path)
        link_of = [
            canonical_link(entry.get("feedburner_origlink") or entry["link"], base=url)
            for entry in entries
        ]
        # A link several entries share (a podcast's show page) says nothing of which reached.
        shared = {link for link, n in Counter(link_of).items() if n > 1}
        for entry, link in zip(entries, link_of, strict=True):
            total += 1
            title = plain_text(entry["title"])
            by_link = link and link in links and link not in shared
            if by_link or entry.get("id") in guids or title in titles:
                reached += 1
            else:
                missing.append((path.name, entry["title"][:60], entry["link"][:80]))
    print(f"\ncorpus: {reached} of {total} entries with a title and a link reached the store")
    assert total > 4000
    assert not missing, missing[:20]


def test_a_podcast_linking_every_episode_to_its_show_page_keeps_its_episodes(corpus_poll):
    """131 episodes, nearly all linking the show's page. Two of them are one item: the same
    headline ("Geekistry: Lowatus of Borg (extended version)") under the same link, as a feed
    that lists an article twice shows it; one GUID under two headlines stays two."""
    urls, _, stored = corpus_poll
    [url] = [u for u, path in urls.items() if path.name == "itunes-missing-image.rss"]
    assert len(feedparser.parse(str(urls[url])).entries) == 131
    assert sum(1 for i in stored if i.feed_url == url) == 130


def test_every_feed_that_stores_nothing_says_why(corpus_poll):
    """In its report and so in `status`: an error, or a note (no entries; entries that have
    no title, link or text). feedparser agrees that such feeds give nothing to store."""
    urls, reports, stored = corpus_poll
    with_items = {i.feed_url for i in stored}
    reasons: Counter[str] = Counter()
    silent = []
    for url, path in urls.items():
        if url in with_items:
            continue
        report = reports[url]
        said = report.error or report.note
        if not said:
            silent.append(path.name)
            continue
        reasons[re.sub(r"\s*\(.*|:.*| at line.*|^\d+ of \d+ ", "", said)] += 1
        if not report.error:
            entries = feedparser.parse(io.BytesIO(path.read_bytes())).entries
            assert not any(_has_something(e) for e in entries), path.name
    print(
        f"\ncorpus: {len(urls) - sum(reasons.values())} of {len(urls)} feeds stored items; "
        f"the others: {dict(reasons.most_common())}"
    )
    assert not silent


def _has_something(entry) -> bool:
    texts = [
        entry.get("title"),
        entry.get("summary"),
        *(c.get("value") for c in entry.get("content", [])),
    ]
    if canonical_link(entry.get("link")) or plain_text(entry.get("title") or ""):
        return True
    return any(any(c.isalnum() for c in plain_text(t)) for t in texts if t)


# What each JSON Feed of the corpus gives: items stored, and the note or error of its poll.
JSON_FEEDS = {
    "feed-rs/jsonfeed_elastic_1.1.json": (3, None),  # no ids, RFC 822 dates: kept anyway
    "feed-rs/jsonfeed_example_1.json": (2, None),
    "feed-rs/jsonfeed_spec_1.json": (1, None),
    "feedjira/json_feed.json": (20, None),
    "feedjira/json_feed_with_escaped_uris.json": (30, None),  # "https:\/\/jsonfeed.org\/..."
    "reader/10.json": (0, "the feed lists no entries"),
    "reader/empty.json": (1, None),  # content_text alone: a headline made from it
    "reader/full.json": (2, None),
    "reader/invalid.json": (2, "6 of 8 entries have no title, http(s) link or text: not stored"),
    "reader/unknown.json": (0, "the feed lists no entries"),  # version/1234: read as a JSON Feed
}


def test_json_feeds_are_read(corpus_poll):
    urls, reports, stored = corpus_poll
    got = {}
    for url, path in urls.items():
        if path.suffix == ".json":
            report = reports[url]
            assert report.error is None, path.name
            note = (report.note or "").split("; ")[0] or None
            got[path.relative_to(FEEDS).as_posix()] = (
                sum(1 for i in stored if i.feed_url == url),
                note,
            )
    assert got == JSON_FEEDS
    invalid = next(r for r in reports.values() if r.url.endswith("/reader/invalid.json"))
    assert "values of the wrong type ignored: title (an array)" in invalid.note


def test_stored_leads_are_clean_text_and_links_are_http(corpus_poll):
    _, _, stored = corpus_poll
    dirty = [
        (kind, item.feed_name, item.lead[:120])
        for item in stored
        for kind, pattern in (("markup", MARKUP), ("entity", ENTITY), ("trailer", TRAILER))
        if pattern.search(item.lead) or (kind != "trailer" and pattern.search(item.title))
    ]
    assert not dirty, dirty[:20]
    assert all(i.link is None or re.match(r"https?://", i.link) for i in stored)
    assert all(i.title for i in stored)
    with_lead = sum(1 for i in stored if i.lead)
    print(f"\ncorpus: {len(stored)} items stored, {with_lead} with a lead")


def test_the_fast_parse_path_gives_what_feedparser_gives_on_every_corpus_feed(monkeypatch):
    """Every corpus document the fast path takes (RSS 2.0, Atom, RSS 1.0; UTF-8 or Latin-1)
    parses to exactly the records feedparser alone makes."""
    from aggregator import parse

    url = "http://127.0.0.1:8000/feed.xml"
    taken = 0
    for path in sorted(p for p in FEEDS.rglob("*") if p.is_file()):
        body = path.read_bytes()
        fast = parse._fast_parse(body, url, {})
        if fast is None:
            continue
        taken += 1
        monkeypatch.setattr(parse, "FAST_PATH", False)
        assert parse.parse_feed(body, url=url) == fast, path.name
        monkeypatch.setattr(parse, "FAST_PATH", True)
    print(f"fast path took {taken} corpus documents")
    assert taken >= 20  # so the comparison means something
