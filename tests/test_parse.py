"""parse_feed on small hand-written feeds (tests/data/feeds/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import parse as parse_module
from aggregator.errors import NotAFeedError, ParseError
from aggregator.extract import extract_item
from aggregator.parse import discover_feed_links, newest_entries, parse_feed
from tests.builders import raw_entry

FEEDS = Path(__file__).parent / "data" / "feeds"
URL = "https://news.example.org/feeds/main.xml"


def parse(name, *, url=URL, headers=None):
    return parse_feed((FEEDS / name).read_bytes(), url=url, headers=headers)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


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


# -- JSON Feed -------------------------------------------------------------------------------

JSON_URL = "https://gazette.example.com/feeds/all.json"


def json_feed(items=None, **fields):
    doc = {"version": "https://jsonfeed.org/version/1.1", **fields}
    if items is not None:
        doc["items"] = items
    return parse_feed(json.dumps(doc).encode(), url=JSON_URL)


def one_entry(**item):
    return json_feed([item]).entries[0]


def test_json_feed_1_1_feed_and_items():
    feed = parse("jsonfeed-1.1.json", url=JSON_URL)
    assert (feed.title, feed.link, feed.ttl_minutes) == (
        "Harbour Gazette",
        "https://gazette.example.com/",
        None,
    )
    assert feed.warning is None
    ferry, fees = feed.entries
    assert ferry.guid == "https://gazette.example.com/2026/11/ferry"
    assert ferry.link == "https://gazette.example.com/2026/11/ferry"
    assert ferry.title == "Ferry service resumes after storm"
    assert ferry.summary_html == "Sailings are back to the winter timetable."
    assert ferry.author == "Ann Reporter, Bo Writer"  # authors without a name are left out
    assert ferry.published == utc(2026, 11, 24, 6, 30)
    assert ferry.updated == utc(2026, 11, 24, 9, 15, 30)  # whole seconds, as the XML paths
    assert ferry.categories == ("Transport", "Weather")
    assert ferry.image_url == "https://gazette.example.com/media/ferry.jpg"  # image before banner
    assert (ferry.orig_link, ferry.dc_date, ferry.source_title) == (None, None, None)
    # the item's authors are the feed's when it names none (JSON Feed 1.1)
    assert fees.author == "Gazette Desk"
    assert fees.image_url == "https://gazette.example.com/media/fees-chart.png"  # attachment


def test_json_feed_content_html_comes_before_content_text():
    ferry = parse("jsonfeed-1.1.json", url=JSON_URL).entries[0]
    assert ferry.content_html[0] == (
        "<p>The morning ferry sailed again on Tuesday, three days after the storm.</p>"
    )
    assert len(ferry.content_html) == 2


def test_json_feed_1_0_author_object_and_numeric_ids():
    feed = parse("jsonfeed-1.0.json", url="https://links.example.net/feed.json")
    bridges, tunnels = feed.entries
    assert (bridges.guid, tunnels.guid) == ("1042", "1041.5")
    assert bridges.author == "Cy Linker"  # the feed's author (1.0)
    assert tunnels.author == "Di Guest"
    assert bridges.published == utc(2026, 11, 24, 11, 0)
    assert tunnels.summary_html == "<p>A guest pick.</p>"


def test_json_feed_link_is_url_and_external_url_only_without_an_http_one():
    feed = parse("jsonfeed-1.0.json", url="https://links.example.net/feed.json")
    bridges, tunnels = feed.entries
    assert bridges.link == "https://links.example.net/2026/11/24/bridges"  # the item's own page
    assert tunnels.link == "https://news.example.org/tunnels"  # no url: the external one
    unsafe = one_entry(id="1", url="javascript:alert(1)", external_url="https://x.example/a")
    assert unsafe.link == "https://x.example/a"
    # nothing http(s) at all: kept as given, and extract refuses it as it refuses RSS links
    bare = one_entry(id="1", title="T", url="ftp://x.example/a")
    assert bare.link == "ftp://x.example/a"
    assert extract_item(bare, feed_url=JSON_URL, now=NOW).link is None


def test_json_feed_relative_urls_resolve_against_its_feed_url_else_where_it_was_fetched():
    fees = parse("jsonfeed-1.1.json", url=JSON_URL).entries[1]
    assert fees.link == "https://gazette.example.com/2026/11/fees"  # "../2026/11/fees"
    mirrored = parse("jsonfeed-1.1.json", url="https://cdn.example.net/x/y/z.json").entries[1]
    assert mirrored.link == "https://gazette.example.com/2026/11/fees"  # feed_url wins
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "home_page_url": "https://site.example.org/blog/",
            "items": [{"id": "1", "url": "posts/1", "image": "/i.png"}],
        }
    ).encode()
    [entry] = parse_feed(body, url="https://feeds.example.org/blog/feed.json").entries
    assert entry.link == "https://feeds.example.org/blog/posts/1"
    assert entry.image_url == "https://feeds.example.org/i.png"
    # read from a file: URL, the site's home page is the base
    [entry] = parse_feed(body, url="file:///srv/feeds/blog.json").entries
    assert entry.link == "https://site.example.org/blog/posts/1"


def test_json_feed_content_text_is_plain_text_even_with_angle_brackets():
    text = "Use the <b> tag for bold. If a < b and c > d, say so.\n\nMore."
    entry = one_entry(id="1", title="HTML tips", url="https://x.example/tips", content_text=text)
    item = extract_item(entry, feed_url=JSON_URL, now=NOW)
    assert item.lead == "Use the <b> tag for bold. If a < b and c > d, say so."
    assert item.image_url is None
    not_an_image = one_entry(id="2", title="T", content_text='Write <img src="x.png"> here.')
    assert extract_item(not_an_image, feed_url=JSON_URL, now=NOW).image_url is None


def test_json_feed_content_html_is_markup():
    entry = one_entry(id="1", title="T", content_html="<p>First <b>bold</b> words here.</p>")
    assert extract_item(entry, feed_url=JSON_URL, now=NOW).lead == "First bold words here."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T07:30:00+01:00", utc(2026, 11, 24, 6, 30)),
        ("2026-11-24T07:30:00.123456789Z", utc(2026, 11, 24, 7, 30)),
        ("2026-11-24t07:30:00z", utc(2026, 11, 24, 7, 30)),  # RFC 3339 allows lower case
        ("2026-11-24T07:30:00", utc(2026, 11, 24, 7, 30)),  # no offset: UTC, as feedparser
        ("Tue, 24 Nov 2026 07:30:00 -0500", utc(2026, 11, 24, 12, 30)),  # RFC 822 in the wild
        ("24 novembro 2026 07:30", utc(2026, 11, 24, 7, 30)),
        ("not a date", None),
        ("2026-13-45T99:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
        ("", None),
    ],
)
def test_json_feed_dates_are_aware_utc_or_none(value, expected):
    entry = one_entry(id="1", date_published=value, date_modified=value)
    assert entry.published == entry.updated == expected


def test_json_feed_item_with_only_an_id_has_every_other_field_empty():
    assert one_entry(id="only") == raw_entry(guid="only")


def test_json_feed_without_title_or_items_is_a_feed_with_no_entries():
    feed = parse_feed(b'{"version": "https://jsonfeed.org/version/1"}', url=JSON_URL)
    assert (feed.title, feed.link, feed.entries, feed.warning) == (None, None, (), None)


def test_json_feed_values_of_the_wrong_type_are_ignored_and_named():
    feed = json_feed(
        [
            {
                "id": "1",
                "title": 2026,  # a number for text: read as text
                "url": 12,  # a number for a URL: no URL
                "content_html": True,
                "tags": ["ok", 3, None, "fine"],
                "authors": "Ann",
                "date_published": 20261124,
                "image": ["x.png"],
            },
            "not an object",
            ["nor", "this"],
            {"id": {"no": "id"}, "title": "Kept", "author": ["x"]},
        ],
        title=["not", "text"],
        home_page_url={"no": "url"},
    )
    first, kept = feed.entries
    assert (first.title, first.link, first.content_html) == ("2026", None, ())
    assert first.categories == ("ok", "fine")
    assert (first.author, first.published, first.image_url) == (None, None, None)
    assert (kept.guid, kept.title, kept.author) == (None, "Kept", None)
    assert (feed.title, feed.link) == (None, None)
    assert feed.warning.startswith(
        "2 of 4 items are not JSON objects: skipped; values of the wrong type ignored: "
        "title (an array), home_page_url (an object), items[].content_html (true or false), "
        "items[].url (a number), "
    )
    assert len(feed.warning) == 200 and feed.warning.endswith("…")  # as feedparser's are cut


def test_json_feed_whose_items_is_no_list_lists_no_entries_and_says_why():
    feed = json_feed(items={"id": "1"})
    assert feed.entries == ()
    assert feed.warning == "values of the wrong type ignored: items (an object)"


def test_json_feed_that_is_not_utf8_keeps_its_entries_with_a_warning():
    body = '{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "title": "Café"}]}'
    feed = parse_feed(body.encode("latin-1"), url=JSON_URL)
    assert feed.entries[0].title == "Caf\ufffd"
    assert feed.warning == "not UTF-8 at byte 81: undecodable bytes replaced"


@pytest.mark.parametrize(
    "content_type",
    ["application/feed+json", "application/json", "text/plain", "text/html", "application/rss+xml"],
)
def test_json_feed_is_recognised_by_its_body_whatever_the_content_type(content_type):
    body = (FEEDS / "jsonfeed-1.1.json").read_bytes()
    feed = parse_feed(body, url=JSON_URL, headers={"Content-Type": content_type})
    assert len(feed.entries) == 2


def test_json_feed_after_a_bom_and_white_space_is_recognised():
    body = b"\xef\xbb\xbf \r\n\t" + (FEEDS / "jsonfeed-1.1.json").read_bytes()
    assert parse_feed(body, url=JSON_URL).title == "Harbour Gazette"


def test_json_feed_entry_is_the_entry_the_same_atom_entry_gives():
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Gazette</title>
<link rel="alternate" href="https://gazette.example.com/"/><id>urn:g</id>
<updated>2026-11-24T09:00:00Z</updated>
<entry><id>urn:g:1</id><title>Ferry &amp; bus</title>
<link rel="alternate" type="text/html" href="/2026/11/ferry"/>
<published>2026-11-24T07:30:00+01:00</published><updated>2026-11-24T09:00:00Z</updated>
<author><name>Ann Reporter</name></author><category term="Transport"/>
<summary>Sailings are back.</summary>
<content type="html">&lt;p&gt;The ferry sailed.&lt;/p&gt;</content></entry></feed>"""
    item = {
        "id": "urn:g:1",
        "title": "Ferry & bus",
        "url": "/2026/11/ferry",
        "date_published": "2026-11-24T07:30:00+01:00",
        "date_modified": "2026-11-24T09:00:00Z",
        "authors": [{"name": "Ann Reporter"}],
        "tags": ["Transport"],
        "summary": "Sailings are back.",
        "content_html": "<p>The ferry sailed.</p>",
    }
    from_atom = parse_feed(atom, url=JSON_URL)
    from_json = json_feed([item], title="Gazette", home_page_url="https://gazette.example.com/")
    assert from_json.entries == from_atom.entries
    assert (from_json.title, from_json.link) == (from_atom.title, from_atom.link)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}',
        b'{"version": "https://jsonfeed.org/"}',
        b'{"version": 1.1, "items": []}',
        b'{"version": "http://example.com/version/1", "items": []}',
        b'{"this is": broken',
    ],
)
def test_json_that_is_no_json_feed_is_not_a_feed(body):
    with pytest.raises(
        NotAFeedError, match=r"^not a feed \((JSON, but not a JSON Feed|invalid JSON)"
    ):
        parse_feed(body, url=JSON_URL)


def test_broken_json_that_names_itself_a_json_feed_is_a_broken_feed():
    body = (
        b'{\n  "version": "https:\\/\\/jsonfeed.org\\/version\\/1.1",\n  "items": [{"id": 1},]\n}'
    )
    with pytest.raises(ParseError, match=r"^broken feed: invalid JSON: ") as info:
        parse_feed(body, url=JSON_URL)
    assert not isinstance(info.value, NotAFeedError)
    assert str(info.value).endswith("at line 3, column 23")
    assert info.value.url == JSON_URL


@pytest.mark.parametrize("claims", [True, False])
def test_json_nested_too_deeply_is_a_parse_error_not_a_crash(claims):
    version = b'"version": "https://jsonfeed.org/version/1.1", ' if claims else b""
    body = b"{" + version + b'"items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    kind = ParseError if claims else NotAFeedError
    with pytest.raises(kind, match="nested too deeply to read"):
        parse_feed(body, url=JSON_URL)


def test_discover_feed_links_lists_json_feeds():
    html = b"""<html><head>
    <link rel="alternate" type="application/feed+json" title="Posts" href="/feed.json">
    <link rel="alternate" type="application/json" title="JSON Feed" href="/posts.json">
    <link rel="alternate" type="application/json" href="/blog/feed/json">
    <link rel="alternate" type="application/json" href="https://example.net/wp-json/wp/v2/posts/7">
    <link rel="alternate" type="application/ld+json" title="feed" href="/ld.json">
    </head><body></body></html>"""
    assert discover_feed_links(html, "https://example.net/blog/") == [
        "https://example.net/feed.json",
        "https://example.net/posts.json",
        "https://example.net/blog/feed/json",
    ]


def test_newest_entries_keeps_the_newest_dated_first_in_document_order():
    def entry(guid, hour=None):
        when = datetime(2026, 11, 24, hour, tzinfo=UTC) if hour is not None else None
        return raw_entry(guid=guid, published=when)

    entries = (entry("u1"), entry("a", 1), entry("b", 5), entry("u2"), entry("c", 3))
    assert newest_entries(entries, 10) is entries
    assert [e.guid for e in newest_entries(entries, 2)] == ["b", "c"]
    assert [e.guid for e in newest_entries(entries, 4)] == ["u1", "a", "b", "c"]
    undated = (entry("x"), entry("y"), entry("z"))
    assert [e.guid for e in newest_entries(undated, 2)] == ["x", "y"]


def test_contents_of_one_length_keep_their_document_order_in_every_process():
    def contents(*values: str) -> tuple[str, ...]:
        return parse_module._contents({"value": v} for v in values)

    assert contents("first body", "other body", "longest body") == (
        "longest body",
        "first body",
        "other body",
    )
    assert contents("other body", "first body", "") == ("other body", "first body")
