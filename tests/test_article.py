"""fetch_article: a lead from the article page, for new items whose feed gave none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from aggregator.article import article_lead, fetch_article_leads, wanted, with_article_lead
from aggregator.extract import extract_item
from tests.builders import raw_entry

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Port authority unveils plan to cut cargo clearance time | Lagos Daily Post</title></head>
<body><header><nav><a href="/">Home</a> <a href="/business">Business</a></nav>
<div class="social-follow">Connect with us</div></header>
<main><article><h1>Port authority unveils plan to cut cargo clearance time</h1>
<div class="byline">By Tunde Bakare</div><p>Published</p><p>on</p><time>November 23, 2026</time>
<figure><img src="/a.jpg"><figcaption>Containers at Apapa. Photo: LDP</figcaption></figure>
<p>The Nigerian Ports Authority on Monday unveiled a plan to cut the time it takes to clear
cargo at Lagos ports from 21 days to seven by the end of 2027. The plan includes a single
digital window for all inspections.</p>
<p>Shippers have long complained that delays add billions of naira to import costs, and the
new system is meant to fix that within two years.</p>
<div class="share">Share this: Facebook Twitter</div><p>Continue Reading</p>
</article></main><footer>Copyright 2026 Lagos Daily Post. All rights reserved.</footer>
</body></html>"""
LEAD = (
    "The Nigerian Ports Authority on Monday unveiled a plan to cut the time it takes to clear "
    "cargo at Lagos ports from 21 days to seven by the end of 2027. The plan includes a single "
    "digital window for all inspections."
)
TITLE = "Port authority unveils plan to cut cargo clearance time"


def item(link, *, title=TITLE, lead_html=None, guid=None):
    entry = raw_entry(guid=guid, link=link, title=title, summary_html=lead_html)
    return extract_item(entry, feed_url="https://news.example/feed", now=NOW)


def test_article_lead_skips_page_furniture():
    assert article_lead(PAGE.encode(), url="https://x.example/a", headline=TITLE) == LEAD


def test_article_lead_refuses_what_is_no_html_page():
    assert (
        article_lead(b"%PDF-1.7 ...", url="https://x.example/a.pdf", content_type="application/pdf")
        == ""
    )
    assert article_lead(b"", url="https://x.example/a") == ""


def test_only_new_leadless_items_with_links_are_wanted():
    fresh = item("https://news.example/a")
    known_key = item("https://news.example/b", guid="g-b")
    known_link = item("https://news.example/c")
    with_lead = item("https://news.example/d", lead_html="<p>The feed had a lead here.</p>")
    unlinked = item(None, title="No link at all")
    chosen = wanted(
        [fresh, known_key, known_link, with_lead, unlinked, fresh],
        known_keys={"g-b"},
        known_links={"https://news.example/c"},
    )
    assert chosen == [fresh]
    many = [item(f"https://news.example/n{i}") for i in range(50)]
    assert len(wanted(many, limit=20)) == 20


def test_with_article_lead_keeps_the_feeds_content_hash():
    bare = item("https://news.example/a")
    filled = with_article_lead(bare, LEAD)
    assert filled.lead == LEAD
    assert filled.content_hash == bare.content_hash  # a re-poll of the feed changes nothing


def test_pages_are_fetched_over_http_under_the_feed_limits(feed_server, clock):
    feed_server.route("/story", PAGE, headers={"Content-Type": "text/html; charset=utf-8"})
    feed_server.redirect("/moved", "/story", status=301)
    feed_server.oversized("/huge", 2_000_000)
    feed_server.route("/gone", status=404)
    feed_server.route("/pdf", b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    items = [
        item(feed_server.url("/story")),
        item(feed_server.url("/moved"), title="Moved story"),
        item(feed_server.url("/huge"), title="Huge page"),
        item(feed_server.url("/gone"), title="Gone page"),
        item(feed_server.url("/pdf"), title="A PDF"),
    ]
    leads = asyncio.run(fetch_article_leads(items, clock=clock, max_bytes=1_000_000, timeout=5))
    assert leads == {items[0].key: LEAD, items[1].key: LEAD}
    assert len(feed_server.requests_to("/huge")) == 1


FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Lagos Daily Post</title><link>{base}/</link>
<item><title>Port authority unveils plan to cut cargo clearance time</title>
<link>{base}/story?utm_source=rss</link><guid>ldp-1</guid></item>
<item><title>Naira firms against dollar</title><link>{base}/naira</link><guid>ldp-2</guid>
<description>The naira gained 1.4 per cent on Monday, data showed.</description></item>
{extra}
</channel></rss>
"""


@pytest.fixture
def ldp(feed_server, tmp_path):
    """The Lagos Daily Post feed (fetch_article: true) and its story page served; call with
    extra feeds.yaml lines, get (config, open store)."""
    from aggregator import pipeline
    from aggregator.config import load_config

    base = feed_server.url("")
    feed_server.route("/feed.xml", FEED.format(base=base, extra=""))
    feed_server.route("/story", PAGE, headers={"Content-Type": "text/html; charset=utf-8"})
    stores = []

    def site(extra_yaml: str = ""):
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text(
            "settings:\n  data_dir: data\n  outbox: outbox\n  tracking_params: [partner]\n"
            + extra_yaml
            + f"feeds:\n  - url: {base}/feed.xml\n    name: LDP\n    fetch_article: true\n",
            encoding="utf-8",
        )
        config = load_config(config_path)
        stores.append(pipeline.open_store(config))
        return config, stores[-1]

    yield site
    for store in stores:
        store.close()


def test_pipeline_fills_leads_of_new_items_from_their_pages_once(ldp, feed_server, clock):
    from aggregator import pipeline

    base = feed_server.url("")
    feed_server.route("/naira", "<html><body><p>Never fetched.</p></body></html>")
    config, store = ldp()
    pipeline.poll_feeds(config, store, clock, due_only=False)
    leads = {i.link: i.lead for i in store.items()}
    assert leads == {
        f"{base}/story": LEAD,
        f"{base}/naira": "The naira gained 1.4 per cent on Monday, data showed.",
    }
    assert len(feed_server.requests_to("/story")) == 1
    assert feed_server.requests_to("/naira") == []  # the feed gave that one a lead

    # the feed changes (a new item): old items are not fetched again, their lead stays
    extra = f"<item><title>Third story</title><link>{base}/third?partner=x</link><guid>ldp-3</guid></item>"
    feed_server.route("/feed.xml", FEED.format(base=base, extra=extra))
    feed_server.route(
        "/third",
        "<html><body><article><p>The third story starts here, officials said on Monday.</p></article></body></html>",
        headers={"Content-Type": "text/html"},
    )
    pipeline.poll_feeds(config, store, clock, due_only=False)
    leads = {i.link: i.lead for i in store.items()}
    assert leads[f"{base}/story"] == LEAD
    assert leads[f"{base}/third"] == "The third story starts here, officials said on Monday."
    assert len(feed_server.requests_to("/story")) == 1


def test_topic_is_decided_again_once_the_page_gave_the_lead(ldp, feed_server, clock):
    from aggregator import pipeline

    # Only the page's lead says "inspections"; the headline names no topic.
    config, store = ldp("topics:\n  customs: {title: Customs, keywords: [inspections]}\n")
    pipeline.poll_feeds(config, store, clock, due_only=False)
    story = next(i for i in store.items() if i.link == feed_server.url("/story"))
    assert story.lead == LEAD
    assert story.topic == "customs"
    assert "inspections" in str(story.topic_evidence)
