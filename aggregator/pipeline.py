"""Sequencing only: poll due feeds, build editions. Decisions live in the stage modules.

poll_feeds(config, store, clock)
    feeds due now (store)                       -- schedule is data in the store
    -> fetch_many (async, bounded per host)     -- fetch
    -> for each result, as it arrives:
         parse_feed -> extract_item*            -- parse, extract (pure)
         categorize                             -- categorize (pure)
         store.upsert_items + store.record_poll -- every attempt recorded
         next_due                               -- schedule (pure)

build_editions(config, store, clock)
    for each digest, for each subscriber:
         store.story_candidates (since the subscriber's previous edition)
         -> plan_edition                        -- digest (pure)
         -> render_html / render_text -> build_message      -- render
         -> outbox.write_message (atomic, deterministic name)
         -> store.record_edition (stories marked delivered)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path

import jinja2

from . import outbox, render
from .categorize import categorize
from .clock import Clock
from .config import Config, DigestConfig, FeedConfig, Subscriber
from .digest import plan_edition
from .errors import NotAFeedError, ParseError
from .extract import disambiguate_keys, extract_item
from .fetch import fetch_many
from .parse import parse_feed
from .records import Edition, FeedSource, FetchResult, PollOutcome
from .schedule import next_due
from .store import FeedState, PollRecord, Store, sqlite_url

log = logging.getLogger("aggregator.pipeline")


def open_store(config: Config) -> Store:
    return Store.open(config.settings.database_url or sqlite_url(config.settings.data_dir))


# -- polling -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedPollReport:
    url: str
    name: str
    outcome: PollOutcome
    status: int | None
    error: str | None
    new: int
    updated: int
    elapsed_ms: int
    next_due_at: datetime
    warning: str | None = None


def due_feeds(config: Config, store: Store, now: datetime, *, due_only: bool) -> list[FeedConfig]:
    """The configured feeds to poll now; ``due_only=False`` polls every enabled feed."""
    enabled = [f for f in config.feeds if f.enabled]
    store.sync_feeds([(f.url, f.name) for f in enabled], now)
    if not due_only:
        return enabled
    states = {s.url: s for s in store.feed_states([f.url for f in enabled])}
    return [
        f
        for f in enabled
        if states[f.url].next_due_at is None or states[f.url].next_due_at <= now  # type: ignore[operator]
    ]


def poll_feeds(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    due_only: bool = True,
    on_report: Callable[[FeedPollReport], None] | None = None,
) -> list[FeedPollReport]:
    """Poll feeds once (the due ones, or all); every attempt is recorded in the store."""
    chosen = due_feeds(config, store, clock.now(), due_only=due_only)
    if not chosen:
        return []
    states = {s.url: s for s in store.feed_states([f.url for f in chosen])}
    by_url = {f.url: f for f in chosen}
    settings = config.settings
    sources = [
        FeedSource(
            url=f.url,
            etag=states[f.url].etag,
            last_modified=states[f.url].last_modified,
            body_hash=states[f.url].body_hash,
            max_bytes=f.max_bytes or settings.max_bytes,
        )
        for f in chosen
    ]
    reports: list[FeedPollReport] = []

    def handle(result: FetchResult) -> None:
        report = _store_result(config, store, clock, by_url[result.url], states[result.url], result)
        log.info(
            "feed=%s status=%s http=%s new=%d updated=%d ms=%d%s",
            report.url,
            report.outcome.value,
            report.status if report.status is not None else "-",
            report.new,
            report.updated,
            report.elapsed_ms,
            f" error={report.error!r}" if report.error else "",
        )
        reports.append(report)
        if on_report is not None:
            on_report(report)

    asyncio.run(
        fetch_many(
            sources,
            clock=clock,
            user_agent=settings.user_agent,
            concurrency=settings.concurrency,
            per_host=settings.per_host,
            timeout=settings.timeout.total_seconds(),
            on_result=handle,
        )
    )
    return reports


def _store_result(
    config: Config,
    store: Store,
    clock: Clock,
    feed: FeedConfig,
    state: FeedState,
    result: FetchResult,
) -> FeedPollReport:
    now = clock.now()
    outcome, error, warning = result.outcome, result.error, None
    new = updated = 0
    feed_title: str | None = None
    ttl: int | None = None
    if outcome is PollOutcome.UPDATED and result.body is not None:
        try:
            parsed = parse_feed(result.body, url=result.final_url, headers=result.headers)
        except NotAFeedError as exc:
            outcome, error = PollOutcome.ERROR, str(exc)
            if exc.feed_links:
                error += " (the page advertises: " + ", ".join(exc.feed_links) + ")"
        except ParseError as exc:
            outcome, error = PollOutcome.ERROR, str(exc)
        else:
            feed_title, ttl, warning = parsed.title, parsed.ttl_minutes, parsed.warning
            found = [
                item
                for entry in parsed.entries
                if (
                    item := extract_item(
                        entry,
                        feed_url=result.final_url,
                        feed_name=feed.name,
                        feed_title=parsed.title or "",
                        now=now,
                        lead_chars=config.settings.lead_chars,
                    )
                )
                is not None
            ]
            batch = [
                (
                    item,
                    categorize(
                        item.title, item.lead, topics=config.topics, feed_topic=feed.topic
                    ).topic,
                )
                for item in disambiguate_keys(found)
            ]
            counts = store.upsert_items(state.id, batch, now)
            new, updated = counts.new, counts.updated
    due = next_due(
        now,
        key=feed.url,
        outcome=outcome,
        interval=feed.interval or config.settings.poll_interval,
        error_streak=state.error_streak
        if outcome not in (PollOutcome.UPDATED, PollOutcome.NOT_MODIFIED)
        else 0,
        retry_after=result.retry_after,
        ttl_minutes=ttl or state.ttl_minutes,
        max_age_seconds=result.max_age_seconds,
    )
    store.record_poll(
        state.id,
        now,
        result,
        PollRecord(
            outcome=outcome,
            status=result.status,
            error=error,
            elapsed_ms=result.elapsed_ms,
            next_due_at=due,
            new_items=new,
            updated_items=updated,
        ),
        feed_title=feed_title,
        ttl_minutes=ttl,
    )
    return FeedPollReport(
        url=feed.url,
        name=feed.name,
        outcome=outcome,
        status=result.status,
        error=error,
        new=new,
        updated=updated,
        elapsed_ms=result.elapsed_ms,
        next_due_at=due,
        warning=warning,
    )


# -- editions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditionReport:
    digest: str
    recipient: str
    edition_key: str
    stories: int
    path: Path | None  # the .eml written, None when nothing was due
    preview: Path | None
    skipped: str | None = None  # why nothing was written


def subscribers_of(config: Config, digest: DigestConfig) -> list[Subscriber]:
    return [s for s in config.subscribers if not s.digests or digest.key in s.digests]


def plan_for(
    config: Config, store: Store, digest: DigestConfig, subscriber: Subscriber, cutoff: datetime
) -> Edition:
    """The edition this subscriber would get at ``cutoff``; records nothing."""
    first_window_start = cutoff - digest.window
    since = store.last_edition_cutoff(digest.key, subscriber.email) or first_window_start
    candidates = store.story_candidates(
        digest=digest.key,
        recipient=subscriber.email,
        since=since,
        cutoff=cutoff,
        published_after=min(since, first_window_start),
        feed_priority=_priorities(config),
    )
    return plan_edition(
        digest=digest,
        subscriber=subscriber,
        topics=config.topics,
        candidates=candidates,
        scheduled_for=cutoff,
        timezone=config.settings.timezone,
    )


def build_editions(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    scheduled_for: datetime | None = None,
    digests: Sequence[str] | None = None,
) -> list[EditionReport]:
    """Build one edition of each digest (or the named ones) for every subscriber, into outbox/.

    The scheduler passes the fire time as ``scheduled_for``; by hand it is now. Rebuilding the
    same edition writes nothing twice: names are deterministic and the store remembers editions.
    """
    cutoff = scheduled_for or clock.now()
    env = render.make_environment(config.settings.templates)
    box = config.settings.outbox
    reports: list[EditionReport] = []
    for digest in config.digests:
        if digests is not None and digest.key not in digests:
            continue
        for subscriber in subscribers_of(config, digest):
            edition = plan_for(config, store, digest, subscriber, cutoff)
            if store.edition_exists(digest.key, subscriber.email, edition.edition_key):
                reports.append(_skipped(edition, "already built"))
                continue
            if edition.is_empty and not digest.send_empty:
                store.record_edition(
                    digest=digest.key,
                    recipient=subscriber.email,
                    edition_key=edition.edition_key,
                    cutoff=cutoff,
                    now=clock.now(),
                    message_name=None,
                    story_ids=(),
                )
                reports.append(_skipped(edition, "nothing new"))
                continue
            name = outbox.message_name(edition.edition_key, subscriber.email)
            html, text = render_edition(config, env, edition)
            message = render.build_message(
                edition=edition,
                html=html,
                text=text,
                sender=config.settings.sender,
                list_id=list_id(config, digest),
                unsubscribe_mailto=unsubscribe_mailto(config, digest),
                unsubscribe_url=None,
                date=clock.now(),
            )
            path = outbox.write_message(box, name, render.message_bytes(message))
            preview = outbox.write_preview(box, edition.edition_key, html)
            store.record_edition(
                digest=digest.key,
                recipient=subscriber.email,
                edition_key=edition.edition_key,
                cutoff=cutoff,
                now=clock.now(),
                message_name=name,
                story_ids=edition.story_ids,
            )
            log.info(
                "edition=%s recipient=%s stories=%d file=%s",
                edition.edition_key,
                subscriber.email,
                len(edition.story_ids),
                path.name,
            )
            reports.append(
                EditionReport(
                    digest=digest.key,
                    recipient=subscriber.email,
                    edition_key=edition.edition_key,
                    stories=len(edition.story_ids),
                    path=path,
                    preview=preview,
                )
            )
    return reports


def render_edition(config: Config, env: jinja2.Environment, edition: Edition) -> tuple[str, str]:
    digest = next(d for d in config.digests if d.key == edition.digest)
    why = (
        f"You get this because {edition.recipient} is subscribed to the "
        f"'{digest.key}' digest of {parseaddr(config.settings.sender)[0] or 'this brief'}."
    )
    title = parseaddr(config.settings.sender)[0] or digest.key
    mailto = unsubscribe_mailto(config, digest)
    tz = config.settings.timezone
    html = render.render_html(
        env,
        edition,
        digest_title=title,
        timezone=tz,
        unsubscribe_url=None,
        unsubscribe_mailto=mailto,
        why_text=why,
    )
    text = render.render_text(
        env,
        edition,
        digest_title=title,
        timezone=tz,
        unsubscribe_url=None,
        unsubscribe_mailto=mailto,
        why_text=why,
    )
    return html, text


def list_id(config: Config, digest: DigestConfig) -> str:
    domain = parseaddr(config.settings.sender)[1].rpartition("@")[2] or "localhost"
    return f"<{digest.key}.{domain}>"


def unsubscribe_mailto(config: Config, digest: DigestConfig) -> str:
    address = parseaddr(config.settings.sender)[1]
    return f"mailto:{address}?subject=unsubscribe%20{digest.key}"


def _priorities(config: Config) -> Callable[[str], int]:
    table = {f.url: f.priority for f in config.feeds}
    return lambda url: table.get(url, 0)


def _skipped(edition: Edition, why: str) -> EditionReport:
    return EditionReport(
        digest=edition.digest,
        recipient=edition.recipient,
        edition_key=edition.edition_key,
        stories=0,
        path=None,
        preview=None,
        skipped=why,
    )
