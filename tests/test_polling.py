"""Polling end to end: a scripted server on 127.0.0.1, poll_feeds into a real SQLite store,
then what `aggregator status --json` says. Time comes from the frozen clock."""

from __future__ import annotations

import email
import email.policy
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from aggregator import pipeline
from aggregator.cli import cli
from aggregator.config import load_config
from aggregator.records import PollOutcome
from aggregator.schedule import FIRST_POLL_BURST, FIRST_POLL_WINDOW, JITTER
from aggregator.store import items, polls

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Desk {n}</title><link>https://site{n}.example/</link>
<item><title>First story {n}</title><link>https://site{n}.example/a</link><guid>a{n}</guid>
<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate>
<description>Something happened on Tuesday, officials said.</description></item>
<item><title>Second story {n}</title><link>https://site{n}.example/b</link><guid>b{n}</guid>
<pubDate>Tue, 24 Nov 2026 04:00:00 GMT</pubDate>
<description>Something else happened on Monday, officials said.</description></item>
</channel></rss>
"""
HTML_PAGE = """<!doctype html><html><head><title>Site</title>
<link rel="alternate" type="application/rss+xml" href="/news/rss.xml">
<link rel="alternate" type="application/atom+xml" href="https://other.example/atom">
</head><body><p>Hello</p></body></html>"""


def rss(n: int = 1) -> str:
    return RSS.format(n=n)


@pytest.fixture
def poll_env(feed_server, tmp_path, clock):
    """Write a feeds.yaml for the given paths, poll, and read status, all in tmp_path."""

    def write(paths, **settings):
        lines = ["settings:", "  data_dir: data", "  outbox: outbox"]
        lines += [f"  {key}: {value}" for key, value in settings.items()]
        lines += ["feeds:"]
        for path in paths:
            url = path if "://" in path else feed_server.url(path)
            lines += [f"  - url: {url}", f"    name: {path.strip('/')}"]
        config = tmp_path / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def poll(config, *, due_only=False, **kwargs):
        cfg = load_config(config)
        store = pipeline.open_store(cfg)
        try:
            return pipeline.poll_feeds(cfg, store, clock, due_only=due_only, **kwargs)
        finally:
            store.close()

    def status(config):
        result = CliRunner().invoke(
            cli, ["--config", str(config), "status", "--json"], obj=SimpleNamespace(clock=clock)
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return {f["name"]: f for f in json.loads(result.output)["feeds"]}

    def poll_count(config):
        cfg = load_config(config)
        store = pipeline.open_store(cfg)
        try:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar()
        finally:
            store.close()

    return SimpleNamespace(
        server=feed_server,
        clock=clock,
        write=write,
        poll=poll,
        status=status,
        poll_count=poll_count,
        dir=tmp_path,
    )


def test_200_with_validators_then_304(poll_env):
    poll_env.server.route("/f", rss(), etag='"v1"', last_modified="Mon, 23 Nov 2026 10:00:00 GMT")
    config = poll_env.write(["/f"])
    [first] = poll_env.poll(config)
    assert (first.outcome, first.new) == (PollOutcome.UPDATED, 2)
    poll_env.clock.advance(timedelta(minutes=40))
    [second] = poll_env.poll(config)
    assert (second.outcome, second.status, second.new) == (PollOutcome.NOT_MODIFIED, 304, 0)
    sent = poll_env.server.requests_to("/f")[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 23 Nov 2026 10:00:00 GMT"
    f = poll_env.status(config)["f"]
    assert f["last_outcome"] == "not_modified"
    assert f["last_status"] == 304
    assert f["last_success"] == poll_env.clock.now().isoformat()
    assert (f["items_stored"], f["items_7d"], f["error_streak"], f["flags"]) == (2, 2, 0, [])
    assert poll_env.poll_count(config) == 2  # every attempt recorded


def test_same_body_without_validators_is_not_parsed_again(poll_env):
    poll_env.server.route("/f", rss())
    config = poll_env.write(["/f"])
    poll_env.poll(config)
    poll_env.clock.advance(timedelta(hours=1))
    [again] = poll_env.poll(config)
    assert (again.outcome, again.status, again.new) == (PollOutcome.NOT_MODIFIED, 200, 0)
    f = poll_env.status(config)["f"]
    assert (f["last_outcome"], f["items_stored"]) == ("not_modified", 2)


def test_permanent_redirect_chain_is_shown_as_moved_to(poll_env):
    poll_env.server.redirect("/old", "/older", status=301)
    poll_env.server.redirect("/older", "/new", status=308)
    poll_env.server.route("/new", rss())
    config = poll_env.write(["/old"])
    [report] = poll_env.poll(config)
    assert report.outcome is PollOutcome.UPDATED
    f = poll_env.status(config)["old"]
    assert f["moved_to"] == poll_env.server.url("/new")
    assert f["items_stored"] == 2
    assert f["url"] == poll_env.server.url("/old")  # the editor's file is not rewritten
    assert poll_env.server.url("/old") in config.read_text(encoding="utf-8")


def test_temporary_redirect_chain_moves_nothing(poll_env):
    poll_env.server.redirect("/tmp1", "/tmp2", status=302)
    poll_env.server.redirect("/tmp2", "/feed", status=302)
    poll_env.server.route("/feed", rss())
    config = poll_env.write(["/tmp1"])
    poll_env.poll(config)
    f = poll_env.status(config)["tmp1"]
    assert (f["moved_to"], f["last_outcome"], f["items_stored"]) == (None, "updated", 2)


def test_redirect_loop_is_a_failing_feed_with_backoff(poll_env):
    poll_env.server.redirect("/a", "/b", status=302)
    poll_env.server.redirect("/b", "/a", status=302)
    config = poll_env.write(["/a"], poll_interval="30m")
    dues = []
    for _ in range(3):
        [report] = poll_env.poll(config)
        dues.append(report.next_due_at - poll_env.clock.now())
        poll_env.clock.advance(timedelta(minutes=1))
    assert dues[1] > dues[0] * 1.5 and dues[2] > dues[1] * 1.5  # exponential backoff
    f = poll_env.status(config)["a"]
    assert "redirect loop" in f["last_error"]
    assert (f["last_outcome"], f["error_streak"], f["flags"]) == ("error", 3, ["failing"])
    assert f["last_success"] is None and f["items_stored"] == 0


def test_410_gone_stops_polling_and_stays_visible(poll_env):
    poll_env.server.route("/gone", status=410)
    poll_env.server.route("/ok", rss())
    config = poll_env.write(["/gone", "/ok"])
    poll_env.poll(config)
    f = poll_env.status(config)["gone"]
    assert (f["last_outcome"], f["gone"], f["flags"], f["next_due"]) == (
        "gone",
        True,
        ["gone"],
        None,
    )
    assert f["last_error"] == "HTTP 410 Gone"
    poll_env.clock.advance(timedelta(days=30))
    reports = poll_env.poll(config, due_only=True)
    assert [r.name for r in reports] == ["ok"]
    assert len(poll_env.server.requests_to("/gone")) == 1
    # By hand, the editor can try it again; a working answer clears the flag.
    poll_env.server.route("/gone", rss(2))
    poll_env.poll(config, due_only=False)
    f = poll_env.status(config)["gone"]
    assert (f["gone"], f["flags"], f["items_stored"]) == (False, [], 2)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_sets_next_due(poll_env, status):
    poll_env.server.route("/busy", status=status, headers={"Retry-After": "7200"})
    config = poll_env.write(["/busy"])
    [report] = poll_env.poll(config)
    assert report.outcome is PollOutcome.RATE_LIMITED
    f = poll_env.status(config)["busy"]
    assert f["next_due"] == (poll_env.clock.now() + timedelta(hours=2)).isoformat()
    assert (f["last_outcome"], f["last_status"], f["flags"]) == (
        "rate_limited",
        status,
        ["failing"],
    )


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_http_date_sets_next_due(poll_env, status):
    when = poll_env.clock.now() + timedelta(hours=5)
    poll_env.server.route(
        "/busy", status=status, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )
    config = poll_env.write(["/busy"])
    poll_env.poll(config)
    f = poll_env.status(config)["busy"]
    assert f["next_due"] == when.isoformat()
    poll_env.clock.advance(timedelta(hours=4))
    assert poll_env.poll(config, due_only=True) == []  # not before the server said
    poll_env.clock.advance(timedelta(hours=1))
    assert len(poll_env.poll(config, due_only=True)) == 1


def test_slow_drip_hits_the_deadline(poll_env):
    poll_env.server.drip("/drip")
    config = poll_env.write(["/drip"], timeout="1s")
    [report] = poll_env.poll(config)
    assert report.error == "timed out after 1 s"
    f = poll_env.status(config)["drip"]
    assert (f["last_outcome"], f["error_streak"], f["items_stored"]) == ("error", 1, 0)


def test_gzip_bomb_and_oversized_body_stop_at_the_cap(poll_env):
    poll_env.server.gzip_bomb("/bomb", size=50 * 1024 * 1024)
    poll_env.server.oversized("/big", 3 * 1024 * 1024, content_length=False)
    config = poll_env.write(["/bomb", "/big"], max_bytes="1MB")
    reports = {r.name: r for r in poll_env.poll(config)}
    # The cap as the editor writes it, and the setting that raises it.
    too_large = "body larger than 1 MB: raise max_bytes in feeds.yaml (settings.max_bytes, or"
    too_large += " the feed's own)"
    for name in ("bomb", "big"):
        assert reports[name].error == too_large
    st = poll_env.status(config)
    for name in ("bomb", "big"):
        assert st[name]["last_error"] == too_large
        assert (st[name]["items_stored"], st[name]["flags"]) == (0, ["failing"])


def test_html_page_names_the_feeds_it_advertises(poll_env):
    poll_env.server.route("/page", HTML_PAGE, headers={"Content-Type": "text/html"})
    config = poll_env.write(["/page"])
    poll_env.poll(config)
    f = poll_env.status(config)["page"]
    assert f["last_outcome"] == "error"
    assert "HTML page" in f["last_error"]
    assert poll_env.server.url("/news/rss.xml") in f["last_error"]
    assert "https://other.example/atom" in f["last_error"]


def test_broken_xml_is_an_error_and_nothing_is_stored(poll_env):
    poll_env.server.route("/broken", "<?xml version='1.0'?><rss><channel><title>x</ti")
    config = poll_env.write(["/broken"])
    [report] = poll_env.poll(config)
    assert report.outcome is PollOutcome.ERROR
    f = poll_env.status(config)["broken"]
    assert (f["last_outcome"], f["items_stored"], f["error_streak"]) == ("error", 0, 1)
    assert f["last_error"]


def test_wrong_charset_still_stores_readable_text(poll_env):
    body = rss().replace("First story 1", "Café société 1").replace('encoding="utf-8"', "")
    poll_env.server.route(
        "/latin",
        body.encode("iso-8859-1"),
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},  # it is not
    )
    config = poll_env.write(["/latin"])
    [report] = poll_env.poll(config)
    assert report.outcome is PollOutcome.UPDATED
    assert report.new == 2
    f = poll_env.status(config)["latin"]
    assert (f["last_outcome"], f["items_stored"]) == ("updated", 2)
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    titles = {i.title for i in store.items()}
    store.close()
    assert "Café société 1" in titles


def test_connection_reset_is_recorded(poll_env):
    poll_env.server.reset("/reset")
    config = poll_env.write(["/reset"])
    [report] = poll_env.poll(config)
    assert report.error == "connection reset"
    f = poll_env.status(config)["reset"]
    assert (f["last_outcome"], f["last_error"], f["flags"]) == (
        "error",
        "connection reset",
        ["failing"],
    )


def test_a_feed_with_nothing_new_for_long_is_stale(poll_env):
    poll_env.server.route("/quiet", rss(), etag='"q"')
    config = poll_env.write(["/quiet"], stale_after="3d")
    poll_env.poll(config)
    assert poll_env.status(config)["quiet"]["flags"] == []
    poll_env.clock.advance(timedelta(days=4))
    poll_env.poll(config)
    f = poll_env.status(config)["quiet"]
    assert (f["last_outcome"], f["flags"], f["items_7d"]) == ("not_modified", ["stale"], 2)
    assert f["last_new_item"] == (poll_env.clock.now() - timedelta(days=4)).isoformat()


def test_status_table_shows_flags_moves_and_errors(poll_env):
    poll_env.server.route("/gone", status=410)
    poll_env.server.redirect("/old", "/new", status=301)
    poll_env.server.route("/new", rss())
    config = poll_env.write(["/gone", "/old"])
    poll_env.poll(config)
    out = (
        CliRunner()
        .invoke(cli, ["--config", str(config), "status"], obj=SimpleNamespace(clock=poll_env.clock))
        .output
    )
    gone_line = next(line for line in out.splitlines() if line.startswith("gone"))
    assert "gone; HTTP 410 Gone" in gone_line
    old_line = next(line for line in out.splitlines() if line.startswith("old"))
    assert f"moved to {poll_env.server.url('/new')}" in old_line


# -- schedule in the store -------------------------------------------------------------------


def test_a_restart_polls_only_what_is_due(poll_env):
    for n in range(3):
        poll_env.server.route(f"/f{n}", rss(n), etag=f'"{n}"')
    config = poll_env.write(["/f0", "/f1", "/f2"], poll_interval="30m")
    assert len(poll_env.poll(config, due_only=True)) == 3  # new feeds: due at once
    poll_env.clock.advance(timedelta(minutes=10))
    assert poll_env.poll(config, due_only=True) == []  # nothing due yet: nothing polled
    poll_env.clock.advance(timedelta(minutes=30) * (1 + JITTER))
    assert len(poll_env.poll(config, due_only=True)) == 3


def test_many_new_feeds_get_their_first_polls_spread(poll_env):
    n = FIRST_POLL_BURST + 30
    paths = [f"/s{i}" for i in range(n)]
    for path in paths:
        poll_env.server.route(path, rss(), etag='"x"')
    config = poll_env.write(paths, poll_interval="1h")
    first = poll_env.poll(config, due_only=True, parse_workers=1)
    assert len(first) < n / 3  # only the share whose first due time is now
    poll_env.clock.advance(FIRST_POLL_WINDOW)
    rest = poll_env.poll(config, due_only=True, parse_workers=1)
    assert len(first) + len(rest) == n
    st = poll_env.status(config)
    assert all(f["last_outcome"] == "updated" for f in st.values())


def test_next_poll_at_is_the_earliest_due_feed(poll_env):
    poll_env.server.route("/a", rss(), etag='"a"')
    poll_env.server.route("/b", status=410)
    config = poll_env.write(["/a", "/b"], poll_interval="30m")
    reports = {r.name: r for r in poll_env.poll(config)}
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    try:
        assert pipeline.next_poll_at(cfg, store) == reports["a"].next_due_at
    finally:
        store.close()


# -- many feeds ------------------------------------------------------------------------------


def test_parse_pool_stores_the_same_as_in_process(poll_env, tmp_path):
    paths = [f"/p{i}" for i in range(pipeline.POOL_MIN_FEEDS + 2)]
    for i, path in enumerate(paths):
        poll_env.server.route(path, rss(i))
    config = poll_env.write(paths)
    reports = poll_env.poll(config, parse_workers=2)
    assert sum(r.new for r in reports) == 2 * len(paths)
    st = poll_env.status(config)
    assert all(f["items_stored"] == 2 for f in st.values())
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    titles = sorted(i.title for i in store.items())
    store.close()
    assert titles == sorted(
        f"{k} story {i}" for i in range(len(paths)) for k in ("First", "Second")
    )


def test_results_are_written_in_batches_with_every_attempt_recorded(poll_env, monkeypatch):
    monkeypatch.setattr(pipeline, "FLUSH_FEEDS", 3)
    paths = [f"/b{i}" for i in range(7)]
    for i, path in enumerate(paths):
        poll_env.server.route(path, rss(i))
    config = poll_env.write(paths)
    seen = []
    reports = poll_env.poll(config, parse_workers=1, on_report=seen.append)
    assert len(reports) == len(seen) == 7
    assert poll_env.poll_count(config) == 7
    assert sum(f["items_stored"] for f in poll_env.status(config).values()) == 14


def test_a_feed_that_hangs_does_not_hold_back_what_the_others_brought(poll_env, monkeypatch):
    """A write waits FLUSH_AFTER_SECONDS at most, not for the whole poll: the fast feed's items
    are stored (and reported) while the slow one is still being fetched."""
    import threading

    from tests.feedserver import _respond

    monkeypatch.setattr(pipeline, "FLUSH_AFTER_SECONDS", 0.05)
    release = threading.Event()

    def hang(request, h):
        release.wait(30)
        _respond(h, 200, rss(2).encode(), {"Content-Type": "application/rss+xml"})

    poll_env.server.route("/fast", rss(1))
    poll_env.server.route("/slow", handler=hang)
    config = poll_env.write(["/fast", "/slow"])
    fast_written = threading.Event()

    def on_report(report):
        if report.name == "fast":
            fast_written.set()

    poller = threading.Thread(target=poll_env.poll, args=(config,), kwargs={"on_report": on_report})
    poller.start()
    try:
        assert fast_written.wait(10), "the fast feed's result waited for the slow one"
        stored = poll_env.status(config)
        assert stored["fast"]["items_stored"] == 2 and stored["slow"]["last_outcome"] is None
    finally:
        release.set()
        poller.join(30)
    assert poll_env.status(config)["slow"]["items_stored"] == 2


def test_a_feed_that_stores_nothing_says_why_in_status(poll_env):
    empty = '<?xml version="1.0"?><rss version="2.0"><channel><title>E</title></channel></rss>'
    bare = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>'
        '<item><description> </description></item><item><guid isPermaLink="false">x</guid></item>'
        "<item><title>Kept</title><link>https://b.example/k</link></item></channel></rss>"
    )
    poll_env.server.route("/empty", empty)
    poll_env.server.route("/bare", bare)
    poll_env.server.route("/good", rss(1))
    config = poll_env.write(["/empty", "/bare", "/good"])
    reports = {r.name: r for r in poll_env.poll(config)}
    assert reports["empty"].note == "the feed lists no entries"
    assert reports["bare"].note == "2 of 3 entries have no title, http(s) link or text: not stored"
    assert reports["good"].note is None
    status = poll_env.status(config)
    assert status["empty"]["last_note"] == "the feed lists no entries"
    assert status["bare"]["items_stored"] == 1 and status["bare"]["last_note"].startswith("2 of 3")
    table = (
        CliRunner()
        .invoke(cli, ["--config", str(config), "status"], obj=SimpleNamespace(clock=poll_env.clock))
        .output
    )
    assert "the feed lists no entries" in table
    # the note is of the last fetched body: a feed that lists entries again loses it
    poll_env.server.route("/empty", rss(2))
    poll_env.clock.advance(timedelta(hours=2))
    poll_env.poll(config)
    assert poll_env.status(config)["empty"]["last_note"] is None


def test_of_a_feed_listing_more_than_max_entries_only_the_newest_are_stored(poll_env):
    # Oldest first, as some feeds list them; the undated one ranks after every dated one.
    dated = "".join(
        f"<item><title>Story {i}</title><link>https://long.example/{i}</link>"
        f"<pubDate>Tue, 24 Nov 2026 0{i}:00:00 GMT</pubDate></item>"
        for i in range(6)
    )
    undated = "<item><title>Undated</title><link>https://long.example/u</link></item>"
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>'
        f"{undated}{dated}</channel></rss>"
    )
    poll_env.server.route("/long", body)
    config = poll_env.write(["/long"], max_entries=3)
    [report] = poll_env.poll(config)
    assert report.new == 3
    assert report.note == (
        "the feed lists 7 entries: only the newest 3 are read (settings.max_entries)"
    )
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    try:
        assert sorted(i.title for i in store.items()) == ["Story 3", "Story 4", "Story 5"]
    finally:
        store.close()
    assert poll_env.status(config)["long"]["last_note"].startswith("the feed lists 7 entries")


# -- private addresses -----------------------------------------------------------------------


def test_private_addresses_are_refused_when_the_setting_is_on(poll_env):
    poll_env.server.route("/f", rss())
    by_name = f"http://localhost:{poll_env.server.port}/f"
    config = poll_env.write(["/f", by_name], block_private_addresses="true")
    reports = {r.url: r for r in poll_env.poll(config)}
    literal = reports[poll_env.server.url("/f")]
    assert literal.outcome is PollOutcome.ERROR
    assert literal.error.startswith("refused: 127.0.0.1 is a private or reserved address")
    named = reports[by_name]
    assert named.error.startswith("refused: localhost (")  # checked on what DNS answered
    assert poll_env.server.requests == []  # nothing was sent
    st = poll_env.status(config)
    assert st["f"]["flags"] == ["failing"] and st["f"]["items_stored"] == 0


def test_private_addresses_are_allowed_when_the_setting_is_off(poll_env):
    poll_env.server.route("/f", rss())
    config = poll_env.write(["/f"], block_private_addresses="false")
    [report] = poll_env.poll(config)
    assert report.outcome is PollOutcome.UPDATED


def test_redirect_hops_are_checked_too(poll_env, monkeypatch):
    """The guard runs on every hop: allow the first address, refuse the redirect target."""
    from aggregator import fetch

    poll_env.server.redirect("/hop", "http://127.0.0.2:1/feed", status=301)
    real = fetch.is_blocked_address
    monkeypatch.setattr(fetch, "is_blocked_address", lambda a: a != "127.0.0.1" and real(a))
    config = poll_env.write(["/hop"], block_private_addresses="true")
    [report] = poll_env.poll(config)
    assert report.error.startswith("refused: 127.0.0.2 is a private or reserved address")
    assert len(poll_env.server.requests_to("/hop")) == 1


# -- discover --------------------------------------------------------------------------------


def run_cli(config, clock, *args):
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
    )


def test_discover_lists_the_feeds_a_page_advertises(poll_env):
    poll_env.server.route("/page", HTML_PAGE, headers={"Content-Type": "text/html"})
    config = poll_env.write([])
    result = run_cli(config, poll_env.clock, "discover", poll_env.server.url("/page"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        poll_env.server.url("/news/rss.xml"),
        "https://other.example/atom",
    ]
    sent = poll_env.server.requests_to("/page")[0].headers
    assert sent["user-agent"].startswith("aggregator/")


def test_discover_says_when_the_url_is_a_feed_or_names_none(poll_env):
    poll_env.server.route("/feed", rss())
    poll_env.server.route("/plain", "<html><head></head><body>hi</body></html>")
    config = poll_env.write([])
    feed = run_cli(config, poll_env.clock, "discover", "--json", poll_env.server.url("/feed"))
    assert feed.exit_code == 0
    assert json.loads(feed.output)["is_feed"] is True
    assert json.loads(feed.output)["title"] == "Desk 1"
    none = run_cli(config, poll_env.clock, "discover", poll_env.server.url("/plain"))
    assert none.exit_code == 1
    assert "advertises no feeds" in none.output


def test_discover_lists_json_feeds_and_knows_one_when_given_it(poll_env):
    page = """<html><head><link rel="alternate" type="application/feed+json" href="/feed.json">
    <link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/7"></head></html>"""
    poll_env.server.route("/page", page, headers={"Content-Type": "text/html"})
    feed = '{"version": "https://jsonfeed.org/version/1.1", "title": "Gazette", "items": []}'
    poll_env.server.route("/feed.json", feed, headers={"Content-Type": "application/feed+json"})
    config = poll_env.write([])
    found = run_cli(config, poll_env.clock, "discover", poll_env.server.url("/page"))
    assert found.output.splitlines() == [poll_env.server.url("/feed.json")]
    itself = run_cli(config, poll_env.clock, "discover", poll_env.server.url("/feed.json"))
    assert itself.exit_code == 0
    assert itself.output == f"{poll_env.server.url('/feed.json')} is a feed: Gazette\n"


def test_discover_honours_the_private_address_guard(poll_env):
    poll_env.server.route("/page", HTML_PAGE, headers={"Content-Type": "text/html"})
    config = poll_env.write([], block_private_addresses="true")
    result = run_cli(config, poll_env.clock, "discover", poll_env.server.url("/page"))
    assert result.exit_code == 1
    assert "refused" in result.output
    assert poll_env.server.requests == []


def test_status_of_a_feed_never_polled(poll_env):
    config = poll_env.write(["/never"])
    f = poll_env.status(config)["never"]
    assert (f["last_poll"], f["last_outcome"], f["items_stored"], f["flags"]) == (
        None,
        None,
        0,
        [],
    )


def test_user_agent_is_configurable(poll_env):
    poll_env.server.route("/f", rss())
    config = poll_env.write(["/f"], user_agent='"brief-bot/2 (+https://brief.example/bot)"')
    poll_env.poll(config)
    sent = poll_env.server.requests_to("/f")[0].headers
    assert sent["user-agent"] == "brief-bot/2 (+https://brief.example/bot)"


def test_clock_is_the_injected_one(poll_env):
    poll_env.server.route("/f", rss())
    config = poll_env.write(["/f"])
    poll_env.poll(config)
    f = poll_env.status(config)["f"]
    assert f["last_poll"] == datetime(2026, 11, 24, 6, 0, tzinfo=UTC).isoformat()


def test_two_entries_with_one_link_but_their_own_guid_and_headline_are_two_items(poll_env):
    body = rss().replace("https://site1.example/b", "https://site1.example/a")
    poll_env.server.route("/dup", body)
    config = poll_env.write(["/dup"])
    [report] = poll_env.poll(config)
    assert (report.outcome, report.new) == (PollOutcome.UPDATED, 2)
    assert poll_env.status(config)["dup"]["items_stored"] == 2


def test_of_two_entries_with_one_link_the_copy_with_a_lead_is_stored(poll_env):
    link = "https://site1.example/a"
    lead = "Something happened on Tuesday, officials said."
    with_lead = f"<item><title>Dam opens</title><link>{link}</link><description>{lead}"
    without = f"<item><title>Dam opens</title><link>{link}</link><description>"
    channel = '<rss version="2.0"><channel><title>Desk</title>{}</channel></rss>'
    bodies = [
        channel.format(f"{first}</description></item>{second}</description></item>")
        for first, second in [(with_lead, without), (without, with_lead)]
    ]
    for n, body in enumerate(bodies):
        poll_env.server.route(f"/dup{n}", body)
    config = poll_env.write(["/dup0", "/dup1"])
    reports = poll_env.poll(config)
    assert [(r.new, r.updated) for r in reports] == [(1, 0), (1, 0)]

    def leads():
        store = pipeline.open_store(load_config(config))
        try:
            return [i.lead for i in store.items()]
        finally:
            store.close()

    assert leads() == [lead, lead]
    # A re-poll of the changed body (other bytes, same entries) stores the same: no update.
    for n, body in enumerate(bodies):
        poll_env.server.route(f"/dup{n}", body + " ")
    poll_env.clock.advance(timedelta(hours=2))
    again = poll_env.poll(config)
    assert [(r.new, r.updated) for r in again] == [(0, 0), (0, 0)]
    assert leads() == [lead, lead]


STATUS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example Status</title><link>https://status.example.com/</link>
{}</channel></rss>"""
INCIDENT = """<item><title>{title}</title><link>https://status.example.com/</link>
<guid isPermaLink="false">inc-{n}</guid><pubDate>{at}</pubDate>
<description>{lead}</description></item>"""
INCIDENTS = {
    1: (
        "Elevated API error rates",
        "Some API requests failed for half an hour.",
        "Tue, 24 Nov 2026 01",
    ),
    2: (
        "Delayed webhook deliveries",
        "Webhooks were delivered up to ten minutes late.",
        "Tue, 24 Nov 2026 03",
    ),
    3: (
        "Dashboard login failures",
        "Users could not sign in to the dashboard.",
        "Wed, 25 Nov 2026 05",
    ),
}


def status_page(*numbers):
    return STATUS.format(
        "".join(
            INCIDENT.format(n=n, title=title, lead=lead, at=f"{day}:00:00 GMT")
            for n in numbers
            for title, lead, day in [INCIDENTS[n]]
        )
    )


def test_each_incident_of_a_status_page_is_news_though_all_link_the_page(poll_env):
    poll_env.server.route("/status", status_page(2, 1))
    config = poll_env.write(["/status"])
    with config.open("a", encoding="utf-8") as f:
        f.write('digests:\n  daily: {schedule: "0 7 * * *"}\n')
        f.write("subscribers:\n  - email: ops@example.org\n")

    def stories():
        store = pipeline.open_store(load_config(config))
        try:
            return {i.key: i.story_id for i in store.items()}
        finally:
            store.close()

    def digest():
        result = run_cli(config, poll_env.clock, "digest")
        assert result.exit_code == 0, (result.output, result.exception)
        pending = poll_env.dir / "outbox" / "pending"
        newest = max(pending.glob("*.eml"))
        msg = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
        return result.output, msg.get_body(("html",)).get_content()

    [first] = poll_env.poll(config)
    assert (first.new, first.updated) == (2, 0)
    assert len(set(stories().values())) == 2
    out, html = digest()
    assert "ops@example.org: 2 stories" in out
    # A new incident a day later: new, a story of its own, in the next digest alone.
    poll_env.clock.advance(timedelta(days=1))
    poll_env.server.route("/status", status_page(3, 2, 1))
    [second] = poll_env.poll(config)
    assert (second.new, second.updated) == (1, 0)
    known = stories()
    assert known["inc-3"] not in {known["inc-1"], known["inc-2"]}
    out, html = digest()
    assert "ops@example.org: 1 stories" in out
    assert "Dashboard login failures" in html and "Elevated API error rates" not in html
    # Re-polls of the page (other bytes, the same incidents) change nothing.
    poll_env.server.route("/status", status_page(3, 2, 1) + " ")
    poll_env.clock.advance(timedelta(hours=2))
    [again] = poll_env.poll(config)
    assert (again.new, again.updated) == (0, 0)


def podcast(episodes):
    return STATUS.replace("Example Status", "The Show").format(
        "".join(
            f"<item><title>Episode {n}: guest {n}</title><link>https://show.example/</link>"
            f"<guid>ep-{n}</guid><description>We talk with guest {n}.</description></item>"
            for n in episodes
        )
    )


def test_every_episode_of_a_podcast_linking_the_show_page_is_stored(poll_env):
    poll_env.server.route("/show", podcast(range(40, 0, -1)))
    config = poll_env.write(["/show"])
    [first] = poll_env.poll(config)
    assert (first.new, first.updated, first.note) == (40, 0, None)
    assert poll_env.status(config)["show"]["items_stored"] == 40
    poll_env.server.route("/show", podcast(range(41, 0, -1)))
    poll_env.clock.advance(timedelta(hours=2))
    [second] = poll_env.poll(config)
    assert (second.new, second.updated) == (1, 0)
    assert poll_env.status(config)["show"]["items_stored"] == 41


def test_a_feed_that_makes_up_new_guids_on_every_poll_keeps_its_items(poll_env):
    def body(poll, lead="Something happened on Tuesday, officials said."):
        return (
            rss()
            .replace("<guid>a1", f"<guid>a1-{poll}")
            .replace("<guid>b1", f"<guid>b1-{poll}")
            .replace("Something happened on Tuesday, officials said.", lead)
        )

    poll_env.server.route("/f", body(1))
    config = poll_env.write(["/f"])
    [first] = poll_env.poll(config)
    poll_env.server.route("/f", body(2))
    poll_env.clock.advance(timedelta(hours=2))
    [second] = poll_env.poll(config)
    poll_env.server.route("/f", body(3, lead="Something happened on Tuesday, police said."))
    poll_env.clock.advance(timedelta(hours=2))
    [edited] = poll_env.poll(config)
    assert [(r.new, r.updated) for r in (first, second, edited)] == [(2, 0), (0, 0), (0, 1)]
    assert poll_env.status(config)["f"]["items_stored"] == 2


def test_one_article_listed_twice_under_two_guids_is_one_item_with_its_lead(poll_env):
    link = "https://site1.example/a"
    lead = "Something happened on Tuesday, officials said."
    copy = (
        "<item><title>{}</title><link>{}</link><guid>{}</guid><description>{}</description></item>"
    )
    body = STATUS.format(
        copy.format("Dam opens", link, "uol-1", lead) + copy.format("Dam opens", link, "uol-2", "")
    )
    poll_env.server.route("/dup", body)
    config = poll_env.write(["/dup"])
    [first] = poll_env.poll(config)
    poll_env.server.route("/dup", body + " ")
    poll_env.clock.advance(timedelta(hours=2))
    [again] = poll_env.poll(config)
    assert [(r.new, r.updated) for r in (first, again)] == [(1, 0), (0, 0)]
    store = pipeline.open_store(load_config(config))
    try:
        assert [i.lead for i in store.items()] == [lead]
    finally:
        store.close()


# -- what a poll stores ------------------------------------------------------------------------


def test_posts_at_anchors_of_one_page_are_separate_stories_with_their_own_links(poll_env):
    day = "https://linkblog.example/2026/11/24.html"
    posts = "".join(
        f"<item><description>{text}</description><link>{day}#{anchor}</link></item>"
        for anchor, text in [
            ("a0900", "Read a long piece on rates today."),
            ("a1200", "The new version of the editor shipped with tabs."),
            ("a1500", "Heavy snow closed the pass again."),
        ]
    )
    poll_env.server.route(
        "/day.rss", f'<rss version="2.0"><channel><title>LB</title>{posts}</channel></rss>'
    )
    config = poll_env.write(["/day.rss"])
    [report] = poll_env.poll(config)
    assert report.new == 3
    store = pipeline.open_store(load_config(config))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(items.c.link, items.c.story_id)).all()
    finally:
        store.close()
    assert sorted(link for link, _ in rows) == [f"{day}#a0900", f"{day}#a1200", f"{day}#a1500"]
    assert len({story for _, story in rows}) == 3


def test_items_of_an_aggregator_feed_keep_the_publisher_it_names(poll_env):
    body = (Path(__file__).parent / "data" / "items" / "google-news.xml").read_bytes()
    poll_env.server.route("/gnews", body)
    config = poll_env.write(["/gnews"])
    [report] = poll_env.poll(config)
    assert report.new == 2
    runner = CliRunner()
    obj = SimpleNamespace(clock=poll_env.clock)
    listed = runner.invoke(cli, ["--config", str(config), "items", "--json"], obj=obj)
    assert listed.exit_code == 0, listed.output
    found = {it["headline"]: it["publisher"] for it in json.loads(listed.output)["items"]}
    assert found == {
        "Central bank holds rates as inflation cools": "Reuters",
        "Storm Bert: thousands without power in Wales": "BBC",
    }
    text = runner.invoke(cli, ["--config", str(config), "items"], obj=obj).output
    assert "Reuters via gnews: Central bank holds rates" in text
    rates = next(
        it["id"] for it in json.loads(listed.output)["items"] if it["publisher"] == "Reuters"
    )
    why = runner.invoke(cli, ["--config", str(config), "explain", str(rates)], obj=obj)
    assert f"{rates} Reuters via gnews: Central bank holds rates" in why.output, why.output


def test_a_json_feed_is_polled_and_stored_like_an_rss_feed(poll_env):
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Harbour Gazette",
        "home_page_url": "https://gazette.example/",
        "authors": [{"name": "Gazette Desk"}],
        "items": [
            {
                "id": 1,
                "url": "/2026/11/ferry?utm_source=json",
                "title": "Ferry service resumes",
                "content_html": "<p>The morning ferry sailed again on Tuesday, officials said.</p>",
                "date_published": "2026-11-24T05:30:00+01:00",
                "tags": ["Transport"],
            },
            {
                "id": "fees",
                "external_url": "https://council.example/fees",
                "title": "Harbour fees rise",
                "content_text": "Fees rise by 4% in January, if a < b.\n\nMore later.",
            },
            "not an item",
        ],
    }
    body = json.dumps(feed).encode()
    poll_env.server.route("/feed.json", body, headers={"Content-Type": "application/feed+json"})
    config = poll_env.write(["/feed.json"])
    [report] = poll_env.poll(config)
    assert (report.outcome, report.new, report.error) == (PollOutcome.UPDATED, 2, None)
    assert report.note == "1 of 3 items is not a JSON object: skipped"
    store = pipeline.open_store(load_config(config))
    try:
        stored = {i.guid: i for i in store.items()}
    finally:
        store.close()
    ferry, fees = stored["1"], stored["fees"]
    assert ferry.link == poll_env.server.url("/2026/11/ferry")  # resolved, tracker gone
    assert ferry.lead == "The morning ferry sailed again on Tuesday, officials said."
    assert ferry.published_at == datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    assert (ferry.author, ferry.categories) == ("Gazette Desk", ("Transport",))
    assert fees.link == "https://council.example/fees"
    assert fees.lead == "Fees rise by 4% in January, if a < b."
    status = poll_env.status(config)["feed.json"]
    assert (status["last_outcome"], status["items_stored"]) == ("updated", 2)
    assert status["last_note"] == report.note
    # the same body again is not parsed again; an edited one updates the edited item only
    poll_env.clock.advance(timedelta(hours=2))
    assert poll_env.poll(config)[0].outcome is PollOutcome.NOT_MODIFIED
    feed["items"][1]["title"] = "Harbour fees rise by 4%"
    poll_env.server.route("/feed.json", json.dumps(feed), headers={"Content-Type": "text/plain"})
    poll_env.clock.advance(timedelta(hours=2))
    [again] = poll_env.poll(config)
    assert (again.outcome, again.new, again.updated) == (PollOutcome.UPDATED, 0, 1)


def test_json_that_is_no_feed_is_an_error_that_says_so(poll_env):
    poll_env.server.route("/api", '{"posts": []}', headers={"Content-Type": "application/json"})
    poll_env.server.route("/broken", '{"version": "https://jsonfeed.org/version/1", "items": [')
    config = poll_env.write(["/api", "/broken"])
    reports = {r.name: r for r in poll_env.poll(config)}
    assert reports["api"].outcome is PollOutcome.ERROR
    assert reports["api"].error.startswith("not a feed (JSON, but not a JSON Feed")
    assert reports["broken"].error.startswith("broken feed: invalid JSON: Expecting value")


def test_a_changed_feed_extracts_only_its_new_and_edited_entries(poll_env, monkeypatch):
    import aggregator.extract

    def feed(*items: tuple[str, str]) -> str:
        body = "".join(
            f"<item><guid>{g}</guid><title>{t}</title><link>https://s.example/{g}</link>"
            f"<description>{t}: the full story, officials said on Tuesday.</description></item>"
            for g, t in items
        )
        return f'<rss version="2.0"><channel><title>S</title>{body}</channel></rss>'

    extracted: list[str] = []
    real = aggregator.extract.extract_item

    def spy(entry, **kwargs):
        extracted.append(entry.guid.rsplit("/", 1)[-1])
        return real(entry, **kwargs)

    monkeypatch.setattr(aggregator.extract, "extract_item", spy)
    stories = [("a", "Dam opens"), ("b", "Port closes"), ("c", "Bridge shut")]
    poll_env.server.route("/s", feed(*stories))
    config = poll_env.write(["/s"])
    [first] = poll_env.poll(config, parse_workers=1)
    assert (first.new, sorted(extracted)) == (3, ["a", "b", "c"])

    extracted.clear()
    poll_env.server.route(
        "/s",
        feed(("a", "Dam opens"), ("b", "Port closes early"), ("c", "Bridge shut"), ("d", "Tunnel")),
    )
    poll_env.clock.advance(timedelta(hours=2))
    [second] = poll_env.poll(config, parse_workers=1)
    assert (second.new, second.updated, sorted(extracted)) == (1, 1, ["b", "d"])
    store = pipeline.open_store(load_config(config))
    try:
        titles = sorted(i.title for i in store.items())
    finally:
        store.close()
    assert titles == ["Bridge shut", "Dam opens", "Port closes early", "Tunnel"]

    # What extraction reads changed (the feed's name, cut from " - Name" headlines): all
    # entries are extracted again; the same content is no update.
    extracted.clear()
    config.write_text(config.read_text().replace("name: s", "name: Renamed"))
    poll_env.server.route(
        "/s",
        feed(("a", "Dam opens"), ("b", "Port closes early"), ("c", "Bridge shut"), ("d", "Tunnel"))
        + " ",
    )
    poll_env.clock.advance(timedelta(hours=2))
    [third] = poll_env.poll(config, parse_workers=1)
    assert (third.new, third.updated, sorted(extracted)) == (0, 0, ["a", "b", "c", "d"])


def test_items_stored_before_fingerprints_get_them_without_counting_as_updates(poll_env):
    poll_env.server.route("/f", rss())
    config = poll_env.write(["/f"])
    poll_env.poll(config, parse_workers=1)
    store = pipeline.open_store(load_config(config))
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.update(items).values(entry_hash=None))
        poll_env.server.route("/f", rss() + " ")  # other bytes, same entries
        poll_env.clock.advance(timedelta(hours=2))
        [report] = poll_env.poll(config, parse_workers=1)
        assert (report.new, report.updated) == (0, 0)
        with store.engine.connect() as conn:
            hashes = conn.execute(sa.select(items.c.entry_hash)).scalars().all()
        assert len(hashes) == 2 and None not in hashes
    finally:
        store.close()


def test_poll_records_older_than_keep_polls_are_pruned_once_a_day(poll_env):
    poll_env.server.route("/f", rss(), etag='"v1"')
    config = poll_env.write(["/f"], keep_polls="1h")
    poll_env.poll(config)  # 00:00: pruned (nothing yet)
    poll_env.clock.advance(timedelta(hours=2))
    poll_env.poll(config)  # 02:00: the 00:00 record is over 1 h old, but pruning waits a day
    assert poll_env.poll_count(config) == 2
    poll_env.clock.advance(timedelta(hours=23))
    poll_env.poll(config)  # 25:00: both are older than 1 h and gone; this one is kept
    assert poll_env.poll_count(config) == 1
    # The feed's state is its own row, not the history: status still knows it.
    st = poll_env.status(config)["f"]
    assert st["last_outcome"] == "not_modified" and st["error_streak"] == 0


def test_status_summary_counts_every_feed_and_problems_lists_only_troubled_ones(poll_env):
    poll_env.server.route("/fine", rss(1))
    poll_env.server.route("/gone", status=410)
    poll_env.server.route("/broken", status=500)
    poll_env.server.redirect("/old", "/new", status=301)
    poll_env.server.route("/new", rss(2))
    poll_env.server.route("/empty", '<rss version="2.0"><channel><title>E</title></channel></rss>')
    config = poll_env.write(["/fine", "/gone", "/broken", "/old", "/empty"])
    poll_env.poll(config)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text
        + f"  - url: {poll_env.server.url('/later')}\n    name: later\n"
        + f"  - url: {poll_env.server.url('/off')}\n    name: off\n    enabled: false\n",
        encoding="utf-8",
    )

    def run(*args):
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "status", *args],
            obj=SimpleNamespace(clock=poll_env.clock),
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    document = json.loads(run("--json"))
    assert document["summary"] == {
        "feeds": 7,
        "ok": 1,
        "failing": 1,
        "gone": 1,
        "stale": 0,
        "moved": 1,
        "noted": 1,
        "never_polled": 1,
        "disabled": 1,
    }
    table = run()
    assert (
        "7 feeds: 1 ok, 1 failing, 1 gone, 1 moved, 1 with a note, 1 not polled yet, 1 disabled"
        in table.splitlines()
    )
    troubled = run("--problems")
    lines = troubled.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("7 feeds: "))
    names = {line.split()[0] for line in lines[1:end]}
    assert {"gone", "broken", "old", "empty"} <= names
    assert not names & {"fine", "later", "off"}
    assert "7 feeds: 1 ok" in troubled  # the summary still counts them all
    as_json = json.loads(run("--problems", "--json"))
    assert {f["name"] for f in as_json["feeds"]} == {"gone", "broken", "old", "empty"}


def test_status_problems_says_so_when_all_is_well(poll_env):
    poll_env.server.route("/fine", rss(1))
    config = poll_env.write(["/fine"])
    poll_env.poll(config)
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "status", "--problems"],
        obj=SimpleNamespace(clock=poll_env.clock),
    )
    assert result.output.splitlines()[:2] == ["no feed needs a look", "1 feed: 1 ok"]


def test_a_failed_poll_is_a_warning_that_says_when_it_is_tried_again(poll_env, caplog):
    poll_env.server.route("/fine", rss(1))
    poll_env.server.route("/broken", status=500)
    config = poll_env.write(["/fine", "/broken"])
    with caplog.at_level(logging.INFO, logger="aggregator.pipeline"):
        reports = {r.name: r for r in poll_env.poll(config)}
    lines = {r.getMessage(): r.levelno for r in caplog.records if "feed=" in r.getMessage()}
    [(broken, level)] = [(m, lv) for m, lv in lines.items() if "/broken" in m]
    assert level == logging.WARNING
    assert "status=error http=500" in broken and "error='HTTP 500" in broken
    assert f"next={reports['broken'].next_due_at.isoformat()}" in broken
    [(fine, level)] = [(m, lv) for m, lv in lines.items() if "/fine" in m]
    assert level == logging.INFO and "next=" not in fine


def test_json_logs_give_counts_as_numbers(poll_env):
    poll_env.server.route("/f", rss(1))
    config = poll_env.write(["/f"])
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "--log-level", "info", "--log-format", "json", "fetch"],
        obj=SimpleNamespace(clock=poll_env.clock),
    )
    assert result.exit_code == 0, result.output
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [poll] = [r for r in logs if r.get("feed") == poll_env.server.url("/f")]
    assert (poll["new"], poll["updated"], poll["http"], poll["status"]) == (2, 0, 200, "updated")
    assert isinstance(poll["ms"], int)


def test_status_shows_every_time_in_the_configured_timezone(poll_env):
    poll_env.server.route("/f", rss(1))
    config = poll_env.write(["/f"], timezone="Europe/Berlin", poll_interval="30m")
    [report] = poll_env.poll(config)
    out = (
        CliRunner()
        .invoke(cli, ["--config", str(config), "status"], obj=SimpleNamespace(clock=poll_env.clock))
        .output
    )
    berlin = ZoneInfo("Europe/Berlin")
    row = next(line for line in out.splitlines() if line.startswith("f "))
    assert f"{poll_env.clock.now().astimezone(berlin):%Y-%m-%d %H:%M}" in row
    assert f"{report.next_due_at.astimezone(berlin):%Y-%m-%d %H:%M}" in row
    assert "times in Europe/Berlin (settings.timezone)" in out


def test_fetch_polls_with_the_cyclic_gc_set_for_polling(poll_env, monkeypatch):
    """Start-up objects frozen out of the collector's passes, which run less often
    (cli._collect_for_polling): the main process's GC CPU of a cold poll 1.5 -> 0.4 s.
    (conftest gives the collector back as it was.)"""
    import gc

    during_poll = []

    def poll(*args, **kwargs):
        during_poll.append((gc.get_threshold(), gc.get_freeze_count()))
        return []

    monkeypatch.setattr(pipeline, "poll_feeds", poll)
    assert gc.get_threshold()[0] < 10_000
    config = poll_env.write([])
    result = CliRunner().invoke(
        cli, ["--config", str(config), "fetch"], obj=SimpleNamespace(clock=poll_env.clock)
    )
    assert result.exit_code == 0, result.output
    [(thresholds, frozen)] = during_poll
    assert thresholds == (10_000, 20, 20)
    assert frozen > 0
