"""SMTP delivery of ``outbox/pending/*.eml``: rate-limited, one connection reused, retried.

deliver_pending(outbox, smtp, clock)
    for each pending message whose next attempt is due (sidecar ``pending/.<name>.attempts``):
        connect once (SMTP, STARTTLS or implicit TLS; AUTH from the env vars named in config)
        wait for the rate limit
        send the file's bytes as they are; envelope from/to read from its headers
        accepted  -> on_sent(name) (the store's record), outbox.mark_sent, sidecar removed
        5xx       -> outbox.mark_failed with the server's reply    -- shown by `status`
        4xx, connection lost -> sidecar: attempts + 1, next attempt after a backoff
                                (retry_decision, pure); after MAX_ATTEMPTS: failed

A message is moved to ``sent/`` only after the server accepted it. A crash between the
server's 250 and its record (``on_sent``: the store; then the rename) leaves it pending, so it
goes again at the next run: at most the one message in flight at the crash is delivered
twice; nothing is lost. A record that fails without a crash is never a reason to send
again: a message the store says was sent (``accepted``) or that this process saw accepted is
only moved. A store that cannot record (a full or read-only disk) leaves the move as the
record, and the run goes on; a move that fails (a folder that may not be written) stops it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import smtplib
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from pathlib import Path

from . import errors, outbox
from .clock import Clock
from .config import SmtpSettings
from .errors import DeliveryError

log = logging.getLogger("aggregator.deliver")

RETRY_BASE = timedelta(minutes=1)  # the first retry waits this long, then twice as long ...
RETRY_CAP = timedelta(hours=2)  # ... up to this
MAX_ATTEMPTS = 15  # then the message is failed (about a day of trying)
CONNECT_TIMEOUT = 30.0  # seconds, for connect and each SMTP command
MESSAGES_PER_CONNECTION = 100  # then a fresh connection (servers cap messages per session)
ATTEMPTS_SUFFIX = ".attempts"


# -- decisions (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempts:
    """The retry state of one pending message, kept in its sidecar file."""

    count: int = 0  # failed attempts so far
    next_at: datetime | None = None  # not tried again before this
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # "retry" | "fail"
    next_at: datetime | None  # when to retry
    reason: str


def retry_decision(code: int | None, error: str, previous: Attempts, now: datetime) -> Decision:
    """What to do after a failed attempt: ``code`` is the SMTP reply code (None: the
    connection failed). 5xx is permanent; 4xx and connection errors are retried after
    RETRY_BASE * 2**(attempts - 1), capped at RETRY_CAP, until MAX_ATTEMPTS."""
    reason = f"{code} {error}" if code is not None else error
    if code is not None and 500 <= code < 600:
        return Decision("fail", None, reason)
    attempts = previous.count + 1
    if attempts >= MAX_ATTEMPTS:
        return Decision("fail", None, f"gave up after {attempts} attempts: {reason}")
    wait = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP)
    return Decision("retry", now + wait, reason)


def is_due(state: Attempts, now: datetime) -> bool:
    return state.next_at is None or state.next_at <= now


class RateLimit:
    """At most ``per_second`` sends per second: ``wait`` sleeps until the next slot (or
    until ``stop`` is set). Real time (monotonic): pacing is about the server, not the clock."""

    def __init__(self, per_second: float | None, stop: threading.Event | None = None) -> None:
        self.gap = 1.0 / per_second if per_second else 0.0
        self.stop = stop or threading.Event()
        self.next_slot = 0.0

    def wait(self) -> bool:
        """False when stopped while waiting."""
        now = time.monotonic()
        if self.next_slot > now and self.stop.wait(self.next_slot - now):
            return False
        self.next_slot = max(now, self.next_slot) + self.gap
        return not self.stop.is_set()


# -- the sidecar ---------------------------------------------------------------------------


def _sidecar(box: Path, name: str) -> Path:
    return box / outbox.PENDING / f".{name}{ATTEMPTS_SUFFIX}"


def read_attempts(box: Path, name: str) -> Attempts:
    try:
        data = json.loads(_sidecar(box, name).read_text("utf-8"))
        return Attempts(
            count=int(data["count"]),
            next_at=datetime.fromisoformat(data["next_at"]) if data.get("next_at") else None,
            last_error=str(data.get("last_error", "")),
        )
    except FileNotFoundError:
        return Attempts()
    except (ValueError, KeyError, TypeError):
        log.warning("message=%s unreadable retry state, trying now", name)
        return Attempts()


def _write_attempts(box: Path, name: str, state: Attempts) -> None:
    path = _sidecar(box, name)
    data = json.dumps(
        {
            "count": state.count,
            "next_at": state.next_at.isoformat() if state.next_at else None,
            "last_error": state.last_error,
        }
    ).encode()
    fd, tmp = tempfile.mkstemp(prefix=outbox.TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _drop_attempts(box: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _sidecar(box, name).unlink()


# -- envelope ----------------------------------------------------------------------------------


def envelope(data: bytes) -> tuple[str, list[str]]:
    """(MAIL FROM, RCPT TO list) from the message's own headers: Sender or From; To, Cc, Bcc."""
    headers = BytesHeaderParser().parsebytes(data)
    sender = parseaddr(str(headers.get("Sender") or headers.get("From") or ""))[1]
    fields = [str(v) for k in ("To", "Cc", "Bcc") for v in headers.get_all(k, [])]
    recipients = [addr for _, addr in getaddresses(fields) if addr]
    if not sender or not recipients:
        raise ValueError("the message names no sender or no recipient")
    return sender, list(dict.fromkeys(recipients))


# -- the run -----------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    retrying: list[tuple[str, str, datetime]] = field(default_factory=list)  # (name, why, at)
    waiting: int = 0  # pending, not yet due for another attempt
    error: str | None = None  # why the run stopped early (cannot connect, auth refused, stop)
    busy: str | None = None  # another delivery run holds the outbox: this one sent nothing
    # accepted by the server in an earlier run, still in pending/ (it cannot be written):
    # not sent again; while there are any, the run sends nothing (``error`` says why)
    unrecorded: list[str] = field(default_factory=list)
    # accepted and moved to sent/ (so not sent again), but the store did not record it
    # (``on_sent`` failed; after its first failure it is not asked again in the run) ...
    not_recorded: list[str] = field(default_factory=list)
    store_error: str | None = None  # ... because of this


class _SessionError(Exception):
    """The SMTP session could not be opened (connect, greeting, EHLO, STARTTLS)."""


class _Connection:
    """One SMTP session, opened on first use and reused; reopened after a server hang-up."""

    def __init__(self, smtp: SmtpSettings, context: ssl.SSLContext | None) -> None:
        self.settings = smtp
        self.context = context
        self.client: smtplib.SMTP | None = None
        self.used = 0

    def get(self) -> smtplib.SMTP:
        if self.client is not None and self.used >= MESSAGES_PER_CONNECTION:
            self.close()
        if self.client is None:
            try:
                self.client = self._open()
            except smtplib.SMTPAuthenticationError:
                raise
            except (OSError, smtplib.SMTPException) as exc:
                # A refusal while connecting (even a 5xx greeting or TLS failure) is about
                # the server, not this message: never a reason to fail the message.
                code = getattr(exc, "smtp_code", None)
                text = _text(exc.smtp_error) if hasattr(exc, "smtp_error") else str(exc)
                what = f"{code} {text}" if code else f"{type(exc).__name__}: {text}"
                raise _SessionError(what.strip()) from exc
            self.used = 0
        self.used += 1
        return self.client

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = self.context or ssl.create_default_context()
        client: smtplib.SMTP
        if s.security == "tls":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=CONNECT_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=CONNECT_TIMEOUT)
        try:
            client.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            user, password = credentials(s)
            if user is not None and password is not None:
                client.login(user, password)
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()
            raise
        return client

    def close(self) -> None:
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            self.client.quit()
        with contextlib.suppress(Exception):
            self.client.close()
        self.client = None


def credentials(smtp: SmtpSettings) -> tuple[str | None, str | None]:
    """The user name and password from the environment variables the config names."""
    if smtp.password_env is None and smtp.username_env is None:
        return None, None
    missing = [n for n in (smtp.username_env, smtp.password_env) if n and n not in os.environ]
    if missing:
        raise DeliveryError(f"SMTP credentials: environment variable {missing[0]} is not set")
    user = os.environ[smtp.username_env] if smtp.username_env else None
    password = os.environ[smtp.password_env] if smtp.password_env else None
    if user is None or password is None:
        raise DeliveryError("SMTP auth needs both username_env and password_env")
    return user, password


def deliver_pending(
    box: Path,
    smtp: SmtpSettings,
    clock: Clock,
    *,
    stop: threading.Event | None = None,
    ssl_context: ssl.SSLContext | None = None,
    names: Sequence[str] | None = None,
    on_sent: Callable[[str], None] | None = None,
    accepted: Collection[str] = (),
) -> DeliveryReport:
    """Send every pending message whose next attempt is due, over one reused connection.

    ``stop``: checked between messages (the one in flight finishes). ``ssl_context``: for
    tests with their own CA; default: the system's trust store. ``names``: only these.
    ``on_sent(name)``: called once the server accepted a message, before its file moves to
    ``sent/`` (the callback must be idempotent). ``accepted``: pending messages the caller
    knows the server accepted already (``on_sent`` recorded it, the move to ``sent/`` did not
    happen): moved now, never sent again.
    """
    stop = stop or threading.Event()
    report = DeliveryReport()
    pending = outbox.list_messages(box)[outbox.PENDING]
    if names is not None:
        wanted = set(names)
        pending = [p for p in pending if p.name in wanted]
    done = set(accepted) | {p.name for p in pending if _accepted_key(box, p.name) in _ACCEPTED}
    if done:
        _settle_accepted(box, sorted(p.name for p in pending if p.name in done), report)
        pending = [p for p in pending if p.name not in done]
    if not pending or report.unrecorded:  # the outbox cannot record a send: send nothing
        return report
    conn = _Connection(smtp, ssl_context)
    limit = RateLimit(smtp.rate, stop)
    try:
        for path in pending:
            name = path.name
            state = read_attempts(box, name)
            if not is_due(state, clock.now()):
                report.waiting += 1
                continue
            if stop.is_set() or not limit.wait():
                report.error = "stopped"
                break
            if not _deliver_one(box, path, state, conn, clock, report, on_sent):
                break  # cannot reach or log in to the server: the rest wait for the next run
    finally:
        conn.close()
    if report.not_recorded:
        note = (
            f"the database did not record that {len(report.not_recorded)} message(s) were sent "
            f"({report.store_error}); they are in sent/, not sent again"
        )
        report.error = f"{report.error}; {note}" if report.error else note
    return report


def _deliver_one(
    box: Path,
    path: Path,
    state: Attempts,
    conn: _Connection,
    clock: Clock,
    report: DeliveryReport,
    on_sent: Callable[[str], None] | None = None,
) -> bool:
    """Try one message; False when the run should stop (the server is out of reach)."""
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return True  # sent or failed by another run meanwhile
    try:
        sender, recipients = envelope(data)
    except ValueError as exc:
        _fail(box, name, str(exc), report)
        return True
    started = time.monotonic()
    code: int | None = None
    try:
        refused = _send(conn, sender, recipients, data)
    except _SessionError as exc:
        conn.close()
        _failed_attempt(box, name, state, None, str(exc), clock, report)
        report.error = f"cannot talk to {conn.settings.host}:{conn.settings.port}: {exc}"
        log.error("smtp=%s:%d %s", conn.settings.host, conn.settings.port, report.error)
        return False
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [c for c, _ in exc.recipients.values()]
        code = max(codes) if codes else None
        message = "; ".join(
            f"{r}: {m.decode(errors='replace') if isinstance(m, bytes) else m}"
            for r, (_, m) in exc.recipients.items()
        )
        return _failed_attempt(box, name, state, code, message, clock, report)
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            conn.close()
            report.error = f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            log.error("smtp=%s:%d %s", conn.settings.host, conn.settings.port, report.error)
            return False
        conn.close()  # a session after an error is in an unknown state
        return _failed_attempt(
            box, name, state, exc.smtp_code, _text(exc.smtp_error), clock, report
        )
    except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, TLS, hang-up
        conn.close()
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        _failed_attempt(box, name, state, None, reason, clock, report)
        report.error = f"cannot talk to {conn.settings.host}:{conn.settings.port}: {reason}"
        return False
    except DeliveryError as exc:  # credentials missing from the environment
        report.error = str(exc)
        log.error("smtp=%s:%d %s", conn.settings.host, conn.settings.port, exc)
        return False
    # Accepted by the server (for at least one recipient): now, and only now, it is sent.
    report.sent.append(name)
    log.info(
        "message=%s status=sent to=%s ms=%d attempts=%d%s",
        name,
        ",".join(recipients),
        int((time.monotonic() - started) * 1000),
        state.count + 1,
        f" refused={','.join(refused)}" if refused else "",
    )
    return _record_accepted(box, name, report, on_sent)


def _record_accepted(
    box: Path, name: str, report: DeliveryReport, on_sent: Callable[[str], None] | None
) -> bool:
    """Record that the server accepted ``name``: ``on_sent`` (the store), then the move to
    ``sent/``. Either one keeps it from being sent again (``pipeline.send`` passes a pending
    message the store says was sent as ``accepted``). A bug in ``on_sent`` is raised once
    the message has moved. A store that fails (a full or read-only disk, a locked database:
    errors.is_environmental) is not asked again in this run, which goes on: the move is
    each message's record (``report.not_recorded``). A move that fails (a folder the daemon
    may not write) stops the run: going on would meet the same wall with every message.
    That message is also remembered by this process (the store may have failed too), and
    later runs send nothing until it can leave ``pending/`` (``_settle_accepted``). False:
    stop the run."""
    recorded = on_sent is None
    bug: Exception | None = None
    if on_sent is not None and report.store_error is None:
        try:
            on_sent(name)
            recorded = True
        except Exception as exc:  # the database is full, read-only, locked ...
            if not errors.is_environmental(exc):
                bug = exc  # raised once the message is out of pending/: sent once all the same
            else:
                report.store_error = errors.error_text(exc)
                log.error(
                    "message=%s status=sent unrecorded=1 error=%r",
                    name,
                    f"the database did not record it ({report.store_error}); the run goes "
                    "on, each message recorded by its move to sent/ only",
                )
    try:
        outbox.mark_sent(box, name)
    except DeliveryError as exc:
        _ACCEPTED.add(_accepted_key(box, name))
        store = (
            ""
            if recorded or bug
            else f"the database did not record it ({report.store_error}); and "
        )
        report.error = (
            f"message {name} was accepted by the server, but {store}{exc}; it is not sent "
            "again, and nothing more is sent until it can leave pending/"
        )
        log.error("message=%s status=sent unrecorded=1 error=%r", name, report.error)
        if bug is not None:
            raise bug from None
        return False
    _drop_attempts(box, name)
    if bug is not None:
        raise bug
    if not recorded:
        report.not_recorded.append(name)
    return True


# Messages this process saw accepted but could not move to sent/: skipped by its later runs
# even when the database could not record them either (a full or read-only disk).
_ACCEPTED: set[tuple[str, str]] = set()


def _accepted_key(box: Path, name: str) -> tuple[str, str]:
    return (str(box.resolve()), name)


def _settle_accepted(box: Path, names: Sequence[str], report: DeliveryReport) -> None:
    """Move to ``sent/`` these pending messages, which the server accepted in an earlier run
    (the store or this process says so); those that still cannot move stay pending, and are
    not sent again: ``report.unrecorded``."""
    why = ""
    for name in names:
        try:
            outbox.mark_sent(box, name)
        except DeliveryError as exc:
            report.unrecorded.append(name)
            why = str(exc)
            continue
        _ACCEPTED.discard(_accepted_key(box, name))
        _drop_attempts(box, name)
        log.info("message=%s status=sent moved=1 (accepted by the server earlier)", name)
    if report.unrecorded:
        report.error = (
            f"{len(report.unrecorded)} message(s) the server accepted earlier cannot leave "
            f"{box / outbox.PENDING} ({why}); they are not sent again, and nothing more is "
            "sent until that is fixed"
        )
        log.error("held=%d error=%r", len(report.unrecorded), report.error)


def _send(conn: _Connection, sender: str, recipients: list[str], data: bytes) -> dict[str, object]:
    """``sendmail`` over the reused session; a session the server dropped meanwhile is
    opened again once (the message was not accepted on it)."""
    fresh = conn.client is None
    try:
        return dict(conn.get().sendmail(sender, recipients, data))
    except smtplib.SMTPServerDisconnected:
        conn.close()
        if fresh:
            raise
        return dict(conn.get().sendmail(sender, recipients, data))


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _failed_attempt(
    box: Path,
    name: str,
    state: Attempts,
    code: int | None,
    error: str,
    clock: Clock,
    report: DeliveryReport,
) -> bool:
    decision = retry_decision(code, " ".join(error.split()), state, clock.now())
    if decision.action == "fail":
        _fail(box, name, decision.reason, report)
        return True
    assert decision.next_at is not None
    _write_attempts(box, name, Attempts(state.count + 1, decision.next_at, decision.reason))
    report.retrying.append((name, decision.reason, decision.next_at))
    log.warning(
        "message=%s status=retry attempts=%d next=%s error=%r",
        name,
        state.count + 1,
        decision.next_at.isoformat(),
        decision.reason,
    )
    return True


def _fail(box: Path, name: str, reason: str, report: DeliveryReport) -> None:
    outbox.mark_failed(box, name, reason)
    _drop_attempts(box, name)
    report.failed.append((name, reason))
    log.error("message=%s status=failed error=%r", name, reason)


# -- status ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    pending: int
    sent: int
    failed: int
    failures: tuple[tuple[str, str], ...]  # (file name, reason)
    retrying: tuple[tuple[str, Attempts], ...]  # pending messages with failed attempts


def outbox_status(box: Path) -> OutboxStatus:
    listing = outbox.list_messages(box)
    retrying = []
    for p in listing[outbox.PENDING]:
        state = read_attempts(box, p.name)
        if state.count:
            retrying.append((p.name, state))
    return OutboxStatus(
        pending=len(listing[outbox.PENDING]),
        sent=len(listing[outbox.SENT]),
        failed=len(listing[outbox.FAILED]),
        failures=tuple(
            (p.name, outbox.failure_reason(box, p.name) or "") for p in listing[outbox.FAILED]
        ),
        retrying=tuple(retrying),
    )
