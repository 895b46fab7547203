"""The daemon: one polling tick, one cron job per digest, signals and reload. No business rules.

at start:            pipeline.finish_editions (a run killed mid-edition), then the catch-up:
                     a digest whose latest scheduled time has no edition yet gets it once
                     (down 07:00-07:30: the 07:00 edition; down three days: one edition)
poll:                pipeline.poll_feeds(due_only=True)   -- the store says which are due;
                     each poll plans the next for when the earliest feed is due (at least
                     POLL_MIN_GAP later, at most TICK later); a reload that adds feeds polls now
per digest (cron):   pipeline.build_editions(scheduled_for=<fire time>), then delivery
every SEND_TICK s:   deliver.deliver_pending                -- retries whose time has come
SIGHUP, or feeds.yaml saved (its mtime, checked every 0.5 s): reload; an invalid file is
                     refused with its errors logged, the last good one kept; data_dir,
                     database_url and outbox keep their running values until a restart
SIGTERM / SIGINT:    stop taking work; a poll in flight is cancelled (what it had handled is
                     written), a message in flight finishes; exit 0 within STOP_DEADLINE
systemd:             READY=1 / STOPPING=1 on $NOTIFY_SOCKET (Type=notify)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from . import deliver, locks, pipeline
from .clock import Clock
from .config import Config, DigestConfig, cron_trigger, load_config_with_warnings
from .errors import (
    AlreadyRunningError,
    ConfigError,
    ConfigProblem,
    DeliveryError,
    error_text,
    is_environmental,
)
from .store import Store

log = logging.getLogger("aggregator.daemon")

TICK_SECONDS = 60  # the longest the poll job sleeps (feeds added by another process)
# The shortest: due times are jittered, so a burst of them is polled together, not one by one.
POLL_MIN_GAP = timedelta(seconds=5)
DAEMON_LOCK = "daemon.lock"  # in data_dir (locks.holding)
SEND_TICK_SECONDS = 60  # pending messages whose retry time has come are tried this often
MISFIRE_GRACE = timedelta(hours=6)
CATCH_UP_LOOKBACK = timedelta(days=8)
POLL_JOB = "poll"
STOP_DEADLINE = 10.0  # seconds from SIGTERM to exit, whatever is in flight


class Service(Protocol):
    """Something the daemon runs beside its jobs (the web app of `run --serve`)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def last_fire_time(schedule: str, timezone: str, now: datetime) -> datetime | None:
    """The most recent scheduled time at or before ``now`` (within the look-back), or None."""
    trigger = cron_trigger(schedule, timezone)
    fire: datetime | None = None
    t = trigger.get_next_fire_time(None, now - CATCH_UP_LOOKBACK)
    while t is not None and t <= now:
        fire = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return fire


def next_poll_wake(
    now: datetime,
    earliest_due: datetime | None,
    *,
    tick: timedelta = timedelta(seconds=TICK_SECONDS),
    min_gap: timedelta = POLL_MIN_GAP,
) -> datetime:
    """When the poll job runs next: when the earliest feed is due (``pipeline.next_poll_at``),
    so the poller is never the reason a feed is polled late, but not sooner than ``min_gap``
    from now nor later than ``tick``."""
    if earliest_due is None:
        return now + tick
    return min(max(earliest_due, now + min_gap), now + tick)


def needs_catch_up(last_fire: datetime | None, last_cutoff: datetime | None) -> bool:
    """Whether a digest missed its latest scheduled edition while the daemon was down.

    ``last_fire``: its latest scheduled time (``last_fire_time``); ``last_cutoff``: the cutoff
    of its latest recorded edition. A digest that never had an edition is not caught up: a
    new install (or a new digest) starts at its next scheduled time, not with a late one.
    An edition built by hand after the scheduled time counts as that edition.
    """
    return last_fire is not None and last_cutoff is not None and last_cutoff < last_fire


@dataclass(frozen=True, slots=True)
class DigestStatus:
    """For `status`: the latest edition of a digest and the next scheduled one."""

    key: str
    last_edition: datetime | None  # the cutoff of the latest recorded edition
    recipients: int  # how many recipients that edition was recorded for
    messages: int  # of which got a message (an empty edition sends none)
    sent: int  # of which the SMTP server accepted
    next_edition: datetime | None


def digest_status(config: Config, store: Store, now: datetime) -> list[DigestStatus]:
    out = []
    for digest in config.digests:
        marks = store.last_editions(digest.key)
        last = max((m.cutoff for m in marks.values()), default=None)
        messages, sent = store.sent_counts(digest.key, last) if last else (0, 0)
        out.append(
            DigestStatus(
                key=digest.key,
                last_edition=last,
                recipients=sum(1 for m in marks.values() if m.cutoff == last),
                messages=messages,
                sent=sent,
                next_edition=pipeline.next_edition_at(config, digest, now),
            )
        )
    return out


def _failed(exc: Exception, what: str, *args: object) -> None:
    """Log a job that failed: the machine's trouble (a full or read-only disk, an outbox the
    daemon may not write, a locked database) in one line with its reason, every time it
    happens; anything else, a bug, with its stack trace."""
    if is_environmental(exc):
        log.error(what + ": %s", *args, error_text(exc))
    else:
        log.exception(what, *args)


# Settings the daemon holds from its start (the open database, its lock, the outbox its
# pending mail is in): a reload that changes one keeps the running value, and says so.
START_SETTINGS = ("data_dir", "database_url", "outbox")


def _keep_start_settings(running: Config, loaded: Config) -> Config:
    kept = {}
    for name in START_SETTINGS:
        old, new = getattr(running.settings, name), getattr(loaded.settings, name)
        if old != new:
            log.warning(
                "config settings.%s changed (%s -> %s): it takes effect at the next restart; "
                "until then the daemon keeps %s",
                name,
                old,
                new,
                old,
            )
            kept[name] = old
    if not kept:
        return loaded
    return replace(loaded, settings=replace(loaded.settings, **kept))


def _enabled_urls(config: Config) -> set[str]:
    return {f.url for f in config.feeds if f.enabled}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def sd_notify(state: str) -> bool:
    """Tell systemd (Type=notify) about our state, e.g. ``READY=1``; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify %s failed: %s", state, exc)
        return False
    return True


@contextlib.contextmanager
def sole_daemon(config: Config) -> Iterator[None]:
    """Hold the data directory for one daemon; AlreadyRunningError when another holds it.
    Taken before the store is opened, so a second daemon (a newer version started by
    mistake) never migrates the database under the running one."""
    directory = config.settings.data_dir
    with locks.holding(directory / DAEMON_LOCK) as holder:
        if holder is not None:
            raise AlreadyRunningError(
                f"another aggregator daemon (pid {holder}) runs on {directory}; "
                "stop it first (or give this one its own data_dir)"
            )
        yield


def _log_config_warnings(warnings: Sequence[ConfigProblem]) -> None:
    # What `check` warns about (a subscriber who can get nothing) loads and runs; an
    # operator who never runs `check` should still see it once per load.
    for warning in warnings:
        log.warning("config warning: %s", warning)


class Daemon:
    def __init__(
        self,
        config_path: Path,
        *,
        clock: Clock,
        services: list[Service] | None = None,
        config: Config | None = None,
        config_warnings: Sequence[ConfigProblem] = (),
    ) -> None:
        self.config_path = config_path
        # Started before the jobs, stopped after them; a service failing to start stops the
        # daemon before it takes any work.
        self.services: list[Service] = list(services or [])
        self._config_mtime = _mtime(config_path)
        self.clock = clock
        if config is None:
            config, config_warnings = load_config_with_warnings(config_path)
        _log_config_warnings(config_warnings)
        self.config: Config = config
        self.store: Store = pipeline.open_store(self.config)
        try:  # a read-only data directory or outbox stops the daemon now, in one line
            pipeline.check_writable(self.config, self.store)
        except BaseException:
            self.store.close()
            raise
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._lock = threading.Lock()  # one job touches the pipeline at a time
        self._send_lock = threading.Lock()  # one delivery run at a time (outbox only)
        self.scheduler = BackgroundScheduler(
            timezone=self.config.settings.timezone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
            },
        )

    # -- jobs --

    def poll_tick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            try:
                # The dedupe index lives in the store: nothing is kept between ticks.
                reports = pipeline.poll_feeds(
                    self.config, self.store, self.clock, due_only=True, stop=self._stop
                )
            except Exception as exc:
                # Not planned sooner: a read-only or full disk would fail every 5 s.
                _failed(exc, "poll tick failed (polling again within %ds)", TICK_SECONDS)
                return
            if reports:
                log.info(
                    "tick feeds=%d new=%d failed=%d",
                    len(reports),
                    sum(r.new for r in reports),
                    sum(1 for r in reports if r.error),
                )
            self._plan_next_poll()

    def _plan_next_poll(self) -> None:
        if self._stop.is_set():
            return
        try:
            due = pipeline.next_poll_at(self.config, self.store)
        except Exception as exc:
            _failed(exc, "planning the next poll failed: polling again within %ds", TICK_SECONDS)
            return
        self._wake_poll(next_poll_wake(self.clock.now(), due))

    def _wake_poll(self, when: datetime) -> None:
        with contextlib.suppress(JobLookupError):  # not added yet, or the scheduler stopped
            self.scheduler.modify_job(POLL_JOB, next_run_time=when)

    def build_digest(self, key: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            digest = next((d for d in self.config.digests if d.key == key), None)
            if digest is None:
                return
            fire = last_fire_time(digest.schedule, self.config.settings.timezone, self.clock.now())
            self._build(key, fire)
        self.send()

    def _build(self, key: str, fire: datetime | None) -> None:
        try:
            reports = pipeline.build_editions(
                self.config, self.store, self.clock, scheduled_for=fire, digests=[key]
            )
        except Exception as exc:
            _failed(
                exc,
                "digest=%s edition failed (nothing is lost: the digest's next run catches up)",
                key,
            )
            return
        log.info(
            "digest=%s edition=%s written=%d skipped=%d",
            key,
            reports[-1].edition_key if reports else "-",
            sum(1 for r in reports if r.path is not None),
            sum(1 for r in reports if r.path is None),
        )

    def catch_up(self) -> list[str]:
        """At start: finish editions a killed run recorded but did not write, and build once
        each digest's latest scheduled edition if it was missed. The digests built."""
        built: list[str] = []
        with self._lock:
            if self._stop.is_set():
                return built
            try:
                pipeline.finish_editions(self.config, self.store, self.clock)
            except Exception as exc:
                _failed(exc, "finishing interrupted editions failed")
            now = self.clock.now()
            for digest in self.config.digests:
                fire = last_fire_time(digest.schedule, self.config.settings.timezone, now)
                marks = self.store.last_editions(digest.key)
                last = max((m.cutoff for m in marks.values()), default=None)
                if needs_catch_up(fire, last):
                    log.info("digest=%s catching up the edition of %s", digest.key, fire)
                    self._build(digest.key, fire)
                    built.append(digest.key)
        self.send()
        return built

    def send(self) -> deliver.DeliveryReport | None:
        """Deliver the pending messages that are due (between messages, a stop is obeyed)."""
        with self._send_lock:
            if self._stop.is_set():
                return None
            try:
                report = pipeline.send(self.config, self.store, self.clock, stop=self._stop)
            except Exception as exc:
                _failed(exc, "delivery failed (tried again within %ds)", SEND_TICK_SECONDS)
                return None
            if report.busy:
                log.info("delivery skipped: %s", report.busy)  # tried again next tick
            elif report.sent or report.failed or report.retrying or report.error:
                log.info(
                    "delivery sent=%d failed=%d retrying=%d waiting=%d%s%s",
                    len(report.sent),
                    len(report.failed),
                    len(report.retrying),
                    report.waiting,
                    f" held={len(report.unrecorded)}" if report.unrecorded else "",
                    f" error={report.error!r}" if report.error else "",
                )
            return report

    # -- lifecycle --

    def _schedule_digests(self) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for digest in self.config.digests:
            self._add_digest_job(digest)

    def _add_digest_job(self, digest: DigestConfig) -> None:
        self.scheduler.add_job(
            self.build_digest,
            cron_trigger(digest.schedule, self.config.settings.timezone),
            args=[digest.key],
            id=f"digest:{digest.key}",
            name=f"digest {digest.key}",
        )

    def add_poll_job(self) -> None:
        # An interval job, so a poll is never more than a tick away even if planning fails;
        # each poll moves its next run to the earliest due feed (_plan_next_poll).
        self.scheduler.add_job(
            self.poll_tick,
            "interval",
            seconds=TICK_SECONDS,
            id=POLL_JOB,
            name="poll due feeds",
            next_run_time=self.clock.now(),
        )

    def _check_credentials(self) -> None:
        """Say at start (and after a reload) when the SMTP credentials the config names are
        not in the environment, not first at the next edition, hours later."""
        try:
            deliver.credentials(self.config.settings.smtp)
        except DeliveryError as exc:
            log.error(
                "%s: no mail can be sent until it is (set it in the service's environment, "
                "e.g. /etc/aggregator/env, then restart)",
                exc,
            )

    def reload(self) -> bool:
        try:
            config, warnings = load_config_with_warnings(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config %s", problem)
            log.error("reload refused: keeping the last good config")
            return False
        _log_config_warnings(warnings)
        config = _keep_start_settings(self.config, config)
        with self._lock:
            before = _enabled_urls(self.config)
            self.config = config
            self._schedule_digests()
        log.info("config reloaded: %d feeds, %d digests", len(config.feeds), len(config.digests))
        self._check_credentials()
        if _enabled_urls(config) - before:
            self._wake_poll(self.clock.now())  # an editor who adds a feed sees it polled now
        return True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload.set()
        else:
            self._stop.set()

    def _config_changed(self) -> bool:
        """feeds.yaml was saved since the last look (an editor's save reloads, like SIGHUP)."""
        mtime = _mtime(self.config_path)
        if mtime == self._config_mtime:
            return False
        self._config_mtime = mtime
        log.info("config %s changed on disk", self.config_path)
        return True

    def _shutdown_within(self, deadline: float) -> None:
        """Stop the scheduler and wait for its running jobs, at most ``deadline`` seconds;
        past it, exit at once (0): the store's transactions are atomic, a message in flight
        stays pending (sent again at the next start: the documented window)."""
        done = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        done.start()
        done.join(deadline)
        if done.is_alive():
            log.error("a job did not finish within %gs: abandoning it", deadline)
            logging.shutdown()
            os._exit(0)

    def run(self) -> None:
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, self._on_signal)
        started: list[Service] = []
        try:
            for service in self.services:
                service.start()
                started.append(service)
            self.add_poll_job()
            self.scheduler.add_job(
                self.catch_up, "date", run_date=self.clock.now(), id="catch-up", name="catch up"
            )
            self.scheduler.add_job(
                self.send,
                "interval",
                seconds=SEND_TICK_SECONDS,
                id="send",
                name="deliver pending messages",
                next_run_time=self.clock.now(),
            )
            self._schedule_digests()
            self.scheduler.start()
            log.info(
                "daemon started: %d feeds, %d digests, config %s",
                len(self.config.feeds),
                len(self.config.digests),
                self.config_path,
            )
            self._check_credentials()
            sd_notify("READY=1")
            while not self._stop.is_set():
                if self._reload.wait(timeout=0.5) or self._config_changed():
                    self._reload.clear()
                    self.reload()
            sd_notify("STOPPING=1")
            log.info("stopping: waiting up to %gs for the running jobs", STOP_DEADLINE)
            self._shutdown_within(STOP_DEADLINE)
        finally:
            for service in reversed(started):
                service.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.store.close()
            log.info("daemon stopped")
