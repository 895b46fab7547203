"""SMTP delivery against a real server on 127.0.0.1 (aiosmtpd): accept, 4xx, 5xx, AUTH, TLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator import outbox
from aggregator.config import SmtpSettings, parse_rate
from aggregator.deliver import (
    MAX_ATTEMPTS,
    RETRY_BASE,
    RETRY_CAP,
    Attempts,
    RateLimit,
    deliver_pending,
    envelope,
    outbox_status,
    read_attempts,
    retry_decision,
)
from aggregator.errors import DeliveryError
from tests.smtpserver import SmtpServer, self_signed

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
LONG_URL = "https://brief.example.org/unsubscribe?digest=daily&email=" + "r" * 90


def message(n: int, to: str = "reader@example.org") -> bytes:
    return (
        f"From: Brief <brief@example.org>\r\nTo: {to}\r\nSubject: Edition {n}\r\n"
        f"Message-ID: <edition-{n}@example.org>\r\n"
        f"List-Unsubscribe: <mailto:brief@example.org?subject=unsubscribe>, <{LONG_URL}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Story {n}.\r\n.leading dot\r\n"
    ).encode()


@pytest.fixture
def box(tmp_path):
    path = tmp_path / "outbox"
    for n in range(3):
        outbox.write_message(path, f"2026-11-24T0700-daily--{n}.eml", message(n))
    return path


def settings(server: SmtpServer, **kw) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=server.port, **kw)


def test_accepted_messages_are_sent_once_over_one_connection(box, clock):
    with SmtpServer() as server:
        report = deliver_pending(box, settings(server), clock)
        again = deliver_pending(box, settings(server), clock)
    assert len(report.sent) == 3 and not report.failed and not again.sent
    assert sorted(server.message_ids()) == [f"<edition-{n}@example.org>" for n in range(3)]
    assert len(server.sessions) == 1  # connection reused
    first = server.received[0]
    assert first.mail_from == "brief@example.org" and first.rcpt_tos == ("reader@example.org",)
    # The bytes arrive as written (aiosmtpd hands over the content with CRLF line ends).
    assert first.data.replace(b"\r\n", b"\n") == message(0).replace(b"\r\n", b"\n")
    assert LONG_URL.encode() in first.data
    assert len(outbox.list_messages(box)["sent"]) == 3
    assert not outbox.list_messages(box)["pending"]


def test_4xx_is_retried_after_a_backoff_and_delivered_once(box, clock):
    clock.set(NOW)
    with SmtpServer() as server:
        server.script(["451 4.3.0 mailbox busy"])
        first = deliver_pending(box, settings(server), clock)
        assert len(first.sent) == 2 and len(first.retrying) == 1
        name, reason, at = first.retrying[0]
        assert "451" in reason and at == NOW + RETRY_BASE
        assert read_attempts(box, name).count == 1
        status = outbox_status(box)
        assert (status.pending, status.sent, len(status.retrying)) == (1, 2, 1)
        # not due yet: left alone
        early = deliver_pending(box, settings(server), clock)
        assert early.waiting == 1 and not early.sent
        clock.advance(RETRY_BASE)
        later = deliver_pending(box, settings(server), clock)
    assert later.sent == [name]
    ids = server.message_ids()
    assert len(ids) == len(set(ids)) == 3
    assert not outbox.list_messages(box)["pending"]
    assert not list((box / "pending").iterdir())  # the retry sidecar is gone too


def test_5xx_moves_the_message_to_failed_with_the_reason(box, clock):
    with SmtpServer() as server:
        server.script(["250 OK", "550 5.1.1 no such user here"])
        report = deliver_pending(box, settings(server), clock)
    assert len(report.sent) == 2
    ((name, reason),) = report.failed
    assert reason.startswith("550") and "no such user" in reason
    assert outbox.failure_reason(box, name) == reason
    status = outbox_status(box)
    assert (status.pending, status.sent, status.failed) == (0, 2, 1)
    assert status.failures == ((name, reason),)


def test_connection_refused_is_retried_later_and_the_run_stops(box, clock):
    with SmtpServer() as server:
        port = server.port
    report = deliver_pending(box, SmtpSettings(host="127.0.0.1", port=port), clock)
    assert not report.sent and report.error and "cannot talk to" in report.error
    assert len(report.retrying) == 1  # the first message counts an attempt; the rest wait
    assert outbox_status(box).pending == 3


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_from_environment_variables(box, clock, monkeypatch):
    monkeypatch.setenv("T_SMTP_USER", "brief")
    monkeypatch.setenv("T_SMTP_PASS", "s3cret")
    with SmtpServer(auth=("brief", "s3cret")) as server:
        smtp = settings(server, username_env="T_SMTP_USER", password_env="T_SMTP_PASS")
        report = deliver_pending(box, smtp, clock)
        assert len(report.sent) == 3 and server.logins == 1
        monkeypatch.setenv("T_SMTP_PASS", "wrong")
        outbox.write_message(box, "x.eml", message(9))
        refused = deliver_pending(box, smtp, clock)
        monkeypatch.delenv("T_SMTP_PASS")
        missing = deliver_pending(box, smtp, clock)
    assert refused.error and "login refused" in refused.error and not refused.sent
    assert missing.error and "T_SMTP_PASS is not set" in missing.error
    assert outbox_status(box).pending == 1  # nothing failed for a server-side problem


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_tls_and_starttls_with_a_self_signed_certificate(box, clock, tmp_path, mode):
    contexts = self_signed(tmp_path)
    if contexts is None:
        pytest.skip("no openssl command to make a certificate")
    server_ctx, client_ctx = contexts
    kw = {"tls": server_ctx} if mode == "tls" else {"starttls": server_ctx}
    with SmtpServer(**kw) as server:
        report = deliver_pending(
            box, settings(server, security=mode), clock, ssl_context=client_ctx
        )
        # without trusting the certificate: refused, retried later, never sent in clear
        outbox.write_message(box, "y.eml", message(8))
        untrusted = deliver_pending(box, settings(server, security=mode), clock)
    assert len(report.sent) == 3 and len(server.received) == 3
    assert untrusted.error and not untrusted.sent


def test_rate_limit_paces_the_sends(box, clock):
    import time

    with SmtpServer() as server:
        start = time.monotonic()
        report = deliver_pending(box, settings(server, rate=20.0), clock)
        elapsed = time.monotonic() - start
    assert len(report.sent) == 3
    assert elapsed >= 2 / 20  # three sends, two gaps of 50 ms


def test_retry_decision_is_a_pure_backoff():
    none = Attempts()
    assert retry_decision(550, "no", none, NOW).action == "fail"
    d = retry_decision(421, "busy", none, NOW)
    assert (d.action, d.next_at) == ("retry", NOW + RETRY_BASE)
    d = retry_decision(None, "refused", Attempts(count=3), NOW)
    assert d.next_at == NOW + RETRY_BASE * 8
    assert retry_decision(451, "x", Attempts(count=12), NOW).next_at == NOW + RETRY_CAP
    gave_up = retry_decision(451, "busy", Attempts(count=MAX_ATTEMPTS - 1), NOW)
    assert gave_up.action == "fail" and "gave up after" in gave_up.reason


def test_envelope_comes_from_the_headers():
    data = b"From: A <a@example.org>\r\nTo: b@example.org, C <c@example.org>\r\nCc: d@example.org\r\n\r\nx"
    assert envelope(data) == ("a@example.org", ["b@example.org", "c@example.org", "d@example.org"])
    with pytest.raises(ValueError):
        envelope(b"Subject: none\r\n\r\nx")


def test_rate_setting_parses_per_second_minute_hour():
    assert parse_rate("10/s") == 10
    assert parse_rate("600/m") == 10
    assert parse_rate("3600/hour") == 1
    for bad in ("fast", "0/s", "10"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert RateLimit(None).wait()


def test_the_clock_decides_due_messages_not_the_wall(box, clock):
    clock.set(NOW)
    with SmtpServer() as server:
        server.script(["452 too many"])
        deliver_pending(box, settings(server), clock)
        clock.advance(timedelta(seconds=59))
        assert deliver_pending(box, settings(server), clock).waiting == 1


def test_a_5xx_greeting_is_the_servers_problem_not_the_messages(box, clock):
    import socketserver
    import threading

    class Refuse(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"554 5.7.1 no service for you\r\n")

    with socketserver.TCPServer(("127.0.0.1", 0), Refuse) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            report = deliver_pending(box, SmtpSettings(host="127.0.0.1", port=port), clock)
        finally:
            server.shutdown()
            thread.join(5)
    assert not report.failed and not report.sent
    assert report.error and "554" in report.error
    assert len(report.retrying) == 1  # one attempt counted, retried later
    assert outbox_status(box).pending == 3 and outbox_status(box).failed == 0


# -- a send the outbox or the database cannot record ------------------------------------------
# What a daemon meets on a full or read-only disk, or a sent/ its user may not write. Tests run
# as root here, which no file mode stops, so the refusals are injected.


def _refuse_moves(monkeypatch):
    """outbox.mark_sent fails as on a sent/ that may not be written, until the returned
    function is called."""
    real = outbox.mark_sent

    def refuse(box, name):
        raise DeliveryError(f"cannot move {box}/pending/{name}: [Errno 13] Permission denied")

    monkeypatch.setattr(outbox, "mark_sent", refuse)
    return lambda: monkeypatch.setattr(outbox, "mark_sent", real)


def test_a_send_that_cannot_move_to_sent_is_never_sent_again(box, clock, monkeypatch, caplog):
    allow = _refuse_moves(monkeypatch)
    with SmtpServer() as server:
        first = deliver_pending(box, settings(server), clock)
        # one message went; the run stopped there rather than meet the same wall 3 times
        assert len(first.sent) == 1 and len(server.received) == 1
        assert first.error and "accepted by the server" in first.error
        assert "Permission denied" in first.error
        # later runs: that message is held, not sent again, and nothing new goes out
        for _ in range(3):
            again = deliver_pending(box, settings(server), clock)
            assert again.unrecorded == first.sent and not again.sent
            assert again.error and "nothing more is sent" in again.error
        assert len(server.received) == 1
        allow()  # the operator fixed the folder
        fixed = deliver_pending(box, settings(server), clock)
    assert not fixed.error and not fixed.unrecorded and len(fixed.sent) == 2
    ids = server.message_ids()
    assert len(ids) == len(set(ids)) == 3  # each message once
    assert len(outbox.list_messages(box)["sent"]) == 3
    assert not outbox.list_messages(box)["pending"]
    assert "Traceback" not in caplog.text


def test_a_send_the_database_cannot_record_is_moved_to_sent_and_the_run_goes_on(box, clock):
    # The move to sent/ is the message's record: a full disk (where a rename still works) or
    # a read-only database does not hold the rest of the edition back to one a run.
    calls = []

    def full(name):
        calls.append(name)
        raise OSError(28, "No space left on device")

    with SmtpServer() as server:
        first = deliver_pending(box, settings(server), clock, on_sent=full)
        assert len(first.sent) == 3 and len(calls) == 1  # the database is not asked again
        assert first.error and "database did not record" in first.error
        assert "No space left on device" in first.error and "3 message(s)" in first.error
        assert len(outbox.list_messages(box)["sent"]) == 3  # moved: that is their record
        assert not outbox.list_messages(box)["pending"]
        second = deliver_pending(box, settings(server), clock)
    assert not second.sent
    ids = server.message_ids()
    assert len(ids) == len(set(ids)) == 3


def test_a_message_the_caller_knows_was_accepted_is_only_moved(box, clock):
    name = outbox.list_messages(box)["pending"][0].name
    with SmtpServer() as server:
        report = deliver_pending(box, settings(server), clock, accepted={name})
    assert len(report.sent) == 2 and name not in report.sent
    assert len(server.received) == 2
    assert (box / "sent" / name).exists() and not outbox.list_messages(box)["pending"]


def test_a_bug_in_the_record_of_a_send_is_raised_after_the_move_to_sent(box, clock):
    # Not "the database did not record it" in one line: a bug keeps its stack trace. The
    # message is in sent/ first, so it is not sent again either.
    def bug(name):
        raise TypeError("a bug in the store's record")

    with SmtpServer() as server:
        with pytest.raises(TypeError, match="a bug"):
            deliver_pending(box, settings(server), clock, on_sent=bug)
        assert len(outbox.list_messages(box)["sent"]) == 1
        deliver_pending(box, settings(server), clock)
    ids = server.message_ids()
    assert len(ids) == len(set(ids)) == 3
