"""`aggregator serve` over real HTTP on 127.0.0.1: one-click unsubscribe (RFC 8058), the page a
GET shows, refused tokens, editor pages (one in headless Chromium) and /healthz."""

from __future__ import annotations

import base64
import dataclasses
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from aggregator import pipeline, tokens, web
from aggregator.records import PollOutcome
from aggregator.store import PollRecord
from tests.browser import CHROMIUM, FLAGS
from tests.digests import DigestSite

BASE = "https://brief.example.org"
TWO = "  - email: ann@example.org\n  - email: Bob@Example.org\n    topics: [world]\n"


@contextmanager
def serving(app) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free port of 127.0.0.1; its base URL."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only then (else Nagle
    # and delayed ACKs make every request take ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        assert not thread.is_alive()


@pytest.fixture
def site(tmp_path) -> Iterator[DigestSite]:
    s = DigestSite.make(tmp_path, TWO, base_url=BASE)
    yield s
    s.close()


@pytest.fixture
def server(site) -> Iterator[tuple[DigestSite, httpx.Client]]:
    app = web.create_app(site.config, site.store, site.clock)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield site, client


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/u/")
    return url.removeprefix(BASE)


def token_url(site: DigestSite, email: str) -> str:
    url = pipeline.unsubscribe_url(site.config, site.config.digests[0], email)
    assert url is not None
    return url


def one_click(client: httpx.Client, path: str) -> httpx.Response:
    """What a mail provider sends (RFC 8058 section 3.1), as multipart/form-data."""
    return client.post(path, files={"List-Unsubscribe": (None, "One-Click")})


def test_one_click_post_unsubscribes_and_the_next_edition_skips_them(server):
    site, client = server
    site.add_story("world", "First story")
    site.build()
    first = site.messages()
    assert set(first) == {"ann@example.org", "Bob@Example.org"}
    raw = first["Bob@Example.org"].path.read_bytes()

    # Header round trip: the URL in the built .eml bytes is the one the app accepts.
    header = re.search(rb"^List-Unsubscribe: (.*(?:\r\n[ \t].*)*)\r\n", raw, re.MULTILINE)
    assert header is not None
    urls = re.findall(rb"<([^>]+)>", header.group(1))
    assert urls[0].startswith(b"mailto:")
    url = urls[1].decode("ascii")
    assert url == token_url(site, "Bob@Example.org")
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert max(len(line) for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998
    assert url in first["Bob@Example.org"].html  # the footer's visible link too

    response = one_click(client, path_of(url))
    assert response.status_code == 200
    assert "Unsubscribed" in response.text
    assert "Bob@Example.org" not in response.text  # the address is shown masked
    assert site.store.unsubscribed("daily") == {"bob@example.org"}
    again = one_click(client, path_of(url))  # a second click is harmless
    assert again.status_code == 200
    assert [u.via for u in site.store.unsubscribes()] == ["one-click"]

    site.clock.advance(timedelta(days=1))
    site.add_story("world", "Second story", at=site.clock.now() - timedelta(hours=1))
    reports = site.build()
    assert {r.recipient for r in reports} == {"ann@example.org"}
    assert pipeline.memberships(site.config, site.store)[1].left_at is not None


def test_urlencoded_one_click_works_too(server):
    site, client = server
    response = client.post(
        path_of(token_url(site, "ann@example.org")),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert site.store.unsubscribed("daily") == {"ann@example.org"}


def test_get_shows_a_button_and_never_unsubscribes(server):
    site, client = server
    path = path_of(token_url(site, "ann@example.org"))
    for _ in range(3):  # a scanner following the link, more than once
        page = client.get(path)
        assert page.status_code == 200
        assert '<form method="post"' in page.text
        assert "Stop sending Morning Brief to a•••@example.org?" in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
    assert client.head(path).status_code in (200, 405)
    assert site.store.unsubscribed("daily") == set()
    # the page's button: a form POST with the same body, recorded as the web page's
    button = client.post(path, data={"List-Unsubscribe": "One-Click", "from": "page"})
    assert button.status_code == 200
    assert [u.via for u in site.store.unsubscribes()] == ["web"]
    assert "no longer gets Morning Brief (since" in client.get(path).text
    assert "daily" not in button.text  # the digest as readers know it, not its key
    assert "will get no more of Morning Brief." in button.text


def test_post_without_the_one_click_body_changes_nothing(server):
    site, client = server
    path = path_of(token_url(site, "ann@example.org"))
    assert client.post(path).status_code == 400
    assert client.post(path, data={"List-Unsubscribe": "yes"}).status_code == 400
    assert site.store.unsubscribed("daily") == set()


def test_tampered_truncated_and_other_subscribers_tokens_are_refused(server):
    site, client = server
    ann = token_url(site, "ann@example.org").rsplit("/", 1)[1]
    bob = token_url(site, "Bob@Example.org").rsplit("/", 1)[1]
    raw_ann = base64.urlsafe_b64decode(ann)
    raw_bob = base64.urlsafe_b64decode(bob)
    swapped = base64.urlsafe_b64encode(raw_bob[:8] + raw_ann[8:]).decode()  # Bob's id, Ann's MAC
    flipped = ann[:-2] + ("A" if ann[-2] != "A" else "B") + ann[-1]
    stranger = tokens.make_token(tokens.signing_keys(site.dir, {})[0], "daily", "ann@example.org")
    unknown = tokens.make_token(b"x" * 32, "daily", "nobody@example.org")
    cases = {
        flipped: 403,  # tampered signature
        swapped: 403,  # another subscriber's id under this one's signature
        stranger: 403,  # signed with another key (expired by rotation, or forged)
        ann[:20]: 400,  # truncated
        ann + "A": 400,  # too long
        "!" * 32: 400,  # not base64url
        unknown: 404,  # no such subscription
    }
    for token, status in cases.items():
        for method in ("GET", "POST"):
            body = {"List-Unsubscribe": (None, "One-Click")} if method == "POST" else None
            r = client.request(method, f"/u/{token}", files=body)
            assert r.status_code == status, (token, method, r.text)
    assert site.store.unsubscribes() == []


def test_previous_key_still_accepted_after_rotation(server, monkeypatch):
    site, client = server
    url = token_url(site, "ann@example.org")
    old = tokens.signing_keys(site.dir, None)[0].decode()
    monkeypatch.setenv("AGGREGATOR_SECRET", "n" * 40)
    assert client.get(path_of(url)).status_code == 403
    monkeypatch.setenv("AGGREGATOR_SECRET_PREVIOUS", old)
    assert one_click(client, path_of(url)).status_code == 200


def test_healthz_reports_the_store_and_the_latest_poll(server):
    site, client = server
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["problem"] == "no poll recorded yet"
    feed = site.feed_ids["https://alpha.example/feed"]
    record = PollRecord(PollOutcome.NOT_MODIFIED, 304, None, 3, site.clock.now())
    site.store.record_poll(feed, site.clock.now() - timedelta(minutes=5), None, record)
    r = client.get("/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["last_poll_age_seconds"] == 300
    site.clock.advance(timedelta(hours=2))
    r = client.get("/healthz")
    assert r.status_code == 503 and "too old" in r.json()["problem"]


def test_editor_pages_show_status_explain_and_escape_everything(server):
    site, client = server
    site.add_story("world", "<script>alert(1)</script> & friends")
    index = client.get("/editor/")
    assert index.status_code == 200
    assert "/editor/preview/daily?topics=world" in index.text
    status = client.get("/editor/status")
    assert status.status_code == 200 and "Alpha Daily" in status.text
    assert re.search(r"<p>\d+ feeds?: ", status.text)  # the same summary line as `status`
    # the items column is the feed's stored count (a dict's .items method once showed there)
    assert "built-in method" not in status.text
    assert re.search(r"<td>1</td><td>1</td>", status.text)  # 1 item stored, 1 in 7 days
    item = site.store.items()[0]
    explained = client.get(f"/editor/explain?item={item.id}")
    assert explained.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in explained.text
    assert "<script>alert" not in explained.text
    assert client.get("/editor/explain?item=999999").status_code == 404
    assert client.get("/editor/explain?item=x").status_code == 400
    assert client.get("/editor/preview/nope").status_code == 404


def test_editor_pages_refuse_proxied_requests_and_ask_for_the_password(site, monkeypatch):
    app = web.create_app(site.config, site.store, site.clock)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/editor/").status_code == 200
        assert client.get("/editor/", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        assert client.get("/healthz", headers=proxied).status_code in (200, 503)
    app = web.create_app(
        site.config, site.store, site.clock, environ={web.EDITOR_PASSWORD_ENV: "hunter2-long"}
    )
    with serving(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/editor/status").status_code == 401
        assert client.get("/editor/status", auth=("ed", "wrong")).status_code == 401
        assert client.get("/editor/status", auth=("ed", "hunter2-long")).status_code == 200


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_preview_page_renders_in_headless_chromium(server, tmp_path):
    site, client = server
    site.add_story("world", "Summit agrees on prisoner exchange")
    site.add_story("business", "Markets rally as inflation eases")
    index = client.get("/editor/")
    assert "/editor/preview/daily?topics=world" in index.text
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            f"{client.base_url}/editor/preview/daily?topics=world",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    dom = result.stdout
    assert "Summit agrees on prisoner exchange" in dom, result.stderr[-2000:]
    assert "Markets rally" not in dom  # a world-only reader's edition
    assert "Unsubscribe" in dom
    # a preview records nothing: the real edition still holds both stories
    site.build()
    assert "Markets rally" in site.messages()["ann@example.org"].html


def test_cli_unsubscribe_and_subscribers(site):
    from click.testing import CliRunner

    from aggregator.cli import cli

    runner = CliRunner()
    path = str(site.dir / "feeds.yaml")
    out = runner.invoke(cli, ["--config", path, "unsubscribe", "BOB@example.org"])
    assert out.exit_code == 0, out.output
    assert "unsubscribed from daily" in out.output
    out = runner.invoke(cli, ["--config", path, "unsubscribe", "bob@example.org"])
    assert "had already left daily" in out.output
    assert runner.invoke(cli, ["--config", path, "unsubscribe", "x@y.org"]).exit_code == 2
    out = runner.invoke(cli, ["--config", path, "subscribers"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any("ann@example.org" in line and "subscribed" in line for line in lines)
    assert any("Bob@Example.org" in line and "(editor)" in line for line in lines)
    out = runner.invoke(cli, ["--config", path, "unsubscribe", "bob@example.org", "--undo"])
    assert "back on daily" in out.output
    assert site.store.unsubscribed("daily") == set()


@pytest.mark.parametrize(
    ("listen", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("0.0.0.0:0", True),
        ("localhost", False),
        ("::1:8080", False),
        ("127.0.0.1:99999", False),
        (":8080", False),
    ],
)
def test_listen_setting_is_validated(tmp_path, listen, ok):
    from aggregator.config import load_config
    from aggregator.errors import ConfigError

    path = tmp_path / "feeds.yaml"
    from tests.digests import config_text

    text = config_text("  - email: a@example.org\n")
    text = text.replace("settings:\n", f'settings:\n  listen: "{listen}"\n', 1)
    path.write_text(text, encoding="utf-8")
    if ok:
        assert load_config(path).settings.listen == listen
    else:
        with pytest.raises(ConfigError, match=r"settings\.listen"):
            load_config(path)


def test_a_subscriber_removed_from_feeds_yaml_gets_404_and_a_new_one_works(site):
    from aggregator.config import load_config

    path = site.dir / "feeds.yaml"
    configs = [site.config]
    app = web.create_app(lambda: configs[-1], site.store, site.clock)
    ann = path_of(token_url(site, "ann@example.org"))
    with serving(app) as url, httpx.Client(base_url=url) as client:
        assert client.get(ann).status_code == 200
        path.write_text(
            path.read_text(encoding="utf-8").replace("ann@example.org", "cy@example.org"),
            encoding="utf-8",
        )
        configs.append(load_config(path))
        assert client.get(ann).status_code == 404
        cy = pipeline.unsubscribe_url(configs[-1], configs[-1].digests[0], "cy@example.org")
        assert one_click(client, path_of(cy)).status_code == 200
    assert site.store.unsubscribed("daily") == {"cy@example.org"}


def test_the_status_page_gives_times_in_the_configured_timezone(site):
    settings = dataclasses.replace(site.config.settings, timezone="Europe/Berlin")
    config = dataclasses.replace(site.config, settings=settings)
    feed = site.feed_ids["https://alpha.example/feed"]
    polled = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    record = PollRecord(PollOutcome.NOT_MODIFIED, 304, None, 3, polled + timedelta(minutes=30))
    site.store.record_poll(feed, polled, None, record)
    app = web.create_app(config, site.store, site.clock)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/editor/status").text
    assert "Times in Europe/Berlin (settings.timezone)." in page
    # 06:00 and 06:30 UTC are 07:00 and 07:30 in Berlin, as `status` prints them
    assert "<td>2026-11-24 07:00</td>" in page
    assert "<td>2026-11-24 07:30</td>" in page
