"""The daemon and delivery: catch-up, SIGTERM during a slow fetch, readiness for systemd,
sending after start, and kill -9 at random moments (polling, building, sending) then a
restart: every item there, every message delivered once (beyond the one in flight)."""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from aggregator import outbox, pipeline
from aggregator.clock import FrozenClock
from aggregator.config import load_config
from aggregator.daemon import Daemon, digest_status, needs_catch_up
from tests.conftest import FROZEN_NOW
from tests.feedserver import wait_until
from tests.smtpserver import SmtpServer
from tests.test_daemon import Daemon as DaemonProcess

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")

EXE = str(Path(sys.executable).with_name("aggregator"))


def rss(feed: int, items: int, published: datetime = FROZEN_NOW) -> str:
    # Dated: the undated entries of a feed's first poll are its archive, in no edition.
    entries = "".join(
        f"<item><title>Markets story {feed}-{i} on rates and banks number {i}</title>"
        f"<link>https://n{feed}.example/{i}</link><guid>{feed}-{i}</guid>"
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<description>Lead {feed} {i}: the central bank moved rates by {i} points.</description></item>"
        for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{feed}</title>{entries}</channel></rss>'


def write_config(
    path: Path, feeds: list[str], *, smtp_port: int, subscribers: int = 1, rate: str | None = None
) -> Path:
    feed_lines = "".join(f"  - url: {u}\n    name: Feed {n}\n" for n, u in enumerate(feeds))
    subs = "".join(f"  - email: reader{n}@example.org\n" for n in range(subscribers))
    rate_kv = f", rate: {rate}" if rate else ""
    feeds_block = "feeds:\n" + feed_lines if feed_lines else "feeds: []\n"
    path.write_text(
        f"""settings:
  data_dir: data
  outbox: outbox
  from: "Brief <brief@example.org>"
  timeout: 20s
  smtp: {{host: 127.0.0.1, port: {smtp_port}{rate_kv}}}
topics:
  business: {{title: Business, keywords: [markets]}}
{feeds_block}digests:
  daily: {{schedule: "0 7 * * *", subject: "Brief {{date:%d %B}}", max_total: 5}}
subscribers:
{subs}""",
        encoding="utf-8",
    )
    return path


@contextmanager
def an_edition_to_send(feed_server, tmp_path: Path, clock) -> Iterator[tuple]:
    """One feed polled and its edition built: one message pending in tmp_path/outbox for a
    local SMTP server. Yields (server, config, store); the store is open until the end."""
    feed_server.route("/f.xml", rss(0, 3), headers={"Content-Type": "application/rss+xml"})
    with SmtpServer() as server:
        config_path = write_config(
            tmp_path / "feeds.yaml", [feed_server.url("/f.xml")], smtp_port=server.port
        )
        config = load_config(config_path)
        store = pipeline.open_store(config)
        try:
            pipeline.poll_feeds(config, store, clock, due_only=False)
            pipeline.build_editions(config, store, clock)
            yield server, config, store
        finally:
            store.close()


# -- catch-up (in process, injected clock) -----------------------------------------------------


def test_needs_catch_up_is_a_pure_decision():
    day = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert needs_catch_up(day, day - timedelta(days=1))  # down at 07:00, back at 07:30
    assert not needs_catch_up(day, day)  # built already
    assert not needs_catch_up(day, day + timedelta(hours=2))  # built by hand later
    assert not needs_catch_up(day, None)  # a new install: no late first edition
    assert not needs_catch_up(None, day)


def test_down_three_days_makes_one_edition_and_back_at_0730_the_missed_one(tmp_path):
    config = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    clock = FrozenClock(datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    d = Daemon(config, clock=clock)
    try:
        assert d.catch_up() == []  # a new install with no edition: nothing late
        pipeline.build_editions(d.config, d.store, clock, scheduled_for=clock.now())
        clock.set(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))  # down three days
        assert d.catch_up() == ["daily"]
        assert d.catch_up() == []
        (status,) = digest_status(d.config, d.store, clock.now())
        assert status.last_edition == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
        assert status.next_edition == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
        keys = {m.cutoff for m in d.store.last_editions("daily").values()}
        assert keys == {datetime(2026, 11, 23, 7, 0, tzinfo=UTC)}
        clock.set(datetime(2026, 11, 24, 7, 30, tzinfo=UTC))  # missed 07:00 by half an hour
        assert d.catch_up() == ["daily"]
        assert d.catch_up() == []
    finally:
        d.store.close()


# -- the daemon as a subprocess --------------------------------------------------------------


def stop_within(d: DaemonProcess, seconds: float) -> tuple[int, float]:
    start = time.monotonic()
    code = d.stop(signal.SIGTERM, timeout=seconds + 5)
    return code, time.monotonic() - start


def test_sigterm_during_a_slow_fetch_exits_0_within_the_deadline(feed_server, tmp_path):
    feed_server.drip("/slow.xml")
    feed_server.route("/fast.xml", rss(1, 2))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/slow.xml"), feed_server.url("/fast.xml")],
        smtp_port=1,
    )
    d = DaemonProcess(config)
    try:
        d.wait_for("daemon started")
        assert wait_until(lambda: feed_server.requests_to("/fast.xml"), timeout=10)
        assert wait_until(lambda: feed_server.in_flight > 0, timeout=10)  # the drip is open
        code, took = stop_within(d, 10)
        assert code == 0 and took < 10, took
        # what the poll had handled before the stop is written and logged
        d.wait_for("feed=" + feed_server.url("/fast.xml"))
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    # The store is consistent: the fast feed's items are there, the slow one stays due.
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    try:
        assert store.count_items() == 2
    finally:
        store.close()


def test_ready_is_sent_to_the_notify_socket_and_pending_mail_goes_at_start(tmp_path, monkeypatch):
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    with SmtpServer() as server:
        config = write_config(tmp_path / "feeds.yaml", [], smtp_port=server.port)
        box = tmp_path / "outbox"
        data = b"From: b@example.org\r\nTo: r@example.org\r\nMessage-ID: <m1@x>\r\n\r\nhi\r\n"
        outbox.write_message(box, "m1.eml", data)
        d = DaemonProcess(config)
        try:
            assert sock.recv(100) == b"READY=1"
            d.wait_for("message=m1.eml status=sent")
            assert d.stop() == 0
            assert sock.recv(100) == b"STOPPING=1"
        finally:
            sock.close()
            if d.proc.poll() is None:
                d.proc.kill()
    assert server.message_ids() == ["<m1@x>"]
    assert [p.name for p in outbox.list_messages(box)["sent"]] == ["m1.eml"]


def run_cli(config: Path, *args: str, kill_after: float | None = None) -> bool:
    """Run one command; with kill_after, SIGKILL it then if still running. True if killed."""
    with subprocess.Popen(
        [EXE, "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            _, err = proc.communicate(timeout=kill_after or 120)
        except subprocess.TimeoutExpired:
            if kill_after is None:
                raise
            proc.kill()
            proc.communicate()
            return True
    assert proc.returncode == 0, err.decode()
    return False


def test_kill_9_at_random_moments_loses_nothing_and_sends_each_message_once(feed_server, tmp_path):
    rng = random.Random(int(os.environ.get("KILL_SEED", "7")))
    feeds = []
    for n in range(6):
        # The commands run on the real clock, so the items are published by it.
        feed_server.route(f"/f{n}.xml", rss(n, 8, published=datetime.now(UTC)))
        feeds.append(feed_server.url(f"/f{n}.xml"))
    with SmtpServer() as server:
        config = write_config(
            tmp_path / "feeds.yaml", feeds, smtp_port=server.port, subscribers=30, rate="60/s"
        )
        kills_while_sending = 0
        # polling, killed at random moments, then run to the end
        for _ in range(2):
            run_cli(config, "fetch", kill_after=rng.uniform(0.5, 3.0))
        run_cli(config, "fetch")
        # building, killed at random moments, then run to the end
        for _ in range(2):
            run_cli(config, "digest", kill_after=rng.uniform(0.5, 4.0))
        run_cli(config, "digest")
        # sending by the daemon (it delivers at start), killed at random moments
        for _ in range(3):
            d = DaemonProcess(config)
            d.wait_for("daemon started")
            time.sleep(rng.uniform(0.0, 0.5))  # a random moment, not a wait for an event
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(timeout=10)
            kills_while_sending += 1
        d = DaemonProcess(config)
        try:
            d.wait_for("daemon started")
            box = tmp_path / "outbox"
            assert wait_until(lambda: not outbox.list_messages(box)["pending"], timeout=30)
            assert d.stop() == 0
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
    cfg = load_config(config)
    store = pipeline.open_store(cfg)
    try:
        assert store.count_items() == 6 * 8  # every item there, once
        with store.engine.connect() as conn:  # every message recorded as sent in the store
            counts = conn.exec_driver_sql(
                "SELECT count(message_name), count(sent_at) FROM editions"
            ).one()
        assert tuple(counts) == (30, 30)
    finally:
        store.close()
    listing = outbox.list_messages(tmp_path / "outbox")
    assert len(listing["sent"]) == 30 and not listing["failed"]
    counts = collections.Counter(server.message_ids())
    assert len(counts) == 30  # every message delivered
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= kills_while_sending  # at most the one in flight at each kill


def test_send_and_status_through_the_cli_with_json_logs(tmp_path, clock):
    import json
    from types import SimpleNamespace

    from click.testing import CliRunner

    from aggregator.cli import cli

    with SmtpServer() as server:
        config = write_config(tmp_path / "feeds.yaml", [], smtp_port=server.port)
        box = tmp_path / "outbox"
        for n in range(3):
            data = (
                f"From: b@example.org\r\nTo: r{n}@example.org\r\nMessage-ID: <m{n}@x>\r\n\r\nhi\r\n"
            )
            outbox.write_message(box, f"m{n}.eml", data.encode())
        server.script(["250 OK", "550 5.1.1 <r1@example.org>: no such user", "421 4.7.0 slow down"])
        runner = CliRunner()

        def run(*args):
            return runner.invoke(
                cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
            )

        sent = run("--log-level", "info", "--log-format", "json", "send")
    assert sent.exit_code == 0, sent.output
    assert "1 sent, 1 to retry, 1 failed" in sent.output
    logs = [json.loads(line) for line in sent.stderr.splitlines() if line.startswith("{")]
    ok = next(r for r in logs if r.get("status") == "sent")
    assert ok["message"].startswith("message=m0.eml") and ok["to"] == "r0@example.org"
    assert ok["message_name"] == "m0.eml"  # the file, as a field of its own
    failed = next(r for r in logs if r.get("status") == "failed")
    assert failed["message_name"] == "m1.eml" and failed["level"] == "error"
    text = run("status").output
    assert "outbox: 1 pending, 1 sent, 1 failed" in text
    assert "failed m1.eml: 550 5.1.1 <r1@example.org>: no such user" in text
    assert "retrying m2.eml: attempt 1 failed (421 4.7.0 slow down)" in text
    assert "last delivery run 2026-11-24 06:00: 1 sent, 1 to retry, 1 failed" in text
    assert "daily" in text and "2026-11-24 07:00" in text  # the next edition
    doc = json.loads(run("status", "--json").output)
    assert doc["outbox"]["failures"][0]["reason"].startswith("550")
    assert doc["editions"][0] == {
        "digest": "daily",
        "last": None,
        "last_recipients": 0,
        "last_messages": 0,
        "last_sent": 0,
        "next": "2026-11-24T07:00:00+00:00",
    }


def test_saving_feeds_yaml_reloads_and_a_broken_save_is_refused(tmp_path):
    config = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    good = config.read_text(encoding="utf-8")
    d = DaemonProcess(config)
    try:
        d.wait_for("daemon started")
        config.write_text("feeds:\n  - url: ftp://nope\n", encoding="utf-8")
        d.wait_for("reload refused")
        config.write_text(good.replace("reader0@", "someone@"), encoding="utf-8")
        d.wait_for("config reloaded")
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


def test_a_message_written_before_its_recipient_unsubscribed_is_never_sent(
    feed_server, tmp_path, clock
):
    from types import SimpleNamespace

    from click.testing import CliRunner

    from aggregator.cli import cli

    feed_server.route("/f.xml", rss(0, 3), headers={"Content-Type": "application/rss+xml"})
    with SmtpServer() as server:
        config = write_config(
            tmp_path / "feeds.yaml",
            [feed_server.url("/f.xml")],
            smtp_port=server.port,
            subscribers=2,
        )
        runner = CliRunner()

        def run(*args):
            result = runner.invoke(
                cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
            )
            assert result.exit_code == 0, result.output
            return result.output

        run("fetch")
        run("digest")
        box = tmp_path / "outbox"
        assert len(outbox.list_messages(box)[outbox.PENDING]) == 2
        run("unsubscribe", "Reader1@example.org")  # after the digest was written
        sent = run("send")
        status = run("status")
    assert [m.rcpt_tos for m in server.received] == [("reader0@example.org",)]
    (failed,) = outbox.list_messages(box)[outbox.FAILED]
    assert outbox.failure_reason(box, failed.name) == pipeline.UNSUBSCRIBED_REASON
    assert "reader1@example.org" in failed.read_text(encoding="utf-8")
    assert pipeline.UNSUBSCRIBED_REASON in status
    # send itself says so, and counts it
    assert f"failed {failed.name}: {pipeline.UNSUBSCRIBED_REASON}" in sent
    assert "1 sent, 0 to retry, 1 failed, 0 waiting" in sent


def test_run_with_serve_answers_one_click_unsubscribe_and_stops_on_sigterm(tmp_path):
    import httpx

    from tests.smtpserver import _free_port

    port = _free_port()
    config = write_config(tmp_path / "feeds.yaml", [], smtp_port=_free_port(), subscribers=2)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("settings:\n", "settings:\n  base_url: https://brief.example.org\n", 1),
        encoding="utf-8",
    )
    loaded = load_config(config)
    url = pipeline.unsubscribe_url(loaded, loaded.digests[0], "reader1@example.org")
    assert url is not None
    daemon = DaemonProcess(config, "--serve", "--listen", f"127.0.0.1:{port}")
    try:
        daemon.wait_for(f"serving on http://127.0.0.1:{port}/")
        daemon.wait_for("daemon started")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            health = client.get("/healthz")  # no feeds: ok as soon as the store answers
            assert health.status_code == 200
            assert health.json()["status"] == "ok" and health.json()["store"] == "ok"
            path = url.removeprefix("https://brief.example.org")
            page = client.get(path)  # a mail scanner's GET changes nothing
            assert page.status_code == 200 and "<form" in page.text
            clicked = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
            assert clicked.status_code == 200 and "Unsubscribed" in clicked.text
    finally:
        code = daemon.stop()
    assert code == 0
    store = pipeline.open_store(loaded)
    try:
        assert store.unsubscribed("daily") == {"reader1@example.org"}
    finally:
        store.close()
    with pytest.raises(httpx.ConnectError):  # the port is closed with the daemon
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.parametrize("command", [["run", "--serve"], ["serve"]])
def test_serving_on_a_busy_port_fails_at_once_with_the_address(tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
        done = subprocess.run(
            [EXE, "--config", str(config), *command, "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"error: cannot serve on 127.0.0.1:{port}" in done.stderr
    # never "serving on" first, nor uvicorn's own words
    assert "serving on" not in done.stderr and "Errno" not in done.stderr


def test_a_failing_outbox_prune_never_keeps_the_mail_from_going_out(
    feed_server, tmp_path, clock, caplog, monkeypatch
):
    with an_edition_to_send(feed_server, tmp_path, clock) as (server, config, store):
        old = (clock.now() - timedelta(days=365)).timestamp()
        for preview in (tmp_path / "outbox" / "previews").iterdir():
            os.utime(preview, (old, old))  # due for pruning
        # What a daemon that is not root meets on a folder it may not write: EACCES.
        # (Tests run as root here, which no file mode stops, so the refusal is injected.)
        real_unlink = Path.unlink

        def refuse(path: Path, missing_ok: bool = False) -> None:
            if path.parent.name == "previews":
                raise PermissionError(13, "Permission denied", str(path))
            real_unlink(path, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", refuse)
        report = pipeline.send(config, store, clock)
    assert len(report.sent) == 1 and len(server.received) == 1
    assert "outbox prune failed" in caplog.text and "Permission denied" in caplog.text


# -- one delivery run and one daemon at a time, across processes -------------------------------


def test_send_while_another_delivery_run_holds_the_outbox_sends_nothing(tmp_path, clock):
    from types import SimpleNamespace

    from click.testing import CliRunner

    from aggregator.cli import cli

    with SmtpServer() as server:
        config = write_config(tmp_path / "feeds.yaml", [], smtp_port=server.port)
        box = tmp_path / "outbox"
        data = b"From: b@example.org\r\nTo: r@example.org\r\nMessage-ID: <m@x>\r\n\r\nhi\r\n"
        outbox.write_message(box, "m.eml", data)
        # another process (the daemon's delivery run) holds the outbox's lock
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from aggregator import locks\n"
                "with locks.holding(Path(sys.argv[1])):\n"
                "    print('held', flush=True); sys.stdin.read()",
                str(box / pipeline.DELIVERY_LOCK),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            busy = CliRunner().invoke(
                cli, ["--config", str(config), "send"], obj=SimpleNamespace(clock=clock)
            )
            assert busy.exit_code == 0, busy.output
            assert f"another delivery run (pid {holder.pid}) is sending" in busy.output
            assert server.received == [] and outbox.list_messages(box)[outbox.PENDING]
        finally:
            holder.communicate("")  # the holder ends; the kernel drops its lock
        sent = CliRunner().invoke(
            cli, ["--config", str(config), "send"], obj=SimpleNamespace(clock=clock)
        )
    assert sent.exit_code == 0 and "1 sent" in sent.output
    assert len(server.received) == 1


def test_a_second_daemon_on_one_data_directory_refuses_to_start(tmp_path):
    config = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    first = DaemonProcess(config)
    try:
        first.wait_for("daemon started")
        exe = Path(sys.executable).with_name("aggregator")
        second = subprocess.run(
            [str(exe), "--config", str(config), "run"], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert f"another aggregator daemon (pid {first.proc.pid}) runs on" in second.stderr
        assert "Traceback" not in second.stderr  # one line for the operator, no stack
    finally:
        first.stop()


# -- the machine's trouble: a full or read-only disk, a folder the daemon may not write -------
# Tests run as root here, which no file mode stops: the refusals are injected, or come from a
# database opened read-only (sqlite's mode=ro), which refuses root too.


def _read_only_store(db: Path):
    import sqlalchemy as sa

    from aggregator.store import Store

    return Store(sa.create_engine(f"sqlite:///file:{db}?mode=ro&uri=true"))


def test_a_read_only_database_stops_the_daemon_at_start_in_one_line(tmp_path, monkeypatch, capsys):
    from aggregator.cli import main

    config_path = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    pipeline.open_store(load_config(config_path)).close()  # the database exists
    db = tmp_path / "data" / "aggregator.sqlite3"
    monkeypatch.setattr(pipeline, "open_store", lambda config: _read_only_store(db))
    monkeypatch.setattr(sys, "argv", ["aggregator", "--config", str(config_path), "run"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.startswith("error: cannot write the database sqlite:///") and str(db) in err
    assert "readonly database" in err and "Traceback" not in err


def test_a_job_the_machine_fails_is_one_log_line_and_a_bug_keeps_its_stack(
    tmp_path, clock, monkeypatch, caplog
):
    from aggregator.errors import DeliveryError, is_environmental

    config_path = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    d = Daemon(config_path, clock=clock)
    try:
        full = DeliveryError("cannot write messages into outbox/pending: [Errno 28] No space")
        monkeypatch.setattr(pipeline, "build_editions", lambda *a, **k: (_ for _ in ()).throw(full))
        d._build("daily", None)
        (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
        assert record.exc_info is None and "No space" in record.getMessage()
        assert "digest=daily edition failed" in record.getMessage()

        caplog.clear()
        bug = ValueError("a bug")
        monkeypatch.setattr(pipeline, "build_editions", lambda *a, **k: (_ for _ in ()).throw(bug))
        d._build("daily", None)
        (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
        assert record.exc_info is not None  # the stack, for the bug report

        # a failed poll is tried again a tick later, not every 5 s
        planned: list[bool] = []
        monkeypatch.setattr(d, "_plan_next_poll", lambda: planned.append(True))
        monkeypatch.setattr(pipeline, "poll_feeds", lambda *a, **k: (_ for _ in ()).throw(full))
        d.poll_tick()
        assert planned == []
    finally:
        d.store.close()
    # sqlite's "readonly database" is the machine's, through SQLAlchemy's wrapping too
    store = _read_only_store(tmp_path / "data" / "aggregator.sqlite3")
    try:
        with pytest.raises(Exception) as raised, store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM feeds")
    finally:
        store.close()
    assert is_environmental(raised.value)
    assert not is_environmental(ValueError("a bug"))


def test_a_pending_message_the_store_says_was_sent_is_moved_not_sent_again(
    feed_server, tmp_path, clock
):
    with an_edition_to_send(feed_server, tmp_path, clock) as (server, config, store):
        assert len(pipeline.send(config, store, clock).sent) == 1
        # the store recorded the send, the move to sent/ did not happen (a crash between
        # the two, or a sent/ that could not be written then)
        (sent,) = outbox.list_messages(config.settings.outbox)[outbox.SENT]
        os.replace(sent, config.settings.outbox / outbox.PENDING / sent.name)
        again = pipeline.send(config, store, clock)
    assert not again.sent and not again.error
    assert len(server.received) == 1
    assert outbox.list_messages(config.settings.outbox)[outbox.SENT] == [sent]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_status_says_why_mail_waits_when_the_server_refuses_the_login(tmp_path, clock, monkeypatch):
    import json
    from types import SimpleNamespace

    from click.testing import CliRunner

    from aggregator.cli import cli

    monkeypatch.setenv("T_SMTP_USER", "brief")
    monkeypatch.setenv("T_SMTP_PASS", "an old password")
    with SmtpServer(auth=("brief", "the new one")) as server:
        config = write_config(tmp_path / "feeds.yaml", [], smtp_port=server.port)
        text = config.read_text().replace(
            "port: " + str(server.port),
            f"port: {server.port}, username_env: T_SMTP_USER, password_env: T_SMTP_PASS",
        )
        config.write_text(text)
        data = b"From: b@example.org\r\nTo: r@example.org\r\nMessage-ID: <m@x>\r\n\r\nhi\r\n"
        outbox.write_message(tmp_path / "outbox", "m.eml", data)

        def run(*args):
            return CliRunner().invoke(
                cli, ["--config", str(config), *args], obj=SimpleNamespace(clock=clock)
            )

        sent = run("send")
        assert sent.exit_code == 1 and "SMTP login refused: 535" in sent.output
        status = run("status").output
        doc = json.loads(run("status", "--json").output)
    # no attempt is counted against the message (the login is not its fault): only the run's
    # record says why it waits
    assert "outbox: 1 pending, 0 sent, 0 failed" in status
    assert (
        "last delivery run 2026-11-24 06:00: 0 sent, 0 to retry, 0 failed; stopped: SMTP login refused: 535"
        in status
    )
    assert doc["outbox"]["last_run"]["error"].startswith("SMTP login refused: 535")
    assert (
        "the new one" not in status + sent.output and "an old password" not in status + sent.output
    )


def test_a_reload_that_moves_the_data_or_the_outbox_keeps_them_until_a_restart(
    tmp_path, clock, caplog
):
    config_path = write_config(tmp_path / "feeds.yaml", [], smtp_port=1)
    d = Daemon(config_path, clock=clock)
    try:
        text = config_path.read_text()
        config_path.write_text(
            text.replace("data_dir: data", "data_dir: elsewhere")
            .replace("outbox: outbox", "outbox: /srv/mail")
            .replace("max_total: 5", "max_total: 9")
        )
        assert d.reload()
        # the rest of the edit is in force; the database and the outbox stay where they are
        assert d.config.digests[0].max_total == 9
        assert d.config.settings.data_dir == tmp_path / "data"
        assert d.config.settings.outbox == tmp_path / "outbox"
    finally:
        d.store.close()
    assert "settings.outbox changed" in caplog.text and "next restart" in caplog.text
    assert "settings.data_dir changed" in caplog.text
    assert not (tmp_path / "elsewhere").exists()


def test_missing_smtp_credentials_are_named_at_start_not_at_the_next_edition(
    tmp_path, clock, caplog, monkeypatch
):
    monkeypatch.delenv("T_SMTP_PASS", raising=False)
    config_path = write_config(tmp_path / "feeds.yaml", [], smtp_port=25)
    config_path.write_text(
        config_path.read_text().replace("port: 25", "port: 25, password_env: T_SMTP_PASS")
    )
    d = Daemon(config_path, clock=clock)
    try:
        d._check_credentials()
    finally:
        d.store.close()
    assert "environment variable T_SMTP_PASS is not set: no mail can be sent" in caplog.text


def test_a_database_that_cannot_be_written_does_not_keep_pending_mail_from_going_out(
    feed_server, tmp_path, clock
):
    # The daily outbox prune is housekeeping: its bookmark in the database must not be what
    # stops delivery on a full or read-only disk (a rename into sent/ needs no space).
    with an_edition_to_send(feed_server, tmp_path, clock) as (server, config, store):
        store.close()
        store = _read_only_store(tmp_path / "data" / "aggregator.sqlite3")
        try:
            report = pipeline.send(config, store, clock)
        finally:
            store.close()
    assert len(report.sent) == 1 and len(server.received) == 1
    assert outbox.list_messages(config.settings.outbox)[outbox.SENT]
    assert not outbox.list_messages(config.settings.outbox)[outbox.PENDING]
