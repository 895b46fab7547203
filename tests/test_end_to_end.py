"""From feeds served over real HTTP to a digest .eml in outbox/, through the CLI."""

from __future__ import annotations

import email
import email.policy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from aggregator.cli import cli

WORLD = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>World Desk</title><link>https://world.example/</link>
<item>
  <title>Ukraine and Russia agree prisoner exchange - World Desk</title>
  <link>https://world.example/2026/11/exchange?utm_source=rss&amp;utm_medium=feed</link>
  <guid isPermaLink="false">w-1</guid>
  <pubDate>Tue, 24 Nov 2026 04:10:00 GMT</pubDate>
  <content:encoded><![CDATA[<p>Connect with us</p><p>World</p>
    <p>KYIV, Nov 24 (Wire) - Ukraine and Russia exchanged 200 prisoners each on Tuesday,
    officials said. It was the largest swap this year.</p><p>Continue Reading</p>]]></content:encoded>
</item>
<item>
  <title>&lt;script&gt;alert(1)&lt;/script&gt; Sanctions widen</title>
  <link>javascript:alert(2)</link>
  <guid>w-2</guid>
  <pubDate>Tue, 24 Nov 2026 03:00:00 GMT</pubDate>
  <description>&lt;img src=x onerror=alert(3)&gt;New sanctions were announced on Tuesday by the
  council. &lt;a href="javascript:alert(4)"&gt;More&lt;/a&gt;</description>
</item>
</channel></rss>
"""

TECH = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://tech.example/">
  <title>Tech Wire</title><id>urn:tech</id><updated>2026-11-24T05:00:00Z</updated>
  <entry>
    <title>Chipmaker earnings beat forecasts</title>
    <id>urn:tech:1</id>
    <link rel="alternate" href="/news/chip-earnings"/>
    <updated>2026-11-24T05:00:00Z</updated>
    <summary type="html">&lt;p&gt;Quarterly earnings rose 20%, the company said on Tuesday.&lt;/p&gt;
      &lt;p&gt;The post Chipmaker earnings appeared first on Tech Wire.&lt;/p&gt;</summary>
  </entry>
</feed>
"""

LATER = WORLD.replace(
    "<item>",
    """<item><title>North Korea sends envoy to Moscow</title>
  <link>https://world.example/2026/11/envoy</link><guid>w-3</guid>
  <pubDate>Wed, 25 Nov 2026 02:00:00 GMT</pubDate>
  <description>The envoy arrived on Wednesday for talks, state media said.</description></item>
<item>""",
    1,
)


def write_config(tmp_path: Path, server) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"""settings:
  timezone: Europe/London
  data_dir: data
  outbox: outbox
  poll_interval: 30m
  from: "Morning Brief <brief@example.org>"
  smtp: {{host: localhost, port: 25}}
topics:
  world: {{title: World, keywords: [ukraine, russia, "north korea", sanctions]}}
  business: {{title: Business, keywords: [economy, markets, earnings]}}
feeds:
  - url: {server.url("/world.xml")}
    name: World Desk
    topic: world
    interval: 15m
  - url: {server.url("/tech.xml")}
    name: Tech Wire
  - url: {server.url("/missing.xml")}
    name: Broken Feed
digests:
  daily: {{schedule: "0 7 * * *", subject: "Morning Brief - {{date:%A %d %B}}", max_per_topic: 8}}
subscribers:
  - email: reader@example.org
    digests: [daily]
  - email: world-only@example.org
    topics: [world]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def site(feed_server, tmp_path, clock):
    feed_server.route(
        "/world.xml", WORLD, etag='"w1"', headers={"Content-Type": "application/rss+xml"}
    )
    feed_server.route("/tech.xml", TECH, last_modified="Tue, 24 Nov 2026 05:00:00 GMT")
    feed_server.route("/missing.xml", "not here", status=404)
    config = write_config(tmp_path, feed_server)
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(
            cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
        )
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return SimpleNamespace(server=feed_server, config=config, run=run, clock=clock, dir=tmp_path)


def parse_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_check_summarises_a_valid_config(site):
    out = site.run("check").output
    assert "feeds:       3" in out
    assert "digest daily: '0 7 * * *' next Tue 24 Nov 2026 07:00 GMT, 2 subscriber(s)" in out


def test_fetch_stores_items_and_names_each_failure(site):
    result = site.run("fetch")
    assert "3 feeds polled, 3 new items, 1 failed" in result.output
    assert "HTTP 404 Not Found" in result.output
    status = json.loads(site.run("status", "--json").output)["feeds"]
    broken = next(f for f in status if f["name"] == "Broken Feed")
    assert (broken["last_outcome"], broken["last_error"], broken["error_streak"]) == (
        "error",
        "HTTP 404 Not Found",
        1,
    )
    world = next(f for f in status if f["name"] == "World Desk")
    assert (world["last_outcome"], world["items_stored"]) == ("updated", 2)
    items = json.loads(site.run("items", "--json").output)["items"]
    by_title = {i["headline"]: i for i in items}
    exchange = by_title["Ukraine and Russia agree prisoner exchange"]
    assert exchange["link"] == "https://world.example/2026/11/exchange"
    assert exchange["lead"].startswith("KYIV, Nov 24 (Wire) - Ukraine and Russia exchanged")
    assert exchange["topic"] == "world"
    assert by_title["Chipmaker earnings beat forecasts"]["link"] == (
        "https://tech.example/news/chip-earnings"
    )
    assert by_title["Chipmaker earnings beat forecasts"]["topic"] == "business"


def test_items_limit_takes_the_newest_and_refuses_zero_or_less(site):
    site.run("fetch")
    limited = json.loads(site.run("items", "--json", "--limit", "1").output)["items"]
    assert len(limited) == 1
    for bad in ("0", "-1"):
        result = site.run("items", "--limit", bad, ok=False)
        assert result.exit_code == 2, result.output  # a usage error, not a listing
        assert "Invalid value for '--limit'" in result.output
        assert "x>=1" in result.output


def test_second_fetch_sends_validators_and_stores_nothing_new(site):
    site.run("fetch")
    site.clock.advance(timedelta(minutes=20))
    result = site.run("fetch")
    assert "0 new items" in result.output
    second = site.server.requests_to("/world.xml")[-1]
    assert second.headers["if-none-match"] == '"w1"'
    assert site.server.requests_to("/tech.xml")[-1].headers["if-modified-since"] == (
        "Tue, 24 Nov 2026 05:00:00 GMT"
    )
    status = json.loads(site.run("status", "--json").output)["feeds"]
    assert {f["name"]: f["last_outcome"] for f in status}["World Desk"] == "not_modified"


def test_digest_writes_a_multipart_message_per_subscriber(site):
    site.run("fetch")
    out = site.run("digest").output
    pending = sorted((site.dir / "outbox" / "pending").glob("*.eml"))
    assert len(pending) == 2, out
    assert "preview:" in out
    messages = {str(parse_eml(p)["To"]): parse_eml(p) for p in pending}
    msg = messages["reader@example.org"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Morning Brief - Tuesday 24 November"
    assert msg["From"] == "Morning Brief <brief@example.org>"
    assert msg["Message-ID"] and msg["List-Unsubscribe"] and msg["List-Id"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Ukraine and Russia agree prisoner exchange" in part
        assert "Chipmaker earnings beat forecasts" in part
        assert "Continue Reading" not in part and "appeared first on" not in part
    assert "https://world.example/2026/11/exchange" in html
    # Hostile feed text is shown as text, never as markup or script links.
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
    # The footer names the digest as the reader knows it, not by its key in feeds.yaml.
    assert "reader@example.org is subscribed to Morning Brief." in " ".join(text.split())
    assert "'daily'" not in text and "&#39;daily&#39;" not in html
    world_only = messages["world-only@example.org"]
    assert "Chipmaker" not in world_only.get_body(("html",)).get_content()
    assert list((site.dir / "outbox" / "previews").glob("*.html"))


def test_rebuilding_an_edition_writes_nothing_twice(site):
    site.run("fetch")
    site.run("digest")
    again = site.run("digest").output
    assert "already built" in again
    assert len(list((site.dir / "outbox" / "pending").glob("*.eml"))) == 2


def test_a_second_digest_run_in_the_same_minute_says_what_happened_and_what_to_do(site):
    site.run("fetch")
    site.run("digest")
    site.clock.advance(timedelta(seconds=40))  # same minute: same edition key
    again = site.run("digest").output
    assert (
        "digest daily: edition 2026-11-24T0600-daily was already built at "
        "2026-11-24 06:00:00 GMT for 2 subscriber(s)"
    ) in again
    assert "nothing is written or sent twice" in again
    assert "aggregator preview --digest daily" in again
    assert len(list((site.dir / "outbox" / "pending").glob("*.eml"))) == 2


def test_next_edition_holds_only_what_is_new_since_the_last(site):
    site.run("fetch")
    site.run("digest")
    site.server.route("/world.xml", LATER, etag='"w2"')
    site.clock.advance(timedelta(days=1))
    site.run("fetch")
    out = site.run("digest").output
    assert "reader@example.org: 1 stories" in out
    newest = max((site.dir / "outbox" / "pending").glob("2026-11-25*.eml"))
    html = parse_eml(newest).get_body(("html",)).get_content()
    assert "North Korea sends envoy to Moscow" in html
    assert "prisoner exchange" not in html


ARCHIVED = WORLD.replace(
    "<item>",
    """<item><title>Sanctions review ordered last week</title>
  <link>https://world.example/2026/11/review</link><guid>w-old</guid>
  <pubDate>Fri, 20 Nov 2026 09:00:00 GMT</pubDate>
  <description>An older story from the archive of a newly added feed.</description></item>
<item>""",
    1,
)


def test_explain_gives_times_in_the_configured_timezone(site):
    site.config.write_text(
        site.config.read_text(encoding="utf-8").replace("Europe/London", "Europe/Berlin"),
        encoding="utf-8",
    )
    site.server.route("/world.xml", ARCHIVED, etag='"w3"')
    site.run("fetch")  # at 06:00 UTC, 07:00 in Berlin: the 07:00 edition's cutoff
    items = {i["headline"]: i for i in json.loads(site.run("items", "--json").output)["items"]}
    old = items["Sanctions review ordered last week"]["id"]
    doc = json.loads(site.run("explain", str(old), "--json").output)["editions"]
    [daily] = doc["digests"]
    assert daily["cutoff"] == "2026-11-24T06:00:00+00:00"  # the JSON keeps UTC offsets
    assert daily["note"].startswith("published 2026-11-20 10:00 CET, more than 12 h before")
    text = site.run("explain", str(old)).output
    assert "first seen 2026-11-24 07:00, topic world" in text
    assert "(2026-11-23 07:00 CET to 2026-11-24 07:00 CET)" in text
    assert text.endswith("times in Europe/Berlin (settings.timezone)\n")


def test_explain_says_when_an_item_is_too_old_for_the_edition(site):
    site.server.route("/world.xml", ARCHIVED, etag='"w3"')
    site.run("fetch")
    items = {i["headline"]: i for i in json.loads(site.run("items", "--json").output)["items"]}
    old = items["Sanctions review ordered last week"]["id"]
    fresh = items["Ukraine and Russia agree prisoner exchange"]["id"]
    # First seen 06:00, so the 07:00 edition takes it: a first edition looks back 24 h,
    # and 12 h of grace before that is 2026-11-22 19:00, after the item was published.
    doc = json.loads(site.run("explain", str(old), "--json").output)["editions"]
    assert doc["grace_hours"] == 12
    [daily] = doc["digests"]
    assert daily["too_old"] is True
    assert daily["cutoff"] == "2026-11-24T07:00:00+00:00"
    assert daily["published_after"] == "2026-11-22T19:00:00+00:00"
    assert daily["note"] == (
        "published 2026-11-20 09:00 GMT, more than 12 h before the window of digest daily "
        "(2026-11-23 07:00 GMT to 2026-11-24 07:00 GMT): not included"
    )
    assert daily["note"] in site.run("explain", str(old)).output
    text = site.run("explain", str(fresh)).output
    assert "not included" not in text
    assert "digest daily: window 2026-11-23 07:00 to 2026-11-24 07:00; published" in text
    assert text.endswith("times in Europe/London (settings.timezone)\n")
    # And the edition does what explain said.
    site.run("digest")
    html = parse_eml(sorted((site.dir / "outbox" / "pending").glob("*.eml"))[0])
    assert "Sanctions review" not in html.get_body(("html",)).get_content()
    # Built by hand at 06:00, that edition is the one explain names from now on.
    [built] = json.loads(site.run("explain", str(old), "--json").output)["editions"]["digests"]
    assert (built["cutoff"], built["too_old"]) == ("2026-11-24T06:00:00+00:00", True)
    assert [g["reason"] for g in built["edition"]["groups"]] == ["too_old"]
    assert "2 recipient(s) (reader@example.org, world-only@example.org): published" in (
        site.run("explain", str(old)).output
    )


def ticker(*titles: str) -> str:
    """An RSS 0.9 (RDF) feed whose entries have no dates, as many old tickers are."""
    items = "".join(
        f"<item><title>{t}</title><link>https://ticker.example/{t.replace(' ', '-')}</link>"
        f"<description>{t}, the ticker reported.</description></item>\n"
        for t in titles
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF xmlns:rdf='
        '"http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/">'
        "<channel><title>Ticker</title><link>https://ticker.example/</link>"
        f"<description>News</description></channel>\n{items}</rdf:RDF>\n"
    )


def add_feed(site, url: str, name: str) -> None:
    text = site.config.read_text("utf-8")
    site.config.write_text(
        text.replace("digests:", f"  - url: {url}\n    name: {name}\ndigests:", 1), "utf-8"
    )


def preview_headlines(site) -> list[str]:
    import lxml.html

    out = site.run("preview", "--subscriber", "reader@example.org").output
    path = Path(out.strip().splitlines()[-1].removeprefix("preview: "))
    return [h.text_content() for h in lxml.html.document_fromstring(path.read_text()).iter("h3")]


def test_a_new_feed_without_dates_does_not_flood_the_next_edition(site):
    site.run("fetch")
    site.run("digest")
    archive = [f"Archive story {n}" for n in range(12)]
    site.server.route("/ticker.rdf", ticker(*archive))
    add_feed(site, site.server.url("/ticker.rdf"), "Ticker")
    site.clock.advance(timedelta(hours=2))
    assert "12 new items" in site.run("fetch").output  # stored, so known from now on
    # Nothing tells which of them is new: on its first poll, all are the feed's archive.
    assert preview_headlines(site) == []
    items = {
        i["headline"]: i["id"] for i in json.loads(site.run("items", "--json").output)["items"]
    }
    doc = json.loads(site.run("explain", str(items["Archive story 0"]), "--json").output)
    [daily] = doc["editions"]["digests"]
    assert daily["archive"] is True and daily["too_old"] is False
    assert daily["note"] == (
        "no published time, and already in the feed when it was first polled "
        "(2026-11-24 08:00 GMT): the feed's archive, not news; not included in digest daily"
    )
    assert daily["note"] in site.run("explain", str(items["Archive story 0"])).output
    [group] = daily["edition"]["groups"]
    assert (group["reason"], group["recipients"]) == (
        "archive",
        ["reader@example.org", "world-only@example.org"],
    )
    # What it adds later is news from when it was first seen, dates or not.
    site.server.route("/ticker.rdf", ticker("Fresh story", *archive))
    site.clock.advance(timedelta(hours=1))
    assert "1 new items" in site.run("fetch").output
    assert preview_headlines(site) == ["Fresh story"]
    items = {
        i["headline"]: i["id"] for i in json.loads(site.run("items", "--json").output)["items"]
    }
    [daily] = json.loads(site.run("explain", str(items["Fresh story"]), "--json").output)[
        "editions"
    ]["digests"]
    assert (daily["archive"], daily["note"]) == (False, None)


def test_edition_with_nothing_new_sends_nothing(site):
    out = site.run("digest").output
    assert "nothing written (nothing new)" in out
    assert not list((site.dir / "outbox" / "pending").glob("*.eml"))


def test_invalid_config_is_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - url: ftp://x.example/feed\n    nmae: X\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(bad), "check"])
    assert result.exit_code == 2
    assert f"{bad}:2:" in result.output
    assert "did you mean 'name'" in result.output


def test_a_config_that_is_not_utf8_is_refused_at_its_first_bad_byte(tmp_path):
    bad = tmp_path / "feeds.yaml"
    # A Latin-1 editor's save: "é" is the one byte 0xE9.
    bad.write_bytes("feeds:\n  - url: https://x.example/feed\n    name: Café\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["--config", str(bad), "check"])
    assert result.exit_code == 2
    assert f"{bad}:3:14: not UTF-8: byte 0xe9 cannot be decoded" in result.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for command in ("check", "fetch", "digest", "preview", "status", "items", "send", "run"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output, command


def test_readme_command_table_names_every_option_of_every_command():
    import re

    import click

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in readme.splitlines():
        found = re.match(r"\| `aggregator ([a-z]+(?: [a-z]+)?)[^`]*` \|", line)
        if found:
            rows[found.group(1)] = rows.get(found.group(1), "") + line

    def commands(group: click.Group, prefix: str = ""):
        for name, command in group.commands.items():
            full = f"{prefix} {name}".strip()
            if isinstance(command, click.Group):
                yield from commands(command, full)
            else:
                yield full, command

    missing = {
        name: [o for p in command.params for o in p.opts if o.startswith("--") and o not in row]
        for name, command in commands(cli)
        if (row := rows.get(name, ""))
    }
    assert {name: opts for name, opts in missing.items() if opts} == {}
    assert set(rows) == {name for name, _ in commands(cli)}  # every command has its row


def test_send_prunes_old_sent_messages_and_previews_once_a_day(site):
    from aggregator import outbox

    site.run("fetch")
    site.run("digest")
    box = site.dir / "outbox"
    for path in sorted((box / "pending").glob("*.eml")):
        outbox.mark_sent(box, path.name)  # as delivery would
    written = site.clock.now().timestamp()  # the files' age is told by the injected clock
    for path in [*(box / "sent").iterdir(), *(box / "previews").iterdir()]:
        os.utime(path, (written, written))
    kept = sorted(p.name for p in (box / "sent").iterdir())
    assert len(kept) == 2 and list((box / "previews").iterdir())
    site.clock.advance(timedelta(days=60))
    site.run("send")  # 60 days: within keep_sent (90d); this prune is the day's
    assert sorted(p.name for p in (box / "sent").iterdir()) == kept
    site.clock.advance(timedelta(days=31))
    site.run("send")  # 91 days: the messages and the preview are only records now: gone
    assert not list((box / "sent").iterdir()) and not list((box / "previews").iterdir())
    # Once a day: an old file that turns up later the same day waits for tomorrow's prune.
    late = box / "sent" / "late.eml"
    late.write_bytes(b"Subject: x\r\n\r\nx\r\n")
    os.utime(late, (written, written))
    site.clock.advance(timedelta(hours=12))
    site.run("send")
    assert late.exists()
    site.clock.advance(timedelta(hours=12))
    site.run("send")
    assert not late.exists()
    # What the store records stays: the edition is still built, so not built again.
    site.clock.set(datetime.fromtimestamp(written, UTC))
    assert "already built" in site.run("digest").output


def test_python_dash_m_aggregator_is_the_same_cli():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "aggregator", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage:" in out and "status" in out and "fetch" in out
