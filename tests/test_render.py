"""render: Edition -> HTML/text -> MIME message, checked on the rendered artefacts."""

from __future__ import annotations

import email.policy
import logging
import re
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from aggregator import render
from aggregator.records import Edition, Section, StoryCandidate

CUTOFF = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
BERLIN = "Europe/Berlin"
UNSUB_URL = "https://news.example.org/unsubscribe?token=abc123"
UNSUB_MAILTO = "unsubscribe@news.example.org"
SENDER = "Morning Brief <brief@news.example.org>"
HOSTILE_TITLE = '<script>alert(1)</script> "><img src=x onerror=alert(2)> Fish &amp;amp; Chips'


# -- builders --------------------------------------------------------------------------------


def story(
    n: int,
    title: str | None = None,
    *,
    link: str | None = "default",
    lead: str = "A short lead paragraph.",
    source: str | None = None,
    published_at: datetime | None = None,
    also: tuple[tuple[str, str], ...] = (),
    topic: str = "world",
) -> StoryCandidate:
    return StoryCandidate(
        story_id=n,
        item_id=n,
        title=title if title is not None else f"Headline number {n}",
        lead=lead,
        link=f"https://example.org/story/{n}" if link == "default" else link,
        source=source or f"Source {n}",
        published_at=published_at or CUTOFF - timedelta(minutes=n),
        first_seen_at=CUTOFF - timedelta(minutes=n),
        topic=topic,
        priority=0,
        also=also,
    )


def edition(*sections: Section, recipient: str = "ann@example.org", **kw) -> Edition:
    fields = {
        "digest": "daily",
        "recipient": recipient,
        "edition_key": "2026-11-24-daily",
        "cutoff": CUTOFF,
        "subject": "Morning Brief – Dienstag 24 November ✓",
        "sections": sections,
    }
    fields.update(kw)
    return Edition(**fields)


def sample_edition() -> Edition:
    """Two sections, four stories; the third one hostile."""
    world = Section(
        "world",
        "World",
        (
            story(
                1,
                "Café reopens in Köln",
                published_at=datetime(2026, 11, 24, 6, 12, tzinfo=UTC),  # 07:12 Berlin
                also=(
                    ("The Guardian", "https://guardian.example/cafe"),
                    ("Dodgy Wire", "javascript:alert(3)"),
                ),
            ),
            story(2, "Second world story", published_at=datetime(2026, 11, 23, 20, 5, tzinfo=UTC)),
        ),
    )
    tech = Section(
        "tech",
        "Technology",
        (
            story(
                3,
                HOSTILE_TITLE,
                link="javascript:alert(1)",
                lead='Lead with <b>markup</b> and "><svg onload=alert(4)>',
                source="<i>Evil</i> Feed",
            ),
            story(4, "Fourth story", lead=""),
        ),
    )
    return edition(world, tech)


KW = {
    "digest_title": "Morning Brief",
    "timezone": BERLIN,
    "unsubscribe_url": UNSUB_URL,
    "unsubscribe_mailto": UNSUB_MAILTO,
    "why_text": "You get this because you subscribed to the daily brief.",
}


@pytest.fixture(scope="module")
def env():
    return render.make_environment(None)


@pytest.fixture(scope="module")
def html(env) -> str:
    return render.render_html(env, sample_edition(), **KW)


@pytest.fixture(scope="module")
def text(env) -> str:
    return render.render_text(env, sample_edition(), **KW)


def make_message(env, ed: Edition | None = None, **overrides) -> EmailMessage:
    ed = ed or sample_edition()
    args = {
        "edition": ed,
        "html": render.render_html(env, ed, **KW),
        "text": render.render_text(env, ed, **KW),
        "sender": SENDER,
        "list_id": render.list_id_for(ed.digest, SENDER),
        "unsubscribe_mailto": UNSUB_MAILTO,
        "unsubscribe_url": UNSUB_URL,
        "date": CUTOFF,
    }
    args.update(overrides)
    return render.build_message(**args)


def parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


# -- HTML: safety ----------------------------------------------------------------------------


def test_hostile_feed_text_never_becomes_markup(html):
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<svg" not in lowered
    assert "<b>" not in lowered and "<i>" not in lowered
    assert "javascript:" not in lowered
    doc = lxml.html.document_fromstring(html)
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        assert not [a for a in element.attrib if a.lower().startswith("on")], element.tag


def test_hostile_feed_text_is_shown_as_text(html):
    doc = lxml.html.document_fromstring(html)
    headlines = [h.text_content() for h in doc.iter("h3")]
    assert HOSTILE_TITLE in headlines  # the reader sees exactly what the feed said
    body_text = doc.text_content()
    assert "Fish &amp;amp; Chips" in body_text
    assert 'Lead with <b>markup</b> and "><svg onload=alert(4)>' in body_text
    assert "<i>Evil</i> Feed" in body_text


def test_only_http_links_appear(html):
    doc = lxml.html.document_fromstring(html)
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert hrefs
    assert all(h.startswith(("https://", "http://")) for h in hrefs), hrefs


def test_story_with_unsafe_link_gets_an_unlinked_headline(html):
    doc = lxml.html.document_fromstring(html)
    hostile = next(h for h in doc.iter("h3") if h.text_content() == HOSTILE_TITLE)
    assert hostile.find(".//a") is None
    safe = next(h for h in doc.iter("h3") if h.text_content() == "Café reopens in Köln")
    assert safe.find(".//a").get("href") == "https://example.org/story/1"


def test_also_covered_by_links_sources_and_unlinks_unsafe_ones(html):
    doc = lxml.html.document_fromstring(html)
    meta = next(p for p in doc.iter("p") if "Also covered by" in p.text_content())
    links = {a.text_content(): a.get("href") for a in meta.iter("a")}
    assert links == {"The Guardian": "https://guardian.example/cafe"}
    assert "Dodgy Wire" in meta.text_content()


def test_headlines_and_leads_take_their_direction_from_their_text(env):
    urdu = story(1, "پاکستان میں انتخابات", lead="الیکشن کمیشن نے نتائج کا اعلان کر دیا۔")
    html = render.render_html(env, edition(Section("world", "World", (urdu, story(2)))), **KW)
    doc = lxml.html.document_fromstring(html)
    assert [h.get("dir") for h in doc.iter("h3")] == ["auto", "auto"]
    leads = [p for p in doc.iter("p") if p.text_content().startswith(("الیکشن", "A short"))]
    assert [p.get("dir") for p in leads] == ["auto", "auto"]


def test_also_covered_by_credits_every_source_but_links_only_new_pages(env):
    main = "https://example.org/story/1"
    ed = edition(
        Section(
            "world",
            "World",
            (
                story(
                    1,
                    link=main,
                    also=(
                        ("Same Page Wire", "https://EXAMPLE.org/story/1?utm_source=rss"),
                        ("Other Paper", "https://other.example/a"),
                        ("Other Paper Again", "https://other.example/a"),
                        ("Source 1", "https://example.org/story/1-copy"),
                        ("Third Site", "https://third.example/b"),
                        ("Third Site", "https://third.example/c"),
                    ),
                ),
                story(2, also=(("Only Copy", "https://example.org/story/2"),)),
            ),
        )
    )
    html = render.render_html(env, ed, **KW)
    doc = lxml.html.document_fromstring(html)
    metas = [p for p in doc.iter("p") if "Also covered by" in p.text_content()]
    assert [(a.text_content(), a.get("href")) for a in metas[0].iter("a")] == [
        ("Other Paper", "https://other.example/a"),
        ("Third Site", "https://third.example/b"),
    ]
    # the same page again, or the headline's own page: credited, not linked
    assert "Same Page Wire, Other Paper, Other Paper Again, Third Site" in " ".join(
        metas[0].text_content().split()
    )
    assert [a.text_content() for a in metas[1].iter("a")] == [] and "Only Copy" in metas[
        1
    ].text_content()
    text = render.render_text(env, ed, **KW)
    assert (
        "Also covered by:\n- Same Page Wire\n- Other Paper: https://other.example/a\n"
        "- Other Paper Again\n- Third Site: https://third.example/b\n"
    ) in text
    assert "Also covered by:\n- Only Copy\n" in text
    # the story's own source, or a source named twice, is not named again
    assert text.count("Third Site") == 1 and "- Source 1" not in text


def test_also_covered_by_tells_sources_apart_by_feed_not_by_name():
    # Three feeds shown as "Desk" (unnamed feeds with one <title>): the other two are
    # credited; the first feed's second item is not.
    s = replace(
        story(1, source="Desk"),
        source_feed="https://a.example/feed",
        also=(
            ("Desk", "https://a.example/copy"),
            ("Desk", "https://b.example/1"),
            ("Desk", "https://c.example/1"),
        ),
        also_feeds=("https://a.example/feed", "https://b.example/feed", "https://c.example/feed"),
    )
    assert render.covered_by(s) == (
        ("Desk", "https://b.example/1"),
        ("Desk", "https://c.example/1"),
    )
    # without feeds (an editor's own StoryCandidate), names are all there is
    assert render.covered_by(replace(s, also_feeds=())) == ()


def test_a_name_already_shown_is_not_credited_again_without_a_page_of_its_own():
    # One blog polled as RSS and as Atom (or two section feeds of one site with one title):
    # both list the same page, so the second feed's credit would read "Blog · 07:10 Also
    # covered by Blog", unlinked. Two feeds of one name with pages of their own stay credited.
    s = replace(
        story(1, source="Artificial truth", link="https://dustri.org/b/post.html"),
        source_feed="https://dustri.org/feed.xml",
        also=(("Artificial Truth", "https://dustri.org/b/post.html"),),
        also_feeds=("https://dustri.org/atom.xml",),
    )
    assert render.covered_by(s) == ()
    other = replace(
        s,
        also=(
            ("Artificial truth", "https://dustri.org/b/post.html"),
            ("Wire", "https://dustri.org/b/post.html"),
            ("wire", ""),
            ("Artificial truth", "https://mirror.example/post"),
        ),
        also_feeds=("https://dustri.org/atom.xml", "w1", "w2", "https://mirror.example/f"),
    )
    assert render.covered_by(other) == (
        ("Wire", ""),
        ("Artificial truth", "https://mirror.example/post"),
    )


def test_right_to_left_source_names_keep_the_credit_line_in_order(env):
    # "BBC News اردو · 11 Jan": with nothing after the Urdu name, the bidi algorithm draws
    # " · 11" into its right-to-left run and the line reads "BBC News 11 · اردو Jan".
    urdu = replace(
        story(1, source="BBC News اردو", also=(("بی بی سی", "https://bbc.example/x"),)),
        published_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
    )
    ed = edition(Section("world", "World", (urdu, story(2))))
    html = render.render_html(env, ed, **KW)
    doc = lxml.html.document_fromstring(html)
    metas = [p.text_content() for p in doc.find_class("m")]
    assert metas[0].startswith("BBC News اردو\u200e · 20 Nov 07:00")
    assert "Also covered by بی بی سی\u200e" in metas[0]
    assert metas[1].startswith("Source 2 · ")  # no mark where nothing reads right to left
    text = render.render_text(env, ed, **KW)
    assert "BBC News اردو\u200e · 20 Nov 07:00\n" in text
    assert "- بی بی سی\u200e: https://bbc.example/x\n" in text
    # two Urdu headlines in the inbox preview stay in their order too
    two = edition(Section("world", "World", (story(1, "پہلی خبر"), story(2, "دوسری خبر"))))
    assert render.default_preheader(two) == "پہلی خبر\u200e · دوسری خبر\u200e"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&c=2"),
        ("  http://example.org/  ", "http://example.org/"),
        ("HTTPS://Example.org/x", "HTTPS://Example.org/x"),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("vbscript:msgbox", None),
        ("mailto:someone@example.org", None),
        ("/relative/path", None),
        ("//example.org/protocol-relative", None),
        ("https:example.org", None),
        ("https://", None),
        ('https://example.org/"onmouseover="alert(1)', None),
        ("https://exa mple.org/", None),
        ("https://[::1/", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_href_lets_only_absolute_http_urls_through(url, expected):
    assert render.safe_href(url) == expected


# -- HTML: e-mail shape ----------------------------------------------------------------------


def test_html_is_an_email_friendly_document(html):
    doc = lxml.html.document_fromstring(html)
    assert doc.get("lang") == "en"
    metas = {m.get("name"): m.get("content") for m in doc.iter("meta") if m.get("name")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    tables = list(doc.iter("table"))
    assert tables and all(t.get("role") == "presentation" for t in tables)
    assert any(t.get("width") == "600" for t in tables)


def test_preheader_is_hidden_and_holds_the_first_headlines(html):
    doc = lxml.html.document_fromstring(html)
    pre = doc.find_class("ph")[0]
    assert "display:none" in pre.get("style").replace(" ", "")
    assert pre.text_content().startswith("Café reopens in Köln · Second world story · ")


def test_given_preheader_is_used(env):
    out = render.render_html(env, sample_edition(), **KW, preheader="Today: <cafés>")
    doc = lxml.html.document_fromstring(out)
    assert doc.find_class("ph")[0].text_content().startswith("Today: <cafés>")


def test_css_is_inlined_and_media_queries_are_kept(html):
    doc = lxml.html.document_fromstring(html)
    story_cells = doc.find_class("st")
    assert story_cells and all("padding" in td.get("style", "") for td in story_cells)
    assert all(h.get("style") for h in doc.iter("h3"))
    style = "\n".join(s.text_content() for s in doc.iter("style"))
    assert "@media (prefers-color-scheme: dark)" in style
    assert "@media (max-width: 620px)" in style
    # the dark-mode rules beat the inline styles only because they are !important
    dark = style[style.index("prefers-color-scheme") :]
    assert "!important" in dark


def test_sections_and_stories_keep_their_order(html):
    doc = lxml.html.document_fromstring(html)
    assert [h.text_content() for h in doc.iter("h2")] == ["World", "Technology"]
    assert [h.text_content() for h in doc.iter("h3")] == [
        "Café reopens in Köln",
        "Second world story",
        HOSTILE_TITLE,
        "Fourth story",
    ]


def test_empty_sections_are_left_out(env):
    ed = edition(Section("world", "World", (story(1),)), Section("quiet", "Quiet Topic", ()))
    out = render.render_html(env, ed, **KW)
    assert "Quiet Topic" not in out
    assert "Quiet Topic" not in render.render_text(env, ed, **KW)


def test_story_time_is_local_with_the_date_only_on_other_days(html):
    doc = lxml.html.document_fromstring(html)
    metas = [p.text_content() for p in doc.find_class("m")]
    assert metas[0].startswith("Source 1 · 07:12")  # 06:12 UTC in Berlin, edition day
    assert metas[1] == "Source 2 · 23 Nov 21:05"  # the evening before


def test_footer_has_a_visible_unsubscribe_link_and_why_text(html):
    doc = lxml.html.document_fromstring(html)
    footer = doc.find_class("ft")[0]
    assert "You get this because you subscribed" in footer.text_content()
    link = next(a for a in footer.iter("a") if a.text_content() == "Unsubscribe")
    assert link.get("href") == UNSUB_URL


def test_footer_falls_back_to_the_mailto_link(env):
    out = render.render_html(env, sample_edition(), **{**KW, "unsubscribe_url": None})
    doc = lxml.html.document_fromstring(out)
    link = next(a for a in doc.iter("a") if a.text_content() == "Unsubscribe")
    assert link.get("href") == f"mailto:{UNSUB_MAILTO}"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 24, 6, 42, tzinfo=UTC), "07:42"),
        (datetime(2026, 11, 23, 22, 59, tzinfo=UTC), "23 Nov 23:59"),
        (datetime(2026, 11, 23, 23, 0, tzinfo=UTC), "00:00"),
        (datetime(2026, 11, 24, 6, 42), "07:42"),  # naive is taken as UTC
        (datetime(2026, 6, 1, 12, 0, tzinfo=UTC), "1 Jun 14:00"),  # this half-year: no year
        (datetime(2023, 7, 23, 18, 38, tzinfo=UTC), "23 Jul 2023"),  # older: its year
    ],
)
def test_format_story_time(when, expected):
    day = datetime(2026, 11, 24).date()
    assert render.format_story_time(when, ZoneInfo(BERLIN), day) == expected


def test_future_dated_story_shows_when_it_was_first_seen():
    s = story(1, published_at=CUTOFF + timedelta(days=2))
    assert render.story_when(s, CUTOFF) == s.first_seen_at


def test_premailer_works_offline_and_quietly(env, tmp_path, monkeypatch, caplog):
    def no_network(*args, **kwargs):
        raise AssertionError("render tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    shipped = render.shipped_template_dir() / render.HTML_TEMPLATE
    page = shipped.read_text().replace(
        "</head>",
        '<link rel="stylesheet" href="https://cdn.example/x.css">\n'
        "<style>.st { mso-line-height-rule: exactly; zoom: weird }</style>\n</head>",
    )
    (tmp_path / render.HTML_TEMPLATE).write_text(page)
    editor_env = render.make_environment(tmp_path)
    with caplog.at_level(logging.DEBUG):
        out = render.render_html(editor_env, sample_edition(), **KW)
    assert "Morning Brief" in out
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- templates -------------------------------------------------------------------------------


def test_editor_templates_override_shipped_ones(tmp_path):
    (tmp_path / render.TEXT_TEMPLATE).write_text(
        "{% for s in sections %}{{ s.title }};{% endfor %}\n"
    )
    env = render.make_environment(tmp_path)
    assert render.render_text(env, sample_edition(), **KW) == "World;Technology;"
    assert "<html" in render.render_html(env, sample_edition(), **KW)  # shipped fallback


def test_editor_css_replaces_the_shipped_css(tmp_path):
    (tmp_path / render.CSS_TEMPLATE).write_text("h3 { color: #123456; }")
    env = render.make_environment(tmp_path)
    doc = lxml.html.document_fromstring(render.render_html(env, sample_edition(), **KW))
    assert all("#123456" in h.get("style") for h in doc.iter("h3"))


def test_html_templates_autoescape_and_text_ones_do_not(tmp_path):
    (tmp_path / "extra.html.j2").write_text("{{ x }}")
    (tmp_path / "extra.txt.j2").write_text("{{ x }}")
    env = render.make_environment(tmp_path)
    assert env.get_template("extra.html.j2").render(x="<b>") == "&lt;b&gt;"
    assert env.get_template("extra.txt.j2").render(x="<b>") == "<b>"


def test_undefined_names_in_templates_fail_loudly(tmp_path):
    import jinja2

    (tmp_path / render.TEXT_TEMPLATE).write_text("{{ no_such_name }}")
    env = render.make_environment(tmp_path)
    with pytest.raises(jinja2.UndefinedError):
        render.render_text(env, sample_edition(), **KW)


def test_missing_template_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        render.make_environment(tmp_path / "nope")


# -- text part -------------------------------------------------------------------------------


def test_text_part_mirrors_the_sections(text):
    assert text.index("WORLD") < text.index("Café reopens in Köln") < text.index("TECHNOLOGY")
    assert text.index("TECHNOLOGY") < text.index("Fish &amp;amp;") < text.index("Fourth story")
    assert "https://example.org/story/1\n" in text
    assert "Source 1 · 07:12\n" in text
    assert "Source 2 · 23 Nov 21:05\n" in text
    assert "Also covered by:\n- The Guardian: https://guardian.example/cafe\n- Dodgy Wire\n" in text
    assert "javascript:" not in text  # unsafe links are dropped here too
    assert f"Unsubscribe: {UNSUB_URL}" in text
    assert "You get this because you subscribed" in text


def test_text_part_wraps_long_leads(env):
    lead = " ".join(["word"] * 120)
    out = render.render_text(env, edition(Section("world", "World", (story(1, lead=lead),))), **KW)
    lead_lines = [line for line in out.splitlines() if line.startswith("word")]
    assert len(lead_lines) > 5
    assert all(len(line) <= render.TEXT_WIDTH for line in lead_lines)
    assert " ".join(lead_lines) == lead


# -- the MIME message ------------------------------------------------------------------------


def test_message_is_multipart_alternative_text_then_html(env):
    msg = parse(render.message_bytes(make_message(env)))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[1]["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Café reopens in Köln" in parts[0].get_content()
    assert "Café reopens in Köln" in parts[1].get_content()


def test_message_carries_list_and_bulk_headers(env):
    msg = parse(render.message_bytes(make_message(env)))
    assert msg["From"] == SENDER
    assert msg["To"] == "ann@example.org"
    assert msg["Date"] == "Tue, 24 Nov 2026 06:30:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Id"] == "<daily.news.example.org>"
    assert msg["List-Unsubscribe"] == f"<mailto:{UNSUB_MAILTO}>, <{UNSUB_URL}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Precedence"] == "bulk"
    assert re.fullmatch(r"<[0-9a-f]{24}\.2026-11-24-daily@news\.example\.org>", msg["Message-ID"])


@pytest.mark.parametrize("url", [None, "http://news.example.org/unsubscribe?t=1"])
def test_one_click_header_only_with_an_https_url(env, url):
    msg = parse(render.message_bytes(make_message(env, unsubscribe_url=url)))
    assert msg["List-Unsubscribe-Post"] is None
    expected = f"<mailto:{UNSUB_MAILTO}>" + (f", <{url}>" if url else "")
    assert msg["List-Unsubscribe"] == expected


def test_long_unsubscribe_url_survives_serialisation_byte_for_byte(env):
    url = "https://news.example.org/unsubscribe?digest=daily&token=" + "Zq9-xY_7" * 20
    assert len(url) > 200
    mailto = "mailto:unsubscribe@news.example.org?subject=unsubscribe%20daily%20" + "a" * 40
    data = render.message_bytes(make_message(env, unsubscribe_url=url, unsubscribe_mailto=mailto))

    raw_line = next(x for x in data.split(b"\r\n") if x.startswith(b"List-Unsubscribe:"))
    assert raw_line == f"List-Unsubscribe: <{mailto}>, <{url}>".encode()
    assert b"=?" not in raw_line
    msg = parse(data)
    assert msg["List-Unsubscribe"] == f"<{mailto}>, <{url}>"
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_non_ascii_subject_round_trips(env):
    data = render.message_bytes(make_message(env))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 2047 encoded words, not raw UTF-8
    assert parse(data)["Subject"] == "Morning Brief – Dienstag 24 November ✓"


def test_long_non_ascii_subject_round_trips(env):
    subject = "Morgenübersicht – Dienstag, 24. November 2026 ✓ " * 3
    data = render.message_bytes(make_message(env, replace(sample_edition(), subject=subject)))
    assert parse(data)["Subject"] == subject.strip()
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in head if not line.startswith(b"List-Unsubscribe:"))


def test_message_bytes_use_crlf_and_short_body_lines(env):
    data = render.message_bytes(make_message(env))
    assert b"\n" not in data.replace(b"\r\n", b"")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # quoted-printable limit


def test_reserialising_the_message_is_stable(env):
    msg = make_message(env)
    assert render.message_bytes(msg) == render.message_bytes(msg)
    reparsed = BytesParser(policy=render.POLICY).parsebytes(render.message_bytes(msg))
    assert render.message_bytes(reparsed) == render.message_bytes(msg)


def test_message_id_is_fixed_by_edition_and_recipient(env):
    ed = sample_edition()
    same = render.message_id(ed.edition_key, ed.recipient, SENDER)
    assert same == render.message_id(ed.edition_key, ed.recipient, SENDER)
    assert same == render.message_id(ed.edition_key, " ANN@example.org ", SENDER)
    assert same != render.message_id(ed.edition_key, "bob@example.org", SENDER)
    assert same != render.message_id("2026-11-25-daily", ed.recipient, SENDER)
    first = parse(render.message_bytes(make_message(env, ed)))["Message-ID"]
    again = parse(render.message_bytes(make_message(env, ed)))["Message-ID"]
    other = replace(ed, recipient="bob@example.org")
    assert first == again != parse(render.message_bytes(make_message(env, other)))["Message-ID"]


def test_message_id_copes_with_odd_keys_and_senders():
    mid = render.message_id("daily @ 2026-11-24T07:00+01:00", "a@b", "no address at all")
    assert re.fullmatch(r"<[0-9a-f]{24}\.[A-Za-z0-9._-]+@localhost>", mid)


def test_header_injection_is_flattened(env):
    ed = replace(sample_edition(), subject="Brief\r\nBcc: victim@example.org")
    msg = parse(render.message_bytes(make_message(env, ed)))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Brief Bcc: victim@example.org"


@pytest.mark.parametrize(
    "overrides",
    [
        {"date": datetime(2026, 11, 24, 7, 0)},
        {"unsubscribe_url": "javascript:alert(1)"},
        {"unsubscribe_mailto": "not an address"},
    ],
)
def test_bad_message_arguments_are_refused(env, overrides):
    with pytest.raises(ValueError):
        make_message(env, **overrides)


# -- size ------------------------------------------------------------------------------------


def capped_edition() -> Edition:
    """The biggest edition the defaults allow: 40 stories (max_total) over 8 topics,
    400-character leads, three other sources per story."""
    lead = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 6)[:400]
    sections = []
    n = 0
    for t in range(8):
        stories = []
        for _ in range(5):
            n += 1
            also = tuple(
                (f"Other Outlet {k}", f"https://www.other-outlet-{k}.example/news/2026/11/24/s-{n}")
                for k in range(3)
            )
            stories.append(
                story(
                    n,
                    f"A reasonably long headline about topic {t} and what happened in story {n}",
                    link=f"https://www.example-news.example/2026/11/24/topic-{t}/story-{n}?ref=rss",
                    lead=lead,
                    source="Example News Network",
                    also=also,
                    topic=f"t{t}",
                )
            )
        sections.append(Section(f"t{t}", f"Topic number {t}", tuple(stories)))
    return edition(*sections)


def test_capped_edition_html_stays_under_90kb(env):
    ed = capped_edition()
    assert len(ed.story_ids) == 40
    msg = make_message(env, ed)
    size = render.html_size(msg)
    print(f"capped edition: encoded HTML {size} bytes, message {len(render.message_bytes(msg))}")
    assert size < 90_000


def test_mostly_non_latin_bodies_switch_to_base64_and_round_trip(env):
    lead = "Правительство во вторник представило новые меры по жилищному строительству. " * 5
    ed = edition(
        Section("world", "Мир", tuple(story(n, "Новые меры", lead=lead) for n in range(6)))
    )
    msg = make_message(env, ed)
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    assert html_part["Content-Transfer-Encoding"] == "base64"
    parsed = parse(render.message_bytes(msg))
    assert "Правительство во вторник" in parsed.get_body(("html",)).get_content()
    assert "Правительство во вторник" in parsed.get_body(("plain",)).get_content()


def test_latin_bodies_stay_quoted_printable(env):
    german = "Die Regierung hat am Dienstag überraschend neue Maßnahmen für Mieter vorgestellt. "
    assert render.body_encoding(german * 50) == "quoted-printable"


# -- shared rendering, personalisation, compose ------------------------------------------------


def test_personalise_escapes_what_differs_per_recipient(env):
    shared = render.render_shared(
        env,
        sample_edition(),
        digest_title="Morning Brief",
        timezone=BERLIN,
        unsubscribe_mailto=UNSUB_MAILTO,
        with_url=True,
    )
    url = "https://news.example.org/unsubscribe?digest=daily&email=o%27b%40x.org"
    why = 'You get this because <o\'b&"co"@x.org> asked for it.'
    html, text = render.personalise(
        shared, recipient="o'b&co@x.org", why_text=why, unsubscribe_url=url
    )
    assert "<o'b" not in html and "&email=" not in html
    doc = lxml.html.document_fromstring(html)
    footer = doc.find_class("ft")[0]
    assert why in footer.text_content()
    assert next(a for a in footer.iter("a") if a.text == "Unsubscribe").get("href") == url
    assert why in " ".join(text.split()) and f"Unsubscribe: {url}" in text
    assert shared.why_token not in html + text and shared.url_token not in html + text


def test_placeholders_are_new_for_every_rendering(env):
    kw = {
        "digest_title": "B",
        "timezone": BERLIN,
        "unsubscribe_mailto": UNSUB_MAILTO,
        "with_url": False,
    }
    one = render.render_shared(env, sample_edition(), **kw)
    two = render.render_shared(env, sample_edition(), **kw)
    assert one.why_token != two.why_token and one.recipient_token != two.recipient_token


def test_without_url_the_url_placeholder_becomes_the_mailto(env):
    shared = render.render_shared(
        env,
        sample_edition(),
        digest_title="B",
        timezone=BERLIN,
        unsubscribe_mailto=UNSUB_MAILTO,
        with_url=True,
    )
    html, _ = render.personalise(shared, recipient="a@b", why_text="w", unsubscribe_url=None)
    doc = lxml.html.document_fromstring(html)
    link = next(a for a in doc.iter("a") if a.text_content() == "Unsubscribe")
    assert link.get("href") == f"mailto:{UNSUB_MAILTO}"


def test_compose_writes_what_build_message_parses(env):
    ed = sample_edition()
    args = {
        "html": render.render_html(env, ed, **KW),
        "text": render.render_text(env, ed, **KW),
        "sender": SENDER,
        "list_id": "daily.example",
        "unsubscribe_mailto": UNSUB_MAILTO,
        "unsubscribe_url": UNSUB_URL,
        "date": CUTOFF,
    }
    data = render.compose(
        edition_key=ed.edition_key, subject=ed.subject, recipient=ed.recipient, **args
    )
    assert render.message_bytes(render.build_message(edition=ed, **args)) == data
    assert data == render.compose(
        edition_key=ed.edition_key, subject=ed.subject, recipient=ed.recipient, **args
    )  # same edition, same recipient: same bytes, boundary included


def test_base64_bodies_encode_the_canonical_crlf_form(env):
    lead = "Правительство во вторник представило новые меры. " * 8
    ed = edition(
        Section("world", "Мир", tuple(story(n, "Новые меры", lead=lead) for n in range(6)))
    )
    msg = parse(render.message_bytes(make_message(env, ed)))
    for part in msg.iter_parts():
        assert part["Content-Transfer-Encoding"] == "base64"
        raw = part.get_payload(decode=True)
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_a_template_that_filters_a_personal_value_is_refused(tmp_path):
    (tmp_path / render.TEXT_TEMPLATE).write_text("{{ why_text | upper }}\n")
    env = render.make_environment(tmp_path)
    with pytest.raises(ValueError, match="per-recipient value"):
        render.render_text(env, sample_edition(), **KW)


@pytest.mark.parametrize(
    "body",
    [
        "rom " + "x" * 70 + "\t\nnext",  # b2a_qp over the whole text makes a 77-column line
        "x" * 75 + " \n" + "Café au lait " * 8 + "\n.\n\n= trailing  ",
    ],
)
def test_quoted_printable_lines_stay_within_76_columns_and_round_trip(body):
    cte, encoded = render._encoded_body(body)
    assert cte == "quoted-printable"
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    import binascii

    decoded = binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8")
    assert decoded.rstrip("\n") == body
