"""The daemon: one polling tick, one cron job per digest, signals and reload. No business rules.

every TICK seconds:  pipeline.poll_feeds(due_only=True)   -- the store says which are due
per digest (cron):   pipeline.build_editions(scheduled_for=<fire time>)
SIGHUP:              reload feeds.yaml; an invalid file is refused, the last good one kept
SIGTERM / SIGINT:    stop taking work, let the running job finish, exit 0
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from . import pipeline
from .clock import Clock
from .config import Config, DigestConfig, cron_trigger, load_config
from .errors import ConfigError
from .store import Store

log = logging.getLogger("aggregator.daemon")

TICK_SECONDS = 60
MISFIRE_GRACE = timedelta(hours=6)
CATCH_UP_LOOKBACK = timedelta(days=8)


def last_fire_time(schedule: str, timezone: str, now: datetime) -> datetime | None:
    """The most recent scheduled time at or before ``now`` (within the look-back), or None."""
    trigger = cron_trigger(schedule, timezone)
    fire: datetime | None = None
    t = trigger.get_next_fire_time(None, now - CATCH_UP_LOOKBACK)
    while t is not None and t <= now:
        fire = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return fire


class Daemon:
    def __init__(self, config_path: Path, *, clock: Clock) -> None:
        self.config_path = config_path
        self.clock = clock
        self.config: Config = load_config(config_path)
        self.store: Store = pipeline.open_store(self.config)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._lock = threading.Lock()  # one job touches the pipeline at a time
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
                reports = pipeline.poll_feeds(self.config, self.store, self.clock, due_only=True)
            except Exception:
                log.exception("poll tick failed")
                return
            if reports:
                log.info(
                    "tick feeds=%d new=%d failed=%d",
                    len(reports),
                    sum(r.new for r in reports),
                    sum(1 for r in reports if r.error),
                )

    def build_digest(self, key: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            digest = next((d for d in self.config.digests if d.key == key), None)
            if digest is None:
                return
            fire = last_fire_time(digest.schedule, self.config.settings.timezone, self.clock.now())
            try:
                pipeline.build_editions(
                    self.config, self.store, self.clock, scheduled_for=fire, digests=[key]
                )
            except Exception:
                log.exception("digest=%s failed", key)

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

    def reload(self) -> bool:
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config %s", problem)
            log.error("reload refused: keeping the last good config")
            return False
        with self._lock:
            self.config = config
            self._schedule_digests()
        log.info("config reloaded: %d feeds, %d digests", len(config.feeds), len(config.digests))
        return True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload.set()
        else:
            self._stop.set()

    def run(self) -> None:
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.scheduler.add_job(
                self.poll_tick,
                "interval",
                seconds=TICK_SECONDS,
                id="poll",
                name="poll due feeds",
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
            while not self._stop.is_set():
                if self._reload.wait(timeout=0.5):
                    self._reload.clear()
                    self.reload()
            log.info("stopping: waiting for the running job")
            self.scheduler.shutdown(wait=True)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.store.close()
            log.info("daemon stopped")
