"""fetch against a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import time
import tracemalloc
import zlib
from datetime import timedelta

import brotli
import pytest

from aggregator.fetch import DEFAULT_USER_AGENT, fetch_all, fetch_many
from aggregator.records import FeedSource, PollOutcome

# What a body past the cap is told with: the size as the editor writes it, and the setting.
RAISE_IT = ": raise max_bytes in feeds.yaml (settings.max_bytes, or the feed's own)"

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>One</title><link>https://example.org/1</link></item></channel></rss>"""
LAST_MODIFIED = "Mon, 23 Nov 2026 10:00:00 GMT"


def fetch(source, clock, **kwargs):
    if isinstance(source, str):
        source = FeedSource(url=source)
    [result] = fetch_all([source], clock=clock, **kwargs)
    return result


# -- conditional GET -------------------------------------------------------------------------


def test_validators_are_stored_then_sent_back_exactly_and_304_keeps_them(feed_server, clock):
    feed_server.route("/feed", RSS, etag='W/"v1"', last_modified=LAST_MODIFIED)

    first = fetch(feed_server.url("/feed"), clock)
    assert first.outcome is PollOutcome.UPDATED
    assert first.status == 200
    assert first.body == RSS
    assert first.etag == 'W/"v1"'
    assert first.last_modified == LAST_MODIFIED
    assert first.body_hash == hashlib.sha256(RSS).hexdigest()

    source = FeedSource(
        url=feed_server.url("/feed"),
        etag=first.etag,
        last_modified=first.last_modified,
        body_hash=first.body_hash,
    )
    second = fetch(source, clock)
    assert second.outcome is PollOutcome.NOT_MODIFIED
    assert second.status == 304
    assert second.body is None
    assert (second.etag, second.last_modified) == ('W/"v1"', LAST_MODIFIED)
    assert second.body_hash == first.body_hash

    sent = feed_server.requests_to("/feed")[-1].headers
    assert sent["if-none-match"] == 'W/"v1"'
    assert sent["if-modified-since"] == LAST_MODIFIED


def test_first_fetch_sends_no_validators_but_our_user_agent(feed_server, clock):
    feed_server.route("/feed", RSS)
    fetch(feed_server.url("/feed"), clock)
    sent = feed_server.requests_to("/feed")[0].headers
    assert "if-none-match" not in sent
    assert "if-modified-since" not in sent
    assert sent["user-agent"] == DEFAULT_USER_AGENT
    assert sent["accept-encoding"] == "gzip, deflate, br"

    fetch(feed_server.url("/feed"), clock, user_agent="test-agent/1")
    assert feed_server.requests_to("/feed")[1].headers["user-agent"] == "test-agent/1"


def test_same_body_without_validators_is_not_modified_by_hash(feed_server, clock):
    feed_server.route("/feed", RSS)
    source = FeedSource(url=feed_server.url("/feed"), body_hash=hashlib.sha256(RSS).hexdigest())
    result = fetch(source, clock)
    assert result.outcome is PollOutcome.NOT_MODIFIED
    assert result.status == 200
    assert result.body is None
    assert result.body_hash == source.body_hash


def test_changed_body_is_updated(feed_server, clock):
    feed_server.route("/feed", RSS)
    result = fetch(FeedSource(url=feed_server.url("/feed"), body_hash="0" * 64), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.body == RSS


def test_response_headers_come_back_with_lower_case_names(feed_server, clock):
    feed_server.route("/feed", RSS, headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    result = fetch(feed_server.url("/feed"), clock)
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"


def test_cache_control_max_age_and_expires_become_max_age_seconds(feed_server, clock):
    feed_server.route("/cc", RSS, headers={"Cache-Control": "public, max-age=900"})
    feed_server.route(
        "/expires",
        RSS,
        headers={
            "Date": "Tue, 24 Nov 2026 06:00:00 GMT",
            "Expires": "Tue, 24 Nov 2026 07:00:00 GMT",
        },
    )
    feed_server.route("/neither", RSS)
    assert fetch(feed_server.url("/cc"), clock).max_age_seconds == 900
    # Expires counts from the server's Date, not from our clock
    assert fetch(feed_server.url("/expires"), clock).max_age_seconds == 3600
    assert fetch(feed_server.url("/neither"), clock).max_age_seconds is None


# -- redirects -------------------------------------------------------------------------------


def test_301_then_200_reports_the_permanent_redirect(feed_server, clock):
    feed_server.redirect("/old", "/feed", status=301)
    feed_server.route("/feed", RSS)
    result = fetch(feed_server.url("/old"), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.url == feed_server.url("/old")
    assert result.final_url == feed_server.url("/feed")
    assert result.permanent_redirect == feed_server.url("/feed")


def test_chain_of_301_and_308_reports_the_last_permanent_target(feed_server, clock):
    feed_server.redirect("/a", "/b", status=301)
    feed_server.redirect("/b", feed_server.url("/c"), status=308)
    feed_server.redirect("/c", "/feed", status=302)
    feed_server.route("/feed", RSS)
    result = fetch(feed_server.url("/a"), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.final_url == feed_server.url("/feed")
    assert result.permanent_redirect == feed_server.url("/c")


def test_302_chain_is_not_permanent(feed_server, clock):
    feed_server.redirect("/a", "/b", status=302)
    feed_server.redirect("/b", "/c", status=301)  # permanent, but after a temporary hop
    feed_server.redirect("/c", "/feed", status=307)
    feed_server.route("/feed", RSS)
    result = fetch(feed_server.url("/a"), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.final_url == feed_server.url("/feed")
    assert result.permanent_redirect is None


def test_permanent_redirect_to_an_error_is_not_reported(feed_server, clock):
    feed_server.redirect("/old", "/missing", status=301)
    result = fetch(feed_server.url("/old"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "HTTP 404 Not Found"
    assert result.final_url == feed_server.url("/missing")
    assert result.permanent_redirect is None


def test_validators_follow_the_redirect(feed_server, clock):
    feed_server.redirect("/old", "/feed", status=301)
    feed_server.route("/feed", RSS, etag='"v1"')
    result = fetch(FeedSource(url=feed_server.url("/old"), etag='"v1"'), clock)
    assert result.outcome is PollOutcome.NOT_MODIFIED
    assert result.permanent_redirect == feed_server.url("/feed")


def test_redirect_loop_is_an_error(feed_server, clock):
    feed_server.redirect("/a", "/b", status=302)
    feed_server.redirect("/b", "/a", status=302)
    result = fetch(feed_server.url("/a"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error is not None
    assert "redirect loop" in result.error
    assert len(feed_server.requests) == 2


def test_more_than_five_redirects_is_an_error(feed_server, clock):
    for n in range(6):
        feed_server.redirect(f"/r{n}", f"/r{n + 1}", status=301)
    feed_server.route("/r6", RSS)
    result = fetch(feed_server.url("/r0"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "more than 5 redirects"
    assert result.permanent_redirect is None
    assert len(feed_server.requests) == 6

    five = fetch(feed_server.url("/r1"), clock)
    assert five.outcome is PollOutcome.UPDATED
    assert five.permanent_redirect == feed_server.url("/r6")


def test_redirect_without_location_or_to_another_scheme_is_an_error(feed_server, clock):
    feed_server.route("/nowhere", status=302)
    feed_server.redirect("/ftp", "ftp://example.org/feed", status=301)
    assert fetch(feed_server.url("/nowhere"), clock).error == "HTTP 302 Found without a Location"
    result = fetch(feed_server.url("/ftp"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert "unsupported URL" in (result.error or "")


# -- statuses --------------------------------------------------------------------------------


def test_410_is_gone(feed_server, clock):
    feed_server.route("/feed", b"gone", status=410)
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.GONE
    assert result.status == 410
    assert result.error == "HTTP 410 Gone"


def test_429_with_seconds_gives_retry_after_from_the_clock(feed_server, clock):
    feed_server.route("/feed", status=429, headers={"Retry-After": "120"})
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.RATE_LIMITED
    assert result.status == 429
    assert result.retry_after == clock.now() + timedelta(seconds=120)
    assert result.error == "HTTP 429 Too Many Requests"


def test_503_with_http_date_gives_retry_after_in_utc(feed_server, clock):
    feed_server.route(
        "/feed", status=503, headers={"Retry-After": "Tue, 24 Nov 2026 08:30:00 +0100"}
    )
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.RATE_LIMITED
    assert result.retry_after is not None
    assert result.retry_after.isoformat() == "2026-11-24T07:30:00+00:00"


def test_rate_limited_without_or_with_garbage_retry_after(feed_server, clock):
    feed_server.route("/plain", status=503)
    feed_server.route("/garbage", status=429, headers={"Retry-After": "soon"})
    for path in ("/plain", "/garbage"):
        result = fetch(feed_server.url(path), clock)
        assert result.outcome is PollOutcome.RATE_LIMITED
        assert result.retry_after is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error"), (599, "HTTP 599")],
)
def test_other_error_statuses_are_errors_with_a_short_reason(feed_server, clock, status, reason):
    feed_server.route("/feed", b"nope", status=status)
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.status == status
    assert result.error == reason
    assert result.body is None


# -- bodies and limits -----------------------------------------------------------------------


def test_gzip_body_is_decoded(feed_server, clock):
    feed_server.route("/feed", RSS, gzip=True)
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.headers["content-encoding"] == "gzip"
    assert result.body == RSS
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("br", brotli.compress(RSS)),
        ("deflate", zlib.compress(RSS)),
        ("deflate", zlib.compress(RSS, wbits=-zlib.MAX_WBITS)),  # raw deflate, seen in the wild
        ("x-gzip", gzip.compress(RSS)),
    ],
)
def test_other_content_encodings_are_decoded(feed_server, clock, coding, encoded):
    feed_server.route("/feed", encoded, headers={"Content-Encoding": coding})
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.body == RSS


def test_corrupt_gzip_is_an_error(feed_server, clock):
    feed_server.route("/feed", b"this is not gzip", headers={"Content-Encoding": "gzip"})
    result = fetch(feed_server.url("/feed"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert (result.error or "").startswith("could not decode the gzip body")


def test_gzip_bomb_stops_at_the_cap_quickly_and_cheaply(feed_server, clock):
    feed_server.gzip_bomb("/bomb", size=50 * 1024 * 1024)
    source = FeedSource(url=feed_server.url("/bomb"), max_bytes=1024 * 1024)
    started = time.perf_counter()
    tracemalloc.start()
    try:
        result = fetch(source, clock)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "body larger than 1 MB" + RAISE_IT
    assert result.status == 200
    assert time.perf_counter() - started < 1.0
    assert peak < 8 * 1024 * 1024  # never near the 50 MB the bomb inflates to


def test_brotli_bomb_stops_at_the_cap(feed_server, clock):
    feed_server.route(
        "/bomb",
        brotli.compress(bytes(20 * 1024 * 1024), quality=1),
        headers={"Content-Encoding": "br"},
    )
    result = fetch(FeedSource(url=feed_server.url("/bomb"), max_bytes=100_000), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "body larger than 97.7 KB" + RAISE_IT


@pytest.mark.parametrize("content_length", [True, False])
def test_oversized_body_stops_at_the_cap(feed_server, clock, content_length):
    feed_server.oversized("/big", 20 * 1024 * 1024, content_length=content_length)
    started = time.perf_counter()
    result = fetch(FeedSource(url=feed_server.url("/big"), max_bytes=100_000), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "body larger than 97.7 KB" + RAISE_IT
    assert time.perf_counter() - started < 1.0


def test_body_of_exactly_the_cap_is_accepted(feed_server, clock):
    feed_server.route("/feed", RSS)
    result = fetch(FeedSource(url=feed_server.url("/feed"), max_bytes=len(RSS)), clock)
    assert result.outcome is PollOutcome.UPDATED


# -- network failures ------------------------------------------------------------------------


def test_slow_drip_hits_the_overall_deadline(feed_server, clock):
    feed_server.drip("/drip")
    started = time.perf_counter()
    result = fetch(feed_server.url("/drip"), clock, timeout=1.0)
    elapsed = time.perf_counter() - started
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "timed out after 1 s"
    assert 0.9 < elapsed < 2.0
    assert 900 <= result.elapsed_ms < 2000


def test_connection_reset_is_an_error(feed_server, clock):
    feed_server.reset("/reset")
    result = fetch(feed_server.url("/reset"), clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.status is None
    assert result.error == "connection reset"


def test_refused_port_is_an_error(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/feed", clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == "connection refused"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/feed.xml", "unsupported scheme ftp:"),
        ("javascript:alert(1)", "unsupported scheme javascript:"),
        ("example.org/feed.xml", "unsupported scheme (none)"),
    ],
)
def test_unsupported_schemes_are_refused_without_a_request(clock, url, reason):
    result = fetch(url, clock)
    assert result.outcome is PollOutcome.ERROR
    assert result.error == reason


def test_invalid_url_is_an_error(clock):
    result = fetch("http://[::1/feed", clock)
    assert result.outcome is PollOutcome.ERROR
    assert (result.error or "").startswith("invalid URL")


# -- file: URLs ------------------------------------------------------------------------------


def test_file_url_is_read_from_disk(tmp_path, clock):
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    result = fetch(path.as_uri(), clock)
    assert result.outcome is PollOutcome.UPDATED
    assert result.body == RSS
    assert result.status is None
    assert result.final_url == path.as_uri()

    again = fetch(FeedSource(url=path.as_uri(), body_hash=result.body_hash), clock)
    assert again.outcome is PollOutcome.NOT_MODIFIED
    assert again.body is None


def test_file_url_missing_or_too_large_is_an_error(tmp_path, clock):
    missing = fetch((tmp_path / "nope.xml").as_uri(), clock)
    assert missing.outcome is PollOutcome.ERROR
    assert (missing.error or "").startswith("file not found")

    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    big = fetch(FeedSource(url=path.as_uri(), max_bytes=10), clock)
    assert big.outcome is PollOutcome.ERROR
    assert big.error == "body larger than 10 bytes" + RAISE_IT


def test_file_url_is_refused_when_private_addresses_are_blocked(tmp_path, clock):
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    result = fetch(path.as_uri(), clock, block_private_addresses=True)
    assert result.outcome is PollOutcome.ERROR
    assert "file: URLs are local" in (result.error or "")


# -- many feeds ------------------------------------------------------------------------------


def test_per_host_limit_is_respected(feed_server, clock):
    for n in range(6):
        feed_server.route(f"/f{n}", RSS, delay=0.15)
    sources = [FeedSource(url=feed_server.url(f"/f{n}")) for n in range(6)]
    results = fetch_all(sources, clock=clock, per_host=2, concurrency=16)
    assert all(r.outcome is PollOutcome.UPDATED for r in results)
    assert feed_server.max_in_flight == 2


def test_global_concurrency_is_respected(feed_server, clock, tmp_path):
    for n in range(4):
        feed_server.route(f"/f{n}", RSS, delay=0.1)
    sources = [FeedSource(url=feed_server.url(f"/f{n}")) for n in range(4)]
    fetch_all(sources, clock=clock, per_host=4, concurrency=1)
    assert feed_server.max_in_flight == 1


def test_every_source_gets_one_result_in_input_order(feed_server, clock):
    feed_server.route("/slow", RSS, delay=0.2)
    feed_server.route("/fast", RSS)
    feed_server.route("/gone", status=410)
    urls = [
        feed_server.url("/slow"),
        "ftp://example.org/",
        feed_server.url("/fast"),
        feed_server.url("/gone"),
        feed_server.url("/missing"),
    ]
    seen = []
    results = fetch_all([FeedSource(url=u) for u in urls], clock=clock, on_result=seen.append)
    assert [r.url for r in results] == urls
    assert [r.outcome for r in results] == [
        PollOutcome.UPDATED,
        PollOutcome.ERROR,
        PollOutcome.UPDATED,
        PollOutcome.GONE,
        PollOutcome.ERROR,
    ]
    assert sorted(r.url for r in seen) == sorted(urls)
    assert seen[-1].url == feed_server.url("/slow")  # reported as soon as each was done


def test_async_on_result_is_awaited(feed_server, clock):
    feed_server.route("/feed", RSS)
    seen = []

    async def on_result(result):
        await asyncio.sleep(0)
        seen.append(result.url)

    async def main():
        return await fetch_many(
            [FeedSource(url=feed_server.url("/feed"))] * 3, clock=clock, on_result=on_result
        )

    results = asyncio.run(main())
    assert len(results) == 3
    assert seen == [feed_server.url("/feed")] * 3


def test_no_sources_no_results(clock):
    assert fetch_all([], clock=clock) == []


def test_connections_are_reused(feed_server, clock):
    for n in range(5):
        feed_server.route(f"/f{n}", RSS)
    sources = [FeedSource(url=feed_server.url(f"/f{n}")) for n in range(5)]
    fetch_all(sources, clock=clock, per_host=1)
    assert feed_server.connections_opened == 1


def test_a_bug_in_on_result_propagates_as_itself(feed_server, clock):
    feed_server.route("/feed", RSS)

    def on_result(result):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        fetch_all([FeedSource(url=feed_server.url("/feed"))], clock=clock, on_result=on_result)


def test_with_on_result_the_returned_results_keep_no_body(feed_server, clock):
    feed_server.route("/feed", RSS)
    bodies = []
    [result] = fetch_all(
        [FeedSource(url=feed_server.url("/feed"))],
        clock=clock,
        on_result=lambda r: bodies.append(r.body),
    )
    assert bodies == [RSS]
    assert result.body is None
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()
