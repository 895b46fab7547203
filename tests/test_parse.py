"""parse_feed on small hand-written feeds (tests/data/feeds/)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import NotAFeedError, ParseError
from aggregator.parse import discover_feed_links, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
URL = "https://news.example.org/feeds/main.xml"


def parse(name, *, url=URL, headers=None):
    return parse_feed((FEEDS / name).read_bytes(), url=url, headers=headers)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# -- formats ---------------------------------------------------------------------------------


def test_rss2_channel_and_items():
    feed = parse("rss2.xml")
    assert feed.title == "Example News"
    assert feed.link == "https://news.example.org/"
    assert feed.warning is None
    assert len(feed.entries) == 3

    first = feed.entries[0]
    assert first.guid == "news-1001"
    assert first.link == "https://news.example.org/2026/11/budget"
    assert first.author == "Jane Reporter"
    assert first.summary_html == "<p>Short summary.</p>"
    # content:encoded as written: no sanitizing, relative links inside left alone
    assert first.content_html == (
        '<p>The full story, <a href="/more">with a relative link</a>.</p>',
    )


def test_rss2_title_is_kept_raw_with_its_markup_and_entities():
    first = parse("rss2.xml").entries[0]
    assert first.title == "Council approves <em>new</em> budget &amp; tax plan"


def test_rss2_relative_item_link_resolves_against_the_feed_url():
    storm = parse("rss2.xml").entries[1]
    assert storm.link == "https://news.example.org/2026/11/storm"


def test_content_location_header_is_the_base_for_relative_links():
    storm = parse("rss2.xml", headers={"Content-Location": "https://mirror.example.com/x/feed"})
    assert storm.entries[1].link == "https://mirror.example.com/2026/11/storm"


def test_atom_with_xml_base_resolves_relative_links():
    feed = parse("atom.xml")
    assert feed.title == "Ann\u2019s <i>Blog</i>"
    assert feed.link == "https://blog.example.net/"  # rel=alternate, not rel=self
    post = feed.entries[0]
    assert post.guid == "tag:blog.example.net,2026:post-1"
    # entry xml:base "posts/2026/" on top of the feed's "https://blog.example.net/";
    # the rel=alternate link wins over rel=replies listed first
    assert post.link == "https://blog.example.net/posts/2026/relative-links.html"
    assert post.title == "Relative links & xml:base"
    assert post.author == "Ann Author"
    assert post.summary_html == "A summary."


def test_atom_contents_come_longest_first():
    post = parse("atom.xml").entries[0]
    assert post.content_html == (
        '<p>A much longer body with <a href="other.html">a relative link</a>.</p>',
        "<p>Short.</p>",
    )


def test_rdf_rss_1_0():
    feed = parse("rdf.xml")
    assert feed.title == "Science Updates"
    assert feed.link == "https://science.example.edu/"
    assert [e.link for e in feed.entries] == [
        "https://science.example.edu/a/1",
        "https://science.example.edu/a/2",
    ]
    first = feed.entries[0]
    assert first.title == "New particle observed"
    assert first.author == "Lab Press Office"
    assert first.categories == ("Physics",)  # dc:subject
    # dc:date is folded into `updated` by feedparser
    assert first.updated == utc(2026, 11, 20, 15, 45)
    assert first.published is None


# -- fields ----------------------------------------------------------------------------------


def test_feedburner_origlink():
    feed = parse("rss2.xml")
    assert feed.entries[1].orig_link == "https://origin.example.org/storm"
    assert feed.entries[0].orig_link is None


def test_media_thumbnail_is_the_image():
    assert parse("rss2.xml").entries[0].image_url == "https://img.example.org/budget-thumb.jpg"


def test_image_enclosure_is_the_image_not_the_audio():
    assert parse("rss2.xml").entries[1].image_url == "https://img.example.org/storm.jpg"


def test_media_content_of_image_type_is_the_image():
    assert parse("rss2.xml").entries[2].image_url == "https://img.example.org/photo.png"


def test_atom_image_enclosure_resolves_against_xml_base():
    feed = parse("atom.xml")
    assert feed.entries[0].image_url == "https://blog.example.net/images/cover.webp"
    assert feed.entries[1].image_url is None


def test_dates_are_aware_utc():
    rss = parse("rss2.xml").entries
    assert rss[0].published == utc(2026, 11, 23, 13, 30)  # +0100
    assert rss[1].published == utc(2026, 11, 23, 9, 0)  # GMT
    assert rss[1].updated == utc(2026, 11, 23, 15, 15)  # dc:date -05:00
    assert rss[2].published is None  # "not a date at all"
    atom = parse("atom.xml").entries
    assert atom[0].published == utc(2026, 11, 21, 23, 0)  # +09:00, the day before in UTC
    assert atom[0].updated == utc(2026, 11, 22, 9, 30)
    assert atom[1].updated == utc(2026, 11, 21, 15, 0)  # -03:00
    assert all(
        d.tzinfo is UTC for e in rss + atom for d in (e.published, e.updated) if d is not None
    )


def test_categories_are_labels_or_terms_deduplicated_in_order():
    assert parse("rss2.xml").entries[0].categories == ("Politics", "Local")
    assert parse("atom.xml").entries[0].categories == ("Web development", "xml")
    assert parse("rss2.xml").entries[1].categories == ()


def test_missing_titles_are_none():
    assert parse("rss2.xml").entries[2].title is None
    assert parse("atom.xml").entries[1].title is None  # <title type="text"></title>
    untitled = parse("rss2.xml").entries[2]
    assert untitled.summary_html == "An item with no title, only a description."
    assert untitled.guid is None
    assert untitled.link is None


def test_ttl_is_read_in_minutes():
    assert parse("rss2.xml").ttl_minutes == 45
    assert parse("empty.xml").ttl_minutes is None  # <ttl>soon</ttl>
    assert parse("atom.xml").ttl_minutes is None


def _feed_with_dates(*dates, rdf=False):
    """A UTF-8 feed, one item per date: RSS 2.0 (pubDate), or RSS 1.0 (dc:date)."""
    if rdf:
        items = "".join(
            f'<item rdf:about="https://ex.org/{i}"><title>t{i}</title>'
            f"<link>https://ex.org/{i}</link><dc:date>{d}</dc:date></item>"
            for i, d in enumerate(dates)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rdf:RDF'
            ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<channel rdf:about="https://ex.org/"><title>t</title><link>https://ex.org/</link>'
            f"<description>d</description></channel>{items}</rdf:RDF>"
        ).encode()
    items = "".join(
        f"<item><title>t{i}</title><link>https://ex.org/{i}</link>"
        f"<guid>https://ex.org/{i}</guid><pubDate>{d}</pubDate></item>"
        for i, d in enumerate(dates)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://ex.org/</link>{items}</channel></rss>"
    ).encode()


LOCALIZED_DATES = [
    ("Seg, 25 Nov 2026 10:00:00 -0300", utc(2026, 11, 25, 13, 0)),  # UOL
    ("Seg, 24 Set 2018 19:42:40 -0300", utc(2018, 9, 24, 22, 42, 40)),
    ("Qui, 31 Dez 2026 23:30:00 -0300", utc(2027, 1, 1, 2, 30)),
    ("25 de novembro de 2026", utc(2026, 11, 25)),
    ("segunda-feira, 25 de novembro de 2026 às 10h00", utc(2026, 11, 25, 10, 0)),
    ("mié, 25 dic 2026 10:00:00 +0100", utc(2026, 12, 25, 9, 0)),
    ("Mar, 24 Mar 2026 10:00:00 +0100", utc(2026, 3, 24, 9, 0)),  # Tuesday, March
    ("jeu., 24 déc. 2026 10:00:00 +0100", utc(2026, 12, 24, 9, 0)),
    ("24 février 2026", utc(2026, 2, 24)),
    ("Do, 24. Dez 2026 10:00:00 +0100", utc(2026, 12, 24, 9, 0)),
    ("Mi, 25 Mär 2026 10:00:00 +0100", utc(2026, 3, 25, 9, 0)),
    ("gio, 24 dic 2026 10:00:00 +0100", utc(2026, 12, 24, 9, 0)),
    ("25 maggio 2026", utc(2026, 5, 25)),
]


@pytest.mark.parametrize("rdf", [False, True], ids=["rss2", "rdf"])
def test_dates_with_portuguese_spanish_french_german_italian_names_are_read(rdf):
    dates = [d for d, _ in LOCALIZED_DATES]
    entries = parse_feed(_feed_with_dates(*dates, rdf=rdf), url=URL).entries
    found = [e.updated if rdf else e.published for e in entries]
    assert found == [expected for _, expected in LOCALIZED_DATES]


def test_words_that_only_look_like_a_date_stay_no_date():
    dates = ["Seg, 45 Nov 2026 10:00:00 -0300", "amanhã de manhã", "de novembro", "mar"]
    entries = parse_feed(_feed_with_dates(*dates), url=URL).entries
    assert [e.published for e in entries] == [None] * len(dates)


def test_out_of_range_dates_do_not_crash():
    body = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>a</title><pubDate>Mon, 31 Feb 2026 10:00:00 GMT</pubDate></item>
    <item><title>b</title><pubDate>Tue, 24 Nov 2026 23:59:60 GMT</pubDate></item>
    </channel></rss>"""
    entries = parse_feed(body, url=URL).entries
    assert [e.title for e in entries] == ["a", "b"]
    assert all(e.published is None or e.published.tzinfo is UTC for e in entries)


# -- documents that are not clean feeds ------------------------------------------------------


def test_valid_feed_with_no_entries_is_fine():
    feed = parse("empty.xml")
    assert feed.title == "Quiet Feed"
    assert feed.entries == ()
    assert feed.warning is None


def test_broken_xml_with_entries_keeps_them_with_a_warning():
    feed = parse("broken-with-entries.xml")
    assert [e.title for e in feed.entries] == ["Fish & Chips are back", "Second item"]
    assert feed.warning == "not well-formed (invalid token) at line 7, column 19"


def test_broken_xml_without_entries_is_a_parse_error():
    with pytest.raises(ParseError, match="broken feed: unclosed token") as info:
        parse("broken-without-entries.xml")
    assert not isinstance(info.value, NotAFeedError)
    assert info.value.url == URL


def test_html_page_is_not_a_feed_and_names_its_feed_links():
    with pytest.raises(NotAFeedError, match="an HTML page, not a feed") as info:
        parse(
            "html-page.xml", url="https://example.com/blog/", headers={"content-type": "text/html"}
        )
    assert info.value.feed_links == (
        "https://example.com/feed.rss",
        "https://example.com/feed.atom",
        "https://example.com/blog/comments/feed/",
    )


def test_html_page_is_recognised_without_a_content_type():
    with pytest.raises(NotAFeedError) as info:
        parse("html-page.xml", url="https://example.com/")
    assert info.value.feed_links[0] == "https://example.com/feed.rss"


@pytest.mark.parametrize("body", [b"hello world", b'{"version": "https://jsonfeed.org/"}', b"<a/>"])
def test_other_documents_are_not_feeds(body):
    with pytest.raises(NotAFeedError, match="not a feed") as info:
        parse_feed(body, url=URL)
    assert info.value.feed_links == ()


def test_empty_body_is_a_parse_error():
    with pytest.raises(ParseError, match="empty document"):
        parse_feed(b"  \n", url=URL)


def test_wrong_charset_in_header_does_not_crash():
    # ISO-8859-1 bytes served as UTF-8
    feed = parse("latin1.xml", headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    assert feed.title == "Café du Monde"
    assert feed.entries[0].title == "Crème brûlée à la carte"
    assert feed.warning is not None
    assert "utf-8" in feed.warning


def test_charset_from_header_is_honoured():
    body = (FEEDS / "latin1.xml").read_bytes()
    feed = parse_feed(body, url=URL, headers={"content-type": "text/xml; charset=iso-8859-1"})
    assert feed.entries[0].title == "Crème brûlée à la carte"
    assert feed.warning is None


@pytest.mark.parametrize("content_type", ["text/xml", "text/html", "text/plain", None])
def test_utf8_feed_under_a_loose_content_type_parses_without_warning(content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    feed = parse("atom.xml", headers=headers)
    assert feed.title == "Ann\u2019s <i>Blog</i>"
    assert feed.warning is None


# -- discovery -------------------------------------------------------------------------------


def test_discover_feed_links_honours_base_element():
    html = b"""<html><head><base href="https://cdn.example.net/site/">
    <link rel="alternate" type="application/atom+xml" href="atom.xml">
    <link rel="alternate stylesheet" type="text/css" href="alt.css">
    <link rel="alternate" type="application/rss+xml">
    </head><body></body></html>"""
    assert discover_feed_links(html, "https://example.net/") == [
        "https://cdn.example.net/site/atom.xml"
    ]


def test_discover_feed_links_on_nothing():
    assert discover_feed_links(b"", "https://example.net/") == []
    assert discover_feed_links(b"<p>no head</p>", "https://example.net/") == []


# -- the fast path (fastfeedparser) ----------------------------------------------------------

ITEMS = Path(__file__).parent / "data" / "items"
FAST_CASES = sorted(p for folder in (FEEDS, ITEMS) for p in folder.iterdir() if p.suffix == ".xml")


@pytest.mark.parametrize("path", FAST_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_path_gives_what_feedparser_gives(path, monkeypatch):
    """When the fast path takes a feed, its records are exactly feedparser's."""
    from aggregator import parse as parse_module

    body = path.read_bytes()
    fast = parse_module._fast_parse(body, URL, {})
    if fast is None:
        return  # refused: feedparser parses it anyway
    monkeypatch.setattr(parse_module, "FAST_PATH", False)
    slow = parse_feed(body, url=URL)
    assert fast == slow
    monkeypatch.setattr(parse_module, "FAST_PATH", True)
    assert parse_feed(body, url=URL) == slow


def test_fast_path_is_taken_for_plain_feeds():
    from aggregator import parse as parse_module

    taken = [p.name for p in FAST_CASES if parse_module._fast_parse(p.read_bytes(), URL, {})]
    # so the comparison above means something
    assert {"hnrss.xml", "reuters.xml", "latin1-declared.xml", "rdf.xml"} <= set(taken)
    assert "broken-with-entries.xml" not in taken  # not well-formed: feedparser's warning


def test_fast_path_leaves_latin1_it_cannot_map_exactly_to_feedparser():
    from aggregator import parse as parse_module

    body = (FEEDS / "latin1-declared.xml").read_bytes()
    assert parse_module._fast_parse(body, URL, {}) is not None
    # 0x80-0x9f: C1 controls in Latin-1, cp1252 letters to feedparser
    assert parse_module._fast_parse(body.replace(b"euros", b"\x80"), URL, {}) is None
    # the server names another charset than the document does
    assert parse_module._fast_parse(body, URL, {"content-type": "text/xml; charset=utf-8"}) is None
    assert parse_feed(body, url=URL).entries[0].title == "Crème brûlée à la carte dès lundi"
