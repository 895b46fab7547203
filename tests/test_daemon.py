"""The daemon as a real subprocess: polls at start, reloads on SIGHUP, stops cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator import pipeline
from aggregator.clock import FrozenClock
from aggregator.daemon import POLL_JOB, POLL_MIN_GAP, TICK_SECONDS, last_fire_time, next_poll_wake
from aggregator.daemon import Daemon as DaemonRunner

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>Markets rally on Tuesday</title><link>https://n.example/1</link><guid>1</guid></item>
</channel></rss>"""

CONFIG = """settings:
  data_dir: data
  outbox: outbox
  from: "Brief <brief@example.org>"
topics:
  business: {{title: Business, keywords: [markets]}}
feeds:
  - url: {url}
    name: Test Feed
digests:
  daily: {{schedule: "0 7 * * *", subject: "Brief {{date:%d %B}}"}}
subscribers:
  - email: reader@example.org
"""


class Daemon:
    """`aggregator run` in a subprocess, its log lines read as they come."""

    def __init__(self, config: Path, *run_args: str) -> None:
        exe = Path(sys.executable).with_name("aggregator")
        self.proc = subprocess.Popen(
            [str(exe), "--config", str(config), "--log-level", "info", "run", *run_args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.proc.stderr.close()

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; saw:\n{''.join(self.seen)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def daemon_config(feed_server, tmp_path):
    feed_server.route("/feed.xml", RSS, etag='"1"')
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(url=feed_server.url("/feed.xml")), encoding="utf-8")
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_daemon_polls_at_start_and_stops_cleanly(daemon_config, sig):
    d = Daemon(daemon_config)
    try:
        line = d.wait_for("feed=")
        assert "status=updated" in line and "new=1" in line
        assert d.stop(sig) == 0
        remaining = "".join(d.seen) + "".join(iter_queue(d.lines))
        assert "daemon stopped" in remaining
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    assert (daemon_config.parent / "data" / "aggregator.sqlite3").exists()


def test_sighup_with_broken_config_keeps_the_last_good_one(daemon_config):
    d = Daemon(daemon_config)
    try:
        d.wait_for("daemon started")
        daemon_config.write_text("feeds:\n  - url: ftp://nope\n", encoding="utf-8")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for("reload refused")
        assert d.proc.poll() is None
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


def iter_queue(q: queue.Queue[str]):
    while True:
        try:
            yield q.get_nowait()
        except queue.Empty:
            return


def test_last_fire_time_is_the_latest_scheduled_time_not_after_now():
    from datetime import UTC, datetime

    now = FrozenClock(datetime(2026, 11, 24, 7, 30, tzinfo=UTC)).now()
    assert last_fire_time("0 7 * * *", "Europe/London", now) == datetime(
        2026, 11, 24, 7, 0, tzinfo=UTC
    )
    # down for three days: still one (the latest) edition time
    assert last_fire_time("0 7 * * *", "UTC", datetime(2026, 11, 27, 6, 0, tzinfo=UTC)) == (
        datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    )


pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")


# -- when the next poll runs (in process, injected clock, scheduler paused) -------------------


def test_next_poll_wake_follows_the_earliest_due_feed_within_bounds():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    s = timedelta(seconds=1)
    assert next_poll_wake(now, now + 20 * s) == now + 20 * s  # not the 60 s tick
    assert next_poll_wake(now, now + 1 * s) == now + POLL_MIN_GAP  # a burst is polled together
    assert next_poll_wake(now, now - 30 * s) == now + POLL_MIN_GAP  # overdue: soon, not in a loop
    assert next_poll_wake(now, now + 3600 * s) == now + TICK_SECONDS * s  # feeds added elsewhere
    assert next_poll_wake(now, None) == now + TICK_SECONDS * s


@pytest.fixture
def paused_daemon(feed_server, tmp_path):
    """A Daemon in this process on a FrozenClock, its scheduler started paused: nothing runs
    by itself, the test calls the jobs and reads the poll job's next run time."""
    from datetime import UTC, datetime

    feed_server.route("/feed.xml", RSS, etag='"1"', headers={"Cache-Control": "max-age=1200"})
    path = tmp_path / "feeds.yaml"
    path.write_text(
        CONFIG.format(url=feed_server.url("/feed.xml")).replace(
            "  data_dir: data\n", "  data_dir: data\n  poll_interval: 20m\n"
        ),
        encoding="utf-8",
    )
    clock = FrozenClock(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    daemon = DaemonRunner(path, clock=clock)
    daemon.add_poll_job()
    daemon.scheduler.start(paused=True)
    try:
        yield daemon, path, feed_server
    finally:
        daemon.scheduler.shutdown(wait=False)
        daemon.store.close()


def poll_job_next_run(daemon: DaemonRunner):
    job = daemon.scheduler.get_job(POLL_JOB)
    assert job is not None
    return job.next_run_time


def test_after_a_poll_the_daemon_wakes_when_the_feed_is_next_due_not_a_tick_later(
    paused_daemon,
):
    daemon, _, _ = paused_daemon
    daemon.poll_tick()
    due = pipeline.next_poll_at(daemon.config, daemon.store)
    assert due is not None and due > daemon.clock.now()
    assert poll_job_next_run(daemon) == next_poll_wake(daemon.clock.now(), due)
    # A 20-minute interval: the job's next run is the feed's due time, not now + 60 s.
    daemon.clock.advance(due - daemon.clock.now() - timedelta(seconds=30))
    daemon.poll_tick()  # nothing due yet: it plans for the feed's due time, 30 s ahead
    assert poll_job_next_run(daemon) == due


def test_a_reload_of_a_file_that_is_not_utf8_names_its_first_bad_byte(paused_daemon, caplog):
    daemon, path, _ = paused_daemon
    before = daemon.config
    path.write_bytes(path.read_bytes() + "# d\xe9j\xe0 vu\n".encode("latin-1"))
    lines = path.read_bytes().count(b"\n")
    assert not daemon.reload()
    assert daemon.config is before
    assert f"{path}:{lines}:4: not UTF-8: byte 0xe9 cannot be decoded" in caplog.text


def test_a_reload_that_adds_a_feed_polls_it_now(paused_daemon):
    daemon, path, server = paused_daemon
    daemon.poll_tick()
    assert poll_job_next_run(daemon) > daemon.clock.now()
    server.route("/new.xml", RSS.replace("n.example/1", "n.example/2"), etag='"2"')
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("feeds:\n", f"feeds:\n  - url: {server.url('/new.xml')}\n    name: New\n"),
        encoding="utf-8",
    )
    assert daemon.reload()
    assert poll_job_next_run(daemon) == daemon.clock.now()
    # A reload that adds no feed leaves the plan alone.
    daemon.poll_tick()
    planned = poll_job_next_run(daemon)
    path.write_text(path.read_text(encoding="utf-8").replace("Test Feed", "Renamed"))
    assert daemon.reload()
    assert poll_job_next_run(daemon) == planned


NOTHING_FOR_READER = """  - email: reader@example.org
    topics: [world]
"""


def test_the_daemon_logs_config_warnings_at_start_and_on_reload(paused_daemon, caplog):
    daemon, path, _ = paused_daemon
    caplog.set_level("WARNING", logger="aggregator")
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "  business: {title: Business, keywords: [markets]}\n",
        "  business: {title: Business, keywords: [markets]}\n"
        "  world: {title: World, keywords: [war]}\n",
    )
    text = text.replace(
        'subject: "Brief {date:%d %B}"}', 'subject: "Brief {date:%d %B}", topics: [business]}'
    )
    path.write_text(text.replace("  - email: reader@example.org\n", NOTHING_FOR_READER))
    assert daemon.reload()
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1
    assert warned[0].getMessage().startswith(f"config warning: {path}:")
    assert "reader@example.org gets nothing from digest 'daily'" in warned[0].getMessage()

    caplog.clear()
    fresh = DaemonRunner(path, clock=daemon.clock)  # a start on the same file
    try:
        assert "reader@example.org gets nothing" in caplog.text
    finally:
        fresh.store.close()
