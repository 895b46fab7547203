"""What a feed is called wherever it is shown: the editor's `name:`, else the feed's own
<title> once a fetch has stored it, else (before that) its URL's host. Feeds served over real
HTTP on 127.0.0.1, so every feed here shares one host, as 44 feeds of one server did."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import lxml.etree
import lxml.html
import pytest
from click.testing import CliRunner

from aggregator import pipeline
from aggregator.cli import cli
from aggregator.config import load_config
from aggregator.extract import feed_title_text

ITEM = """<item><title>Ukraine and Russia agree prisoner exchange</title>
<link>https://{site}.example/exchange</link><guid>{site}-1</guid>
<pubDate>Tue, 24 Nov 2026 04:10:00 GMT</pubDate>
<description>Ukraine and Russia exchanged 200 prisoners each on Tuesday, officials said.
It was the largest swap this year.</description></item>"""


def rss(title: str, site: str, item: str = ITEM) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://{site}.example/</link>"
        f"{item.format(site=site)}</channel></rss>"
    )


@pytest.fixture
def site(feed_server, tmp_path, clock):
    """Two unnamed feeds carrying one story, a named one, and an unnamed one that fails."""
    feed_server.route("/a.xml", rss("Alpha Desk", "alpha"))
    feed_server.route("/b.xml", rss("Beta Desk", "beta"))
    feed_server.route(
        "/c.xml",
        rss(
            "What the Feed Calls Itself",
            "gamma",
            ITEM.replace(
                "Ukraine and Russia agree prisoner exchange", "Chipmaker earnings beat forecasts"
            )
            .replace("exchange<", "chips<")
            .replace("Ukraine and Russia exchanged 200 prisoners", "Quarterly earnings rose 20%"),
        ),
    )
    feed_server.route("/down.xml", "not here", status=404)
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"""settings:
  timezone: UTC
  data_dir: data
  outbox: outbox
  from: "Brief <brief@example.org>"
topics:
  world: {{title: World, keywords: [ukraine]}}
feeds:
  - url: {feed_server.url("/a.xml")}
  - url: {feed_server.url("/b.xml")}
  - url: {feed_server.url("/c.xml")}
    name: Editor's Pick
  - url: {feed_server.url("/down.xml")}
digests:
  daily: {{schedule: "0 7 * * *"}}
subscribers:
  - email: reader@example.org
""",
        encoding="utf-8",
    )

    def run(*args: str):
        result = CliRunner().invoke(
            cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return SimpleNamespace(server=feed_server, config=config, run=run, dir=tmp_path, clock=clock)


def status_names(site) -> dict[str, str]:
    """Feed URL path -> the name `status --json` shows."""
    feeds = json.loads(site.run("status", "--json"))["feeds"]
    return {f["url"].rsplit("/", 1)[-1]: f["name"] for f in feeds}


def test_before_the_first_fetch_an_unnamed_feed_is_shown_under_its_host(site):
    assert status_names(site) == {
        "a.xml": "127.0.0.1",
        "b.xml": "127.0.0.1",
        "c.xml": "Editor's Pick",
        "down.xml": "127.0.0.1",
    }


def test_fetch_and_status_show_an_unnamed_feed_under_its_own_title(site):
    out = site.run("fetch")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("feed "))
    rows = {line.split("  ")[0] for line in lines[header + 1 : -1]}
    assert rows == {"Alpha Desk", "Beta Desk", "Editor's Pick", "127.0.0.1"}
    # the editor's name wins over the feed's title; a feed never fetched keeps its host
    assert status_names(site) == {
        "a.xml": "Alpha Desk",
        "b.xml": "Beta Desk",
        "c.xml": "Editor's Pick",
        "down.xml": "127.0.0.1",
    }
    cfg = load_config(site.config)
    store = pipeline.open_store(cfg)
    try:  # what the editor's status page shows
        names = [f.name for f in pipeline.feed_status(cfg, store, site.clock.now())]
    finally:
        store.close()
    assert names == ["Alpha Desk", "Beta Desk", "Editor's Pick", "127.0.0.1"]


def test_items_explain_and_topics_name_each_unnamed_feed_apart(site):
    site.run("fetch")
    items = json.loads(site.run("items", "--json"))["items"]
    assert sorted(i["source"] for i in items) == ["Alpha Desk", "Beta Desk", "Editor's Pick"]
    assert "Alpha Desk: Ukraine and Russia agree prisoner exchange" in site.run("items")
    alpha = next(i for i in items if i["source"] == "Alpha Desk")
    explained = json.loads(site.run("explain", str(alpha["id"]), "--json"))
    assert explained["item"]["source"] == "Alpha Desk"
    assert sorted(m["source"] for m in explained["story"]["items"]) == ["Alpha Desk", "Beta Desk"]
    feeds = json.loads(site.run("topics", "--json"))["feeds"]
    assert [(f["feed"], f["topics"]) for f in feeds] == [
        ("Alpha Desk", {"world": 1}),
        ("Beta Desk", {"world": 1}),
        ("Editor's Pick", {"more": 1}),
    ]


def test_a_digest_credits_unnamed_feeds_by_title_and_each_is_also_covered(site):
    site.run("fetch")
    site.run("digest")
    [path] = (site.dir / "outbox" / "pending").glob("*.eml")
    msg = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    doc = lxml.html.document_fromstring(html)
    meta = [" ".join(p.text_content().split()) for p in doc.find_class("m")]
    exchange = next(m for m in meta if "Also covered by" in m)
    # whichever of the two the story was first seen in is its source, the other also covers it
    assert re.fullmatch(r"(Alpha|Beta) Desk · 04:10 Also covered by (Alpha|Beta) Desk", exchange)
    assert "Alpha" in exchange and "Beta" in exchange
    assert any(m.startswith("Editor's Pick · ") for m in meta)
    assert "127.0.0.1" not in html


def digest_meta(site) -> list[str]:
    site.run("digest")
    [path] = (site.dir / "outbox" / "pending").glob("*.eml")
    msg = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
    doc = lxml.html.document_fromstring(msg.get_body(("html",)).get_content())
    return [" ".join(p.text_content().split()) for p in doc.find_class("m")]


def test_two_feeds_with_one_title_are_both_credited(site):
    site.server.route("/a.xml", rss("Desk", "alpha"))
    site.server.route("/b.xml", rss("Desk", "beta"))
    site.run("fetch")
    assert "Desk · 04:10 Also covered by Desk" in digest_meta(site)


def test_a_name_written_or_removed_in_feeds_yaml_is_shown_from_the_next_poll(site):
    site.run("fetch")
    original = site.config.read_text(encoding="utf-8")
    named = original.replace("/a.xml\n", "/a.xml\n    name: The A Team\n")
    site.config.write_text(named, encoding="utf-8")
    site.run("fetch")
    sources = {i["source"] for i in json.loads(site.run("items", "--json"))["items"]}
    assert sources == {"The A Team", "Beta Desk", "Editor's Pick"}
    site.config.write_text(original, encoding="utf-8")
    site.run("fetch")
    sources = {i["source"] for i in json.loads(site.run("items", "--json"))["items"]}
    assert sources == {"Alpha Desk", "Beta Desk", "Editor's Pick"}


def test_opml_export_gives_an_unnamed_feed_its_title(site):
    site.run("fetch")
    exported = lxml.etree.fromstring(site.run("opml", "export").encode())
    texts = {o.get("xmlUrl").rsplit("/", 1)[-1]: o.get("text") for o in exported.iter("outline")}
    assert texts == {
        "a.xml": "Alpha Desk",
        "b.xml": "Beta Desk",
        "c.xml": "Editor's Pick",
        "down.xml": "127.0.0.1",
    }


def test_a_hostile_feed_title_is_shown_as_short_plain_text(site):
    long_tail = " ".join(["word"] * 40)
    site.server.route(
        "/a.xml", rss(f"&lt;b&gt;Alpha&lt;/b&gt; \u202eksed\u202c &amp; co {long_tail}", "alpha")
    )
    site.run("fetch")
    name = status_names(site)["a.xml"]
    assert name.startswith("Alpha ksed & co word") and name.endswith("word…")
    assert len(name) <= 80 and "<" not in name and "\u202e" not in name


def test_an_unnamed_feed_is_credited_without_its_sites_tagline_a_name_given_stays(site):
    site.server.route("/a.xml", rss("Alpha Desk - Breaking news, sport and weather", "alpha"))
    site.server.route("/b.xml", rss("Beta Desk | Home", "beta"))
    named = site.config.read_text(encoding="utf-8").replace(
        "name: Editor's Pick", 'name: "Editor\'s Pick - Best of the week, every week"'
    )
    site.config.write_text(named, encoding="utf-8")
    site.run("fetch")
    meta = digest_meta(site)
    exchange = next(m for m in meta if "Also covered by" in m)
    assert re.fullmatch(r"(Alpha|Beta) Desk · 04:10 Also covered by (Alpha|Beta) Desk", exchange)
    assert any(m.startswith("Editor's Pick - Best of the week, every week · ") for m in meta)


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Example News - Breaking news, sport and weather from Example", "Example News"),
        ("My Blog – Just another WordPress site", "My Blog"),
        ("Bamboo Blog - Home", "Bamboo Blog"),
        ("bbcchinese.com | 主页", "bbcchinese.com"),
        ("Wirecutter: Reviews for the Real World", "Wirecutter"),
        ("CRE: Technik, Kultur, Gesellschaft", "CRE"),
        ("Taverncast - Happy Hour in Your Head - Since 2005", "Taverncast"),
        # a section, or the site's name after the section, stays
        ("The Register - Science", "The Register - Science"),
        ("World news | The Guardian", "World news | The Guardian"),
        ("Node.js Blog: Vulnerability Reports", "Node.js Blog: Vulnerability Reports"),
        ("HuffPost Canada - Athena2 - All Posts", "HuffPost Canada - Athena2 - All Posts"),
        (
            "Servicio de Personal - Ingreso - Diputación de valencia",
            "Servicio de Personal - Ingreso - Diputación de valencia",
        ),
        (
            "Comments on: Why we moved our servers to Go",
            "Comments on: Why we moved our servers to Go",
        ),
        ("- Google Blog Search", "- Google Blog Search"),
    ],
)
def test_a_feed_title_is_shown_without_a_tagline_after_the_sites_name(title, shown):
    # real feed titles (/work/shared/corpus) and the forms they take
    assert feed_title_text(title) == shown
