"""Sequencing only: poll due feeds, build editions. Decisions live in the stage modules.

poll_feeds(config, store, clock)
    recategorize, when the topic rules changed  -- categorize + topicmodel: items not yet
                                                   delivered are placed again
    feeds due now (store; new ones get first_due) -- schedule is data in the store
    -> fetch_many (async, bounded per host)     -- fetch
    -> for each result, as it arrives:
         parse_body: parse_feed -> extract_item* -> label_items (topic, evidence, filters)
                                                -- in a process pool (both cores) when
                                                   many feeds are polled; pure
         next_due                               -- schedule (pure)
         buffered; every few hundred feeds:
         store.record_polls                     -- items + feed row + polls row, one
                                                   transaction for the batch; a new item
                                                   joins the story of its canonical link,
                                                   else of a near-duplicate: the window's
                                                   items sharing an LSH band key (the
                                                   store's item_bands, looked up in memory:
                                                   bandindex), verified by StoryMatcher

build_editions(config, store, clock)
    for each digest:
         store.unwritten_editions -> rendered again, written, marked   -- a run killed midway
         store.max_story_id (the watermark), store.last_editions
         store.story_candidates, once per group of subscribers whose previous edition
           ended at the same place: first seen in (previous cutoff, cutoff], or committed
           after the previous watermark
         -> plan_edition, once per topic set    -- digest (pure)
         -> render_shared, once per distinct edition; drop_lowest until the encoded HTML
            is under 90 KB                      -- render + digest
         -> store.record_editions (stories delivered), one transaction
         -> per subscriber: personalise -> compose -> outbox.write_message (atomic,
            deterministic name; a message already pending or sent is left alone)
         -> store.mark_written

send(config, store, clock)
    deliver.deliver_pending (outbox/pending -> SMTP -> sent/ or failed/); for each message
    the server accepted, store.record_sent (editions.sent_at) before the move to sent/

preview_edition(config, store, clock, subscriber= | topics=)
    the same choice and rendering for one reader, into outbox/previews/; records nothing
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import locks
from .categorize import Rules, label_items
from .clock import Clock
from .config import (
    DEFAULT_MAX_ENTRIES,
    Config,
    DigestConfig,
    FeedConfig,
    Filters,
    Subscriber,
    format_duration,
)
from .dedupe import (
    BAND_SCHEME,
    StoryMatcher,
    band_keys_many,
    cached_features,
    features,
    pack_keys,
)
from .digest import (
    MAX_PER_TOPIC,
    MAX_TOTAL,
    PLANNED,
    PUBLISHED_GRACE,
    Placement,
    drop_lowest,
    edition_key,
    is_archive,
    plan_edition,
    published_after,
    recorded_edition,
    story_placement,
    why_no_candidate,
)
from .errors import DeliveryError, NotAFeedError, ParseError, error_text, is_environmental
from .fetch import fetch_many
from .records import (
    Edition,
    FeedSource,
    FetchResult,
    Item,
    PollOutcome,
    StoryCandidate,
    TopicLabel,
    feed_display_name,
)
from .schedule import feed_health, first_due, next_due
from .store import (
    Delivery,
    EditionMark,
    EditionRecord,
    FeedState,
    PollRecord,
    PollWrite,
    Store,
    StoredItem,
    sqlite_url,
)
from .topicmodel import TopicModel, file_key, usable_model

if TYPE_CHECKING:  # imported when used: a poll of unchanged feeds never needs them
    from concurrent.futures import Executor

    import jinja2

    from . import deliver as deliver_types
    from . import render as render_types

log = logging.getLogger("aggregator.pipeline")


def open_store(config: Config) -> Store:
    return Store.open(config.settings.database_url or sqlite_url(config.settings.data_dir))


def check_writable(config: Config, store: Store) -> None:
    """StoreError or DeliveryError, with the path and the reason, unless the database and
    every outbox folder take a write: for the daemon's start (a read-only data directory, a
    folder its user may not write), rather than a failure at every job."""
    from . import outbox

    store.check_writable()
    outbox.check_writable(config.settings.outbox)


# -- polling -----------------------------------------------------------------------------------


POOL_MIN_FEEDS = 8  # polls of fewer feeds parse in this process
FLUSH_FEEDS = 256  # write buffered poll results after this many feeds ...
FLUSH_ITEMS = 1000  # ... or this many items, whichever comes first ...
# ... or once the first of them has waited this long: a feed that takes its whole timeout
# must not hold back what the others brought (nor lose it to a kill meanwhile).
FLUSH_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class FeedPollReport:
    url: str
    name: str  # as shown: records.feed_display_name, with the title this poll brought
    outcome: PollOutcome
    status: int | None
    error: str | None
    new: int
    updated: int
    elapsed_ms: int
    next_due_at: datetime | None  # None: not polled again by the scheduler (410 Gone)
    note: str | None = None  # ParsedBody.note


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """What one fetched body came to. Made by parse_body (in a worker process or not)."""

    # In feed order, keys disambiguated; without the entries a stored item already holds.
    items: tuple[tuple[Item, TopicLabel], ...]
    title: str | None  # the feed's <title>
    ttl_minutes: int | None  # RSS <ttl>
    # What an editor should know, the body being a feed: entries it lists that could not be
    # stored (or that it lists none), and parse's complaint about sloppy XML.
    note: str | None
    error: str | None  # the body is no feed we can read: why (items then empty)
    # Each item's dedupe band keys (dedupe.band_keys), made here so the parse workers carry
    # that cost, not the process that writes.
    band_keys: tuple[bytes, ...] = ()  # dedupe.pack_keys


def parse_body(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    feed_name: str,
    feed_topic: str | None,
    rules: Rules,
    lead_chars: int,
    tracking_params: Sequence[str] = (),  # settings.tracking_params (issue 4)
    now: datetime,
    feed_filters: Filters | None = None,
    examples: Path | None = None,
    known: frozenset[str] = frozenset(),
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> ParsedBody:
    """parse -> extract -> categorize for one body: pure, and cheap to send to a process.

    `max_entries`: settings.max_entries; of a feed listing more, only the newest are read.

    `examples`: the topic examples file; its model is fitted once per process and version.
    `known`: the entry fingerprints of the feed's stored items (store.entry_hashes); those
    entries are left out of the result, since the store already holds what they would give.
    """
    from .categorize import label_items
    from .extract import (
        ExtractInputs,
        anchored_entries,
        disambiguate_keys,
        entry_fingerprints,
        feed_title_text,
        one_item_per_link,
        unchanged_entries,
    )
    from .parse import newest_entries, parse_feed

    try:
        parsed = parse_feed(body, url=url, headers=headers)
    except NotAFeedError as exc:
        error = str(exc)
        if exc.feed_links:
            error += " (the page advertises: " + ", ".join(exc.feed_links) + ")"
        return ParsedBody((), None, None, None, error)
    except ParseError as exc:
        return ParsedBody((), None, None, None, str(exc))
    entries = newest_entries(parsed.entries, max_entries)
    inputs = ExtractInputs(
        feed_url=url,
        feed_name=feed_name,
        feed_title=parsed.title or "",
        lead_chars=lead_chars,
        extra_tracking=tuple(tracking_params),
    )
    anchored = anchored_entries(entries, inputs)
    fingerprints = entry_fingerprints(entries, inputs, anchored=anchored)
    unchanged = unchanged_entries(entries, fingerprints, known, inputs, anchored=anchored)
    found = [
        replace(item, entry_hash=fingerprints[i])
        for i, entry in enumerate(entries)
        if i not in unchanged
        and (item := inputs.extract(entry, now=now, anchored=i in anchored)) is not None
    ]
    dropped = len(entries) - len(unchanged) - len(found)
    notes = [parsed.warning] if parsed.warning else []
    if len(entries) < len(parsed.entries):
        notes.append(
            f"the feed lists {len(parsed.entries)} entries: only the newest {len(entries)} "
            "are read (settings.max_entries)"
        )
    if not entries:
        notes.insert(0, "the feed lists no entries")
    elif dropped:
        notes.insert(
            0,
            f"{dropped} of {len(entries)} entries have no title, http(s) link or text: not stored",
        )
    note = "; ".join(notes) or None
    found = one_item_per_link(disambiguate_keys(found))
    labels = label_items(
        found,
        rules=rules,
        feed_topic=feed_topic,
        feed_filters=feed_filters,
        model=usable_model(examples, [t.key for t in rules.topics]) if found else None,
    )
    items = tuple(zip(found, labels, strict=True))
    # Uncached: a parse worker never needs an item's features twice, and the cache would hold
    # ~15 MB a worker. (Parsed in the writing process, story_for computes them once more.)
    keys = band_keys_many([features(i.title, i.lead) for i in found])
    packed = tuple(map(pack_keys, keys))
    title = feed_title_text(parsed.title)
    return ParsedBody(items, title, parsed.ttl_minutes, note, None, packed)


def due_feeds(config: Config, store: Store, now: datetime, *, due_only: bool) -> list[FeedConfig]:
    """The configured feeds to poll now; ``due_only=False`` polls every enabled feed."""
    return [feed for feed, _ in _due(config, store, now, due_only=due_only)]


def _due(
    config: Config, store: Store, now: datetime, *, due_only: bool
) -> list[tuple[FeedConfig, FeedState]]:
    """Due feeds with their stored state. New feeds get their first due time here; gone ones
    (410) are left to the editor: only a poll by hand (``due_only=False``) tries them."""
    enabled = [f for f in config.feeds if f.enabled]
    intervals = {f.url: f.interval or config.settings.poll_interval for f in enabled}
    store.sync_feeds(
        [(f.url, f.name) for f in enabled],
        now,
        first_due=lambda url, added: first_due(
            now, key=url, interval=intervals[url], added_together=added
        ),
    )
    states = {s.url: s for s in store.feed_states(counts=False)}
    chosen = []
    for feed in enabled:
        state = states[feed.url]
        if due_only and (
            state.gone_at is not None or (state.next_due_at is not None and state.next_due_at > now)
        ):
            continue
        chosen.append((feed, state))
    return chosen


def poll_feeds(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    due_only: bool = True,
    on_report: Callable[[FeedPollReport], None] | None = None,
    parse_workers: int | None = None,
    stories: StoryMatcher | None = None,
    stop: threading.Event | None = None,
) -> list[FeedPollReport]:
    """Poll feeds once (the due ones, or all); every attempt is recorded in the store.

    Bodies are parsed in `parse_workers` processes (default: one per CPU) when at least
    POOL_MIN_FEEDS feeds are polled; 0 or 1 parses in this process. ``stories``: the dedupe
    matcher (default: one from the settings); its index lives in the store (item_bands).
    """
    recategorize(config, store, clock, only_if_changed=True)
    prune_polls(config, store, clock.now())
    chosen = _due(config, store, clock.now(), due_only=due_only)
    if not chosen:
        return []
    workers = os.cpu_count() or 1 if parse_workers is None else parse_workers
    poller = _Poller(config, store, clock, chosen, on_report, workers, stories)
    settings = config.settings
    fetching = fetch_many(
        poller.sources(),
        clock=clock,
        user_agent=settings.user_agent,
        concurrency=settings.concurrency,
        per_host=settings.per_host,
        timeout=settings.timeout.total_seconds(),
        block_private_addresses=settings.block_private_addresses,
        on_result=poller.handle,
    )
    work = poller.run(fetching)
    try:
        asyncio.run(work if stop is None else _until_stopped(work, stop))
    finally:
        poller.close()  # what was handled before a stop is written; the rest stays due
    return poller.reports


PRUNE_EVERY = timedelta(days=1)


def prune_polls(config: Config, store: Store, now: datetime) -> int | None:
    """At most once a PRUNE_EVERY, delete the poll attempts older than settings.keep_polls:
    one row per feed per poll (~100,000 a day for 2,000 feeds every 30 minutes) would
    otherwise grow the database for ever. The rows deleted, or None when not due yet."""
    if not _daily(store, "polls_pruned_at", now):
        return None
    deleted = store.prune_polls(now - config.settings.keep_polls)
    if deleted:
        log.info("polls pruned=%d keep=%s", deleted, format_duration(config.settings.keep_polls))
    return deleted


def prune_outbox(config: Config, store: Store, now: datetime) -> int | None:
    """At most once a PRUNE_EVERY, delete what outbox/sent and outbox/previews hold from
    before settings.keep_sent (a message for every subscriber every day otherwise fills the
    disk; the store, not the files, records what was built and sent). The files deleted, or
    None when not due yet (or the database cannot record that it ran: housekeeping never
    keeps the mail of ``send`` from going out)."""
    from . import outbox

    try:
        due = _daily(store, "outbox_pruned_at", now)
    except Exception as exc:  # a full or read-only database: mail still goes (send)
        if not is_environmental(exc):
            raise
        log.warning("outbox prune skipped (tried again later): %s", error_text(exc))
        return None
    if not due:
        return None
    try:
        deleted = outbox.prune(config.settings.outbox, now - config.settings.keep_sent)
    except DeliveryError as exc:  # housekeeping: it must not keep the mail from going out
        log.warning("outbox prune failed (tried again tomorrow): %s", exc)
        return 0
    if deleted:
        log.info("outbox pruned=%d keep=%s", deleted, format_duration(config.settings.keep_sent))
    return deleted


def _daily(store: Store, meta_key: str, now: datetime) -> bool:
    """Whether a PRUNE_EVERY job is due (its last run is kept in meta under ``meta_key``);
    when it is, it counts as run now."""
    last = store.get_meta(meta_key)
    if last is not None and now - datetime.fromisoformat(last) < PRUNE_EVERY:
        return False
    store.set_meta(meta_key, now.isoformat())
    return True


STOP_CHECK_SECONDS = 0.1  # how often a poll looks at its stop event


async def _until_stopped(work: Coroutine[Any, Any, object], stop: threading.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set; then cancel it (the daemon's SIGTERM):
    fetches in flight are abandoned, results already handled are kept."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
        if stop.is_set() and not task.done():
            log.info("poll stopped: abandoning the fetches in flight")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
    task.result()


class _Poller:
    """The state of one poll_feeds call: parse pool, write buffer, reports."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        chosen: Sequence[tuple[FeedConfig, FeedState]],
        on_report: Callable[[FeedPollReport], None] | None,
        workers: int,
        stories: StoryMatcher | None = None,
    ) -> None:
        self.config = config
        self.rules = Rules.from_config(config)
        self.store = store
        self.clock = clock
        self.chosen = chosen
        self.by_url = {feed.url: (feed, state) for feed, state in chosen}
        self.on_report = on_report
        self.use_pool = workers > 1 and len(chosen) >= POOL_MIN_FEEDS
        self.workers = workers
        self.pool: Executor | None = None
        self.pending: list[tuple[PollWrite, FeedConfig]] = []
        self.pending_items = 0
        self.reports: list[FeedPollReport] = []
        self.write_lock = asyncio.Lock()
        self.write_mutex = threading.Lock()
        self.stories = stories or story_matcher(config)
        self.stories_ready = False  # the band index checked and pruned for this poll
        # Armed when the buffer gets its first result, stopped when the buffer is taken: the
        # buffer is written once that result has waited FLUSH_AFTER_SECONDS.
        self.linger: asyncio.TimerHandle | None = None
        self.lingered: set[asyncio.Task[None]] = set()  # the writes the timer started

    async def run(self, fetching: Coroutine[Any, Any, object]) -> None:
        """The fetches; then the wait for the writes the linger timer started."""
        try:
            await fetching
        finally:
            self._stop_linger()
            await asyncio.gather(*self.lingered)

    def sources(self) -> list[FeedSource]:
        default_max = self.config.settings.max_bytes
        return [
            FeedSource(
                url=feed.url,
                etag=state.etag,
                last_modified=state.last_modified,
                body_hash=state.body_hash,
                max_bytes=feed.max_bytes or default_max,
            )
            for feed, state in self.chosen
        ]

    async def handle(self, result: FetchResult) -> None:
        feed, state = self.by_url[result.url]
        now = self.clock.now()
        outcome, error = result.outcome, result.error
        parsed: ParsedBody | None = None
        if outcome is PollOutcome.UPDATED and result.body is not None:
            # A feed polled before: its stored entries are not extracted again.
            known = self.store.entry_hashes(state.id) if state.last_success_at else frozenset()
            parsed = await self._parse(result, feed, now, known)
            if parsed.error is not None:
                outcome, error = PollOutcome.ERROR, parsed.error
            elif feed.fetch_article and parsed.items:
                parsed = await self._article_leads(feed, parsed)
            # Only a feed's first successful poll finds its archive (digest.is_archive): the
            # items of every later poll are left as they are, without a copy.
            if parsed.items and state.last_success_at is None:
                parsed = _mark_archive(parsed, first_poll=True)
        ok = outcome in (PollOutcome.UPDATED, PollOutcome.NOT_MODIFIED)
        ttl = parsed.ttl_minutes if parsed else None
        due = next_due(
            now,
            key=feed.url,
            outcome=outcome,
            interval=feed.interval or self.config.settings.poll_interval,
            error_streak=0 if ok else state.error_streak,
            retry_after=result.retry_after,
            ttl_minutes=ttl or state.ttl_minutes,
            max_age_seconds=result.max_age_seconds,
        )
        write = PollWrite(
            feed_id=state.id,
            at=now,
            # Without its body: a write waits in the buffer with up to FLUSH_FEEDS others.
            result=result if result.body is None else replace(result, body=None),
            record=PollRecord(
                outcome=outcome,
                status=result.status,
                error=error,
                elapsed_ms=result.elapsed_ms,
                next_due_at=due,
                note=parsed.note if parsed else None,
            ),
            items=parsed.items if parsed else (),
            feed_title=parsed.title if parsed else None,
            ttl_minutes=ttl,
        )
        if parsed and parsed.band_keys:
            self.stories.remember([item for item, _ in parsed.items], parsed.band_keys)
        if not self.pending:  # the first result of a batch starts its clock
            self.linger = asyncio.get_running_loop().call_later(FLUSH_AFTER_SECONDS, self._lingered)
        self.pending.append((write, feed))
        self.pending_items += len(write.items)
        if self._full():
            # Written in a thread, so the loop keeps the parse pool busy meanwhile. The batch is
            # taken only once the writer is free: while it writes, handlers that find the buffer
            # full wait here (holding their fetch slot), so at most one batch is being written
            # and one filling; parsing never runs far ahead of a slower writer.
            async with self.write_lock:
                if self._full():  # else a handler that waited before us took it
                    await asyncio.to_thread(self._write, self._take())

    def _full(self) -> bool:
        return len(self.pending) >= FLUSH_FEEDS or self.pending_items >= FLUSH_ITEMS

    def _stop_linger(self) -> None:
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None

    def _lingered(self) -> None:
        """The buffer's first result has waited FLUSH_AFTER_SECONDS: write the buffer."""
        self.linger = None
        task = asyncio.ensure_future(self._write_lingered())
        self.lingered.add(task)
        task.add_done_callback(self.lingered.discard)

    async def _write_lingered(self) -> None:
        async with self.write_lock:  # after the write under way, if any
            if self.pending:  # else a full buffer was taken meanwhile
                await asyncio.to_thread(self._write, self._take())

    async def _parse(
        self, result: FetchResult, feed: FeedConfig, now: datetime, known: frozenset[str]
    ) -> ParsedBody:
        assert result.body is not None
        work = functools.partial(
            parse_body,
            result.body,
            url=result.final_url,
            headers=result.headers,
            # What a headline's " - Site" may name: the editor's name, else the host (the
            # feed's own title comes from the body, apart)
            feed_name=feed_display_name(feed.name, None, feed.url),
            feed_topic=feed.topic,
            rules=self.rules,
            lead_chars=self.config.settings.lead_chars,
            tracking_params=self.config.settings.tracking_params,
            now=now,
            feed_filters=feed.filters,
            examples=self.config.settings.topic_examples,
            known=known,
            max_entries=self.config.settings.max_entries,
        )
        if not self.use_pool:
            return work()
        if self.pool is None:
            # Fitted here, once per process and examples version: forked workers inherit it.
            usable_model(self.config.settings.topic_examples, [t.key for t in self.config.topics])
            self.pool = _parse_pool(self.workers)
        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def _article_leads(self, feed: FeedConfig, parsed: ParsedBody) -> ParsedBody:
        """fetch_article: new items that came without a lead get one from their page."""
        from . import article

        known = self.store.items(feed_url=feed.url)
        todo = article.wanted(
            [item for item, _ in parsed.items],
            known_keys={i.key for i in known},
            known_links={i.link for i in known if i.link},
        )
        if not todo:
            return parsed
        settings = self.config.settings
        leads = await article.fetch_article_leads(
            todo,
            clock=self.clock,
            lead_chars=settings.lead_chars,
            max_bytes=min(feed.max_bytes or settings.max_bytes, article.MAX_ARTICLE_BYTES),
            user_agent=settings.user_agent,
            timeout=settings.timeout.total_seconds(),
            per_host=settings.per_host,
            block_private_addresses=settings.block_private_addresses,
        )
        items = [
            (article.with_article_lead(item, leads.get(item.key, "")), label)
            for item, label in parsed.items
        ]
        # The topic and the filters were decided on the headline alone: decide again with the
        # lead (a page that says "markets" puts a vague headline in Business).
        changed = [i for i, (item, _) in enumerate(items) if item.lead != parsed.items[i][0].lead]
        if changed:
            topics = [t.key for t in self.rules.topics]
            labels = label_items(
                [items[i][0] for i in changed],
                rules=self.rules,
                feed_topic=feed.topic,
                feed_filters=feed.filters,
                model=usable_model(settings.topic_examples, topics),
            )
            for i, label in zip(changed, labels, strict=True):
                items[i] = (items[i][0], label)
        # Leads changed, so the workers' band keys no longer fit: the writer makes them anew.
        return replace(parsed, items=tuple(items), band_keys=())

    def flush(self) -> None:
        """Write the buffered attempts (one transaction) and report them."""
        self._write(self._take())

    def _take(self) -> list[tuple[PollWrite, FeedConfig]]:
        """The buffer, emptied; its linger timer stops (the next result starts another)."""
        self._stop_linger()
        batch, self.pending, self.pending_items = self.pending, [], 0
        return batch

    def _write(self, batch: list[tuple[PollWrite, FeedConfig]]) -> None:
        if not batch:
            return
        # A poll cancelled mid-write (SIGTERM) leaves its thread writing; the final flush waits.
        with self.write_mutex:
            self._write_locked(batch)

    def _write_locked(self, batch: list[tuple[PollWrite, FeedConfig]]) -> None:
        if not self.stories_ready and any(write.items for write, _ in batch):
            band_window(self.config, self.store, self.clock.now())
            self.stories_ready = True
        try:
            counts = self.store.record_polls([write for write, _ in batch], stories=self.stories)
        finally:
            self.stories.forget(item for write, _ in batch for item, _ in write.items)
        for (write, feed), counted in zip(batch, counts, strict=True):
            record = write.record
            # The title as the store now has it: this poll's, else the one kept before.
            title = write.feed_title or self.by_url[feed.url][1].title
            report = FeedPollReport(
                url=feed.url,
                name=feed_display_name(feed.name, title, feed.url),
                outcome=record.outcome,
                status=record.status,
                error=record.error,
                new=counted.new,
                updated=counted.updated,
                elapsed_ms=record.elapsed_ms,
                next_due_at=record.next_due_at,
                note=record.note,
            )
            # An operator running at the default level (warning) still hears of every feed
            # that failed, and when it is tried again; successes are info.
            failed = report.outcome in _FAILED_OUTCOMES
            log.log(
                logging.WARNING if failed else logging.INFO,
                "feed=%s status=%s http=%s new=%d updated=%d ms=%d%s%s%s",
                report.url,
                report.outcome.value,
                report.status if report.status is not None else "-",
                report.new,
                report.updated,
                report.elapsed_ms,
                f" error={report.error!r}" if report.error else "",
                f" note={report.note!r}" if report.note else "",
                f" next={report.next_due_at.isoformat()}"
                if failed and report.next_due_at is not None
                else "",
            )
            self.reports.append(report)
            if self.on_report is not None:
                self.on_report(report)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)


def _mark_archive(parsed: ParsedBody, *, first_poll: bool) -> ParsedBody:
    """``parsed`` with the items that are the feed's archive (digest.is_archive) marked so."""
    items = tuple(
        (replace(item, archived=True), label)
        if is_archive(item.published_at, first_poll=first_poll)
        else (item, label)
        for item, label in parsed.items
    )
    return replace(parsed, items=items)


_FAILED_OUTCOMES = frozenset({PollOutcome.ERROR, PollOutcome.GONE, PollOutcome.RATE_LIMITED})


def story_matcher(config: Config) -> StoryMatcher:
    d = config.settings.dedupe
    return StoryMatcher(
        window=d.window,
        title_threshold=d.title_threshold,
        lead_threshold=d.lead_threshold,
        combined_threshold=d.combined_threshold,
    )


BAND_BATCH = 2000  # items banded per read when the window is banded again


def band_window(config: Config, store: Store, now: datetime) -> int:
    """Keep the store's dedupe index (item_bands) to the window: forget the keys of items
    first seen before it; when the keys were made another way (BAND_SCHEME, e.g. by an older
    version, or none yet), band the window's items again, BAND_BATCH at a time. The items
    banded again (0 on every poll but the first after an upgrade)."""
    since = now - config.settings.dedupe.window
    banded = 0
    if store.get_meta("dedupe_bands") != BAND_SCHEME:
        store.clear_story_bands()
        after = 0
        while chunk := store.recent_items(since, after_id=after, limit=BAND_BATCH):
            keys = band_keys_many([cached_features(r.title, r.lead) for r in chunk])
            store.add_story_bands([(r.id, k) for r, k in zip(chunk, keys, strict=True)])
            banded += len(chunk)
            after = chunk[-1].id
        store.set_meta("dedupe_bands", BAND_SCHEME)
    store.prune_story_bands(since)
    return banded


def _parse_pool(workers: int) -> Executor:
    """Worker processes for parse_body. Forked where possible: a fork starts in milliseconds.
    The parsers (lxml, feedparser) are imported by the workers, not here: the process that
    writes never needs them, and its memory is the poll's peak. numpy is imported here: the
    writer's dedupe index needs it too, and forked workers then inherit it instead of each
    importing it again (0.1-0.3 CPU s a worker)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numpy  # noqa: F401

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


# -- feed health -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """One feed as `aggregator status` shows it: config, stored state and health flags."""

    url: str
    name: str  # as shown: records.feed_display_name
    enabled: bool
    state: FeedState | None  # None: never synced to the store yet
    flags: tuple[str, ...]  # "failing", "gone", "stale" (see schedule.feed_health)


def feed_status(config: Config, store: Store, now: datetime) -> list[FeedStatus]:
    """Every configured feed with its stored state and health, in config order."""
    states = {s.url: s for s in store.feed_states(now=now)}
    out = []
    for feed in config.feeds:
        state = states.get(feed.url)
        flags: tuple[str, ...] = ()
        if state is not None:
            flags = feed_health(
                now,
                error_streak=state.error_streak,
                gone=state.gone_at is not None,
                last_new_item_at=state.last_new_item_at,
                added_at=state.added_at,
                stale_after=config.settings.stale_after,
            )
        title = state.title if state is not None else None
        name = feed_display_name(feed.name, title, feed.url)
        out.append(FeedStatus(feed.url, name, feed.enabled, state, flags))
    return out


def feed_names(config: Config, store: Store) -> dict[str, str]:
    """Every configured feed's name as shown (records.feed_display_name), by URL: the
    editor's name, else the title the store kept from the feed's last fetch, else its host."""
    titles = {s.url: s.title for s in store.feed_states(counts=False)}
    return {f.url: feed_display_name(f.name, titles.get(f.url), f.url) for f in config.feeds}


def needs_attention(feed: FeedStatus) -> bool:
    """What `status --problems` keeps: a flag (failing, gone, stale), a permanent move the
    editor has not copied into feeds.yaml yet, or a note on a body that gave less than it
    listed. A disabled or not yet polled feed is the editor's choice or a matter of time."""
    st = feed.state
    return bool(feed.flags or (st and (st.moved_to or st.last_note)))


def health_summary(found: Sequence[FeedStatus]) -> dict[str, int]:
    """Counts for the one line an operator reads first: how many feeds, how many of them fine
    (enabled, polled, nothing to say), and how many of each kind of trouble. A feed can count
    under several troubles (failing and stale)."""
    counts = dict.fromkeys(
        ("feeds", "ok", "failing", "gone", "stale", "moved", "noted", "never_polled", "disabled"),
        0,
    )
    counts["feeds"] = len(found)
    for feed in found:
        st = feed.state
        for flag in feed.flags:
            counts[flag] = counts.get(flag, 0) + 1
        if not feed.enabled:
            counts["disabled"] += 1
        elif st is None or st.last_poll_at is None:
            counts["never_polled"] += 1
        elif not needs_attention(feed):
            counts["ok"] += 1
        if st and st.moved_to:
            counts["moved"] += 1
        if st and st.last_note:
            counts["noted"] += 1
    return counts


def summary_line(summary: dict[str, int]) -> str:
    """The summary as one line, e.g. 500 feeds: 495 ok, 3 failing, 2 stale. Only counts
    that are not zero, troubles in the order an operator acts on them."""
    words = [
        ("ok", "ok"),
        ("failing", "failing"),
        ("gone", "gone"),
        ("stale", "stale"),
        ("moved", "moved"),
        ("noted", "with a note"),
        ("never_polled", "not polled yet"),
        ("disabled", "disabled"),
    ]
    parts = [f"{summary[key]} {word}" for key, word in words if summary.get(key)]
    total = summary["feeds"]
    return f"{total} feed{'' if total == 1 else 's'}: {', '.join(parts) or 'none configured'}"


def next_poll_at(config: Config, store: Store) -> datetime | None:
    """The earliest time an enabled, not-gone feed is due (for a scheduler that sleeps until
    then, so the poller is never the reason a feed is polled late)."""
    enabled = {f.url for f in config.feeds if f.enabled}
    dues = [
        s.next_due_at
        for s in store.feed_states(counts=False)
        if s.url in enabled and s.gone_at is None and s.next_due_at is not None
    ]
    return min(dues, default=None)


# -- discovery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    """What `aggregator discover URL` found."""

    url: str
    final_url: str
    error: str | None  # the page could not be fetched: why
    is_feed: bool  # the URL is itself a feed
    feed_links: tuple[str, ...]  # feeds the page advertises (<link rel="alternate">)
    title: str | None = None  # the feed's title, when the URL is a feed


def discover(
    config: Config, clock: Clock, url: str, *, timeout: timedelta | None = None
) -> Discovery:
    """Fetch `url` (same limits and guards as a poll) and say which feeds it is or names."""
    from .parse import discover_feed_links, parse_feed

    settings = config.settings
    [result] = asyncio.run(
        fetch_many(
            [FeedSource(url=url, max_bytes=settings.max_bytes)],
            clock=clock,
            user_agent=settings.user_agent,
            timeout=(timeout or settings.timeout).total_seconds(),
            block_private_addresses=settings.block_private_addresses,
        )
    )
    if result.outcome is not PollOutcome.UPDATED or result.body is None:
        return Discovery(url, result.final_url, result.error or "no body", False, ())
    try:
        parsed = parse_feed(result.body, url=result.final_url, headers=result.headers)
    except NotAFeedError as exc:
        return Discovery(url, result.final_url, None, False, exc.feed_links)
    except ParseError:
        links = discover_feed_links(result.body, result.final_url)
        return Discovery(url, result.final_url, None, False, tuple(links))
    return Discovery(url, result.final_url, None, True, (), parsed.title)


# -- topics ------------------------------------------------------------------------------------

TOPICS_FINGERPRINT = "topics_fingerprint"  # store meta key: the rules items were placed with
RECATEGORIZE_AT_LEAST = timedelta(days=7)  # how far back recategorize looks (or a digest window)


@dataclass(frozen=True, slots=True)
class RecategorizeReport:
    checked: int  # undelivered items placed again
    moved: int  # ... whose topic changed
    filtered: int  # ... now filtered that were not (negative: released)
    skipped: bool = False  # the rules had not changed: nothing was done


def topic_model(config: Config) -> TopicModel | None:
    """The model learned from settings.topic_examples (None without one, or when the file has
    problems: they are logged, and topics fall back to the rules)."""
    return usable_model(config.settings.topic_examples, [t.key for t in config.topics])


def topics_fingerprint(config: Config) -> str:
    from .categorize import fingerprint

    path = config.settings.topic_examples
    return fingerprint(config, file_key(path) if path is not None and path.is_file() else None)


def recategorize(
    config: Config, store: Store, clock: Clock, *, only_if_changed: bool = False
) -> RecategorizeReport:
    """Place again every recent item whose story was not delivered yet, with the current
    topics, filters and examples. Delivered stories keep the topic they were sent under.

    Run at the start of each poll when the rules' fingerprint differs from the stored one
    (``only_if_changed``), and by `aggregator recategorize`.
    """
    current = topics_fingerprint(config)
    if only_if_changed and store.get_meta(TOPICS_FINGERPRINT) == current:
        return RecategorizeReport(0, 0, 0, skipped=True)
    windows = [d.window for d in config.digests]
    since = clock.now() - max([RECATEGORIZE_AT_LEAST, *windows])
    pending = store.undelivered_items(since=since)
    model = topic_model(config) if pending else None
    rules = Rules.from_config(config)
    feeds = {f.url: f for f in config.feeds}
    by_feed: dict[str, list[StoredItem]] = {}
    for it in pending:
        by_feed.setdefault(it.feed_url, []).append(it)
    updates: list[tuple[int, TopicLabel]] = []
    moved = filtered = 0
    for url, members in by_feed.items():
        feed = feeds.get(url)
        labels = label_items(
            members,
            rules=rules,
            feed_topic=feed.topic if feed else None,
            feed_filters=feed.filters if feed else None,
            model=model,
        )
        for it, label in zip(members, labels, strict=True):
            moved += label.topic != it.topic
            filtered += int(label.filtered) - int(it.filtered)
            updates.append((it.id, label))
    store.relabel_items(updates)
    store.set_meta(TOPICS_FINGERPRINT, current)
    if pending:
        log.info("recategorized items=%d moved=%d filtered=%+d", len(pending), moved, filtered)
    return RecategorizeReport(len(pending), moved, filtered)


def topics_report(config: Config, store: Store, *, since: datetime | None) -> dict[str, Any]:
    """Items per topic and per feed since `since`, and the words most found in items that
    fell to the fallback topic (stop-words and existing keywords left out), JSON-ready."""
    from .categorize import frequent_words

    found = store.items(since=since)
    fallback = config.settings.fallback_topic
    sections = [(t.key, t.title) for t in config.topics] + [(fallback.key, fallback.title)]
    shown = [it for it in found if not it.filtered]
    per_topic = {key: 0 for key, _ in sections}
    per_feed: dict[str, dict[str, int]] = {}  # by URL: two feeds may be shown alike
    names: dict[str, str] = {}
    for it in shown:
        per_topic[it.topic] = per_topic.get(it.topic, 0) + 1
        counts = per_feed.setdefault(it.feed_url, {})
        counts[it.topic] = counts.get(it.topic, 0) + 1
        names[it.feed_url] = it.feed_name
    titles = dict(sections)
    keywords = [k for t in config.topics for k in t.keywords]
    fell = [f"{it.title} {it.lead}" for it in shown if it.topic == fallback.key]
    return {
        "since": _iso(since),
        "items": len(found),
        "filtered": len(found) - len(shown),
        "fallback": fallback.key,
        "topics": [
            {"topic": key, "title": titles.get(key, key), "items": n}
            for key, n in per_topic.items()
        ],
        "feeds": [
            {"feed": names[url], "url": url, "items": sum(counts.values()), "topics": counts}
            for url, counts in sorted(per_feed.items(), key=lambda kv: (names[kv[0]], kv[0]))
        ],
        "fallback_words": [[w, n] for w, n in frequent_words(fell, n=25, ignore=keywords)],
    }


def explain_topic(config: Config, store: Store, item: StoredItem) -> dict[str, dict[str, object]]:
    """The "topic" and "filters" sections of `explain`: what was stored, and what the current
    rules and model make of the item (every topic's score, matched terms, model terms)."""
    from .categorize import categorize, filter_item

    feed = next((f for f in config.feeds if f.url == item.feed_url), None)
    rules = Rules.from_config(config)
    model = topic_model(config)
    probabilities = (
        model.probabilities([(item.title, item.lead)])[0]
        if model is not None and rules.model_weight > 0
        else None
    )
    choice = categorize(
        item.title,
        item.lead,
        topics=rules.topics,
        feed_topic=feed.topic if feed else None,
        categories=item.categories,
        probabilities=probabilities,
        model_weight=rules.model_weight,
        threshold=rules.threshold,
        fallback=rules.fallback.key,
    )
    decision = filter_item(item, filters=rules.filters, feed_filters=feed.filters if feed else None)
    learned: dict[str, object] | None = None
    if model is not None and probabilities is not None:
        top = sorted(probabilities.items(), key=lambda kv: -kv[1])[:3]
        learned = {
            "examples": model.examples,
            "weight": rules.model_weight,
            "probabilities": {k: round(p, 4) for k, p in top},
            "top_terms": {
                k: [[t, w] for t, w in model.top_terms(item.title, item.lead, k, 8)] for k, _ in top
            },
        }
    delivered = store.is_delivered(item.story_id)
    return {
        "topic": {
            "stored": item.topic,
            "delivered": delivered,  # a delivered story keeps its topic
            "now": choice.topic,
            "fallback": choice.fallback,
            "threshold": rules.threshold,
            "feed_hint": feed.topic if feed else None,
            "categories": list(item.categories),
            "scores": [
                {
                    "topic": s.topic,
                    "total": s.total,
                    "rules": s.rules,
                    "model": s.model,
                    "weight": s.weight,
                    "matches": list(s.matches),
                    "excluded": list(s.excluded),
                }
                for s in choice.scores
            ],
            "model": learned,
            "evidence": dict(item.topic_evidence),  # as stored when the item was placed
        },
        "filters": {
            "filtered": item.filtered,
            "reason": item.filter_reason,
            "now": decision.filtered,
            "checks": list(decision.checks),
        },
    }


# -- explain -----------------------------------------------------------------------------------


def explain_item(config: Config, store: Store, item_id: int) -> dict[str, object]:
    """What we know about one stored item, in sections (JSON-ready), for `aggregator explain`.

    "item": the item; "story": the story it is in, its representative item, every item of
    the story (siblings) and why each joined it (same link, or the dedupe evidence).
    Raises KeyError for an unknown item.
    """
    item = store.item(item_id)
    if item is None:
        raise KeyError(item_id)
    priority = _priorities(config)
    members = store.story_items(item.story_id)
    evidence = store.story_evidence(item.story_id)
    rep = min(members, key=lambda m: (-priority(m.feed_url), m.first_seen_at, -len(m.lead), m.id))

    def joined(member_id: int) -> dict[str, object] | None:
        m = evidence.get(member_id)
        if m is None:
            return None
        return {
            "rule": m.rule,
            "matched_item": m.item_id,
            "score": m.score,
            "title_score": m.title_score,
            "lead_score": m.lead_score,
            "reason": m.reason,
        }

    return {
        "item": {
            "id": item.id,
            "source": item.feed_name,
            "publisher": item.source,
            "credit": item.source_name,  # as the digest names it
            "feed": item.feed_url,
            "headline": item.title,
            "lead": item.lead,
            "link": item.link,
            "published": _iso(item.published_at),
            "first_seen": _iso(item.first_seen_at),
            "archived": item.archived,  # digest.is_archive
            "topic": item.topic,
            "story": item.story_id,
        },
        **explain_topic(config, store, item),
        "editions": explain_editions(config, store, item),
        "story": {
            "id": item.story_id,
            "representative": rep.id,
            "window_hours": config.settings.dedupe.window.total_seconds() / 3600,
            "joined": joined(item.id),
            "items": [
                {
                    "id": m.id,
                    "source": m.feed_name,
                    "publisher": m.source,
                    "credit": m.source_name,
                    "feed": m.feed_url,
                    "priority": priority(m.feed_url),
                    "headline": m.title,
                    "link": m.link,
                    "published": _iso(m.published_at),
                    "first_seen": _iso(m.first_seen_at),
                    "joined": joined(m.id),
                }
                for m in members
            ],
        },
    }


def explain_editions(config: Config, store: Store, item: StoredItem) -> dict[str, object]:
    """The "editions" section of `explain`: per digest, the edition that takes what was first
    seen when this item was (a recorded one, else the schedule's next) and whether the item
    is too old for it (published more than PUBLISHED_GRACE before its window) or a new
    feed's undated archive (digest.is_archive), for every edition. The window is
    the one a subscriber with the digest's latest previous edition has; one who joined since
    looks back a whole window, which only ever starts it earlier.

    "edition": whether the item's story is in that edition for each group of its recipients,
    or which rule left it out (explain_edition)."""
    from .config import cron_trigger

    checks: list[dict[str, object]] = []
    members = store.story_items(item.story_id)
    for digest in config.digests:
        before, after = store.edition_cutoffs_around(digest.key, item.first_seen_at)
        trigger = cron_trigger(digest.schedule, config.settings.timezone)
        cutoff = after or trigger.get_next_fire_time(None, item.first_seen_at)
        if cutoff is None:  # a schedule that never fires again, and no edition took it
            continue
        cutoff = cutoff.astimezone(UTC)  # the schedule's is local; everything here is UTC
        since = before if before is not None else cutoff - digest.window  # a first: one window
        bound = published_after(digest.window, since, cutoff)
        start = bound + PUBLISHED_GRACE  # the edition's start, or a window back if earlier
        too_old = item.published_at is not None and item.published_at < bound
        note = None
        if too_old or item.archived:
            note = _age_note(item, start, cutoff, _zone(config), digest=digest.key)
        checks.append(
            {
                "digest": digest.key,
                "window_start": _iso(start),
                "cutoff": _iso(cutoff),
                "published_after": _iso(bound),
                "too_old": too_old,
                "archive": item.archived,  # digest.is_archive: never in an edition
                "note": note,
                "edition": explain_edition(
                    config, store, digest, item, members, cutoff, built=after is not None
                ),
            }
        )
    return {"published": _iso(item.published_at), "grace_hours": _GRACE_HOURS, "digests": checks}


@dataclass(frozen=True, slots=True)
class _Reader:
    """One recipient of an edition, as explain_edition places a story for them."""

    address: str  # as the edition (or feeds.yaml) writes it
    subscriber: Subscriber  # their topics: feeds.yaml's (every topic for one no longer there)
    since: datetime  # where their previous edition of the digest ended (a first: one window)
    after: int | None  # ... and its story-id watermark
    upto: int | None  # this edition's watermark
    edition_id: int | None  # their recorded edition; None: the next one, not built yet


INCLUDED = "included"  # explain_edition's reason when the story is in the edition
SIZE = "size"  # ... when the 90 KB cap dropped it (drop_lowest)
DELIVERED = "delivered"  # ... when an earlier edition (of any digest) sent it to them


def explain_edition(
    config: Config,
    store: Store,
    digest: DigestConfig,
    item: StoredItem,
    members: Sequence[StoredItem],
    cutoff: datetime,
    *,
    built: bool,
) -> dict[str, object]:
    """Whether the story of ``item`` (whose items are ``members``) is in the edition of
    ``digest`` at ``cutoff``, per group of recipients with the same verdict; if not, why:
    already delivered, not among its candidates (digest.why_no_candidate), not their topic,
    max_per_topic, max_total (digest.story_placement), or the size cap.

    A built edition: who got it is what the store recorded; the rest are placed again as the
    edition chose (their previous edition, its watermark, what had reached them before) with
    the current topics and caps. The next edition: as ``build_editions`` would choose it now,
    rendered (as preview does) where the story is planned, to see whether it fits."""
    readers, key, built_at = _readers(config, store, digest, cutoff, built=built)
    story_first_seen = min(m.first_seen_at for m in members)
    titles = {t.key: t.title for t in config.topics}
    fallback = config.settings.fallback_topic
    titles[fallback.key] = fallback.title
    got_it: dict[str, list[Delivery]] = {}
    for d in store.deliveries([item.story_id]):
        got_it.setdefault(d.address, []).append(d)
    candidates_of: dict[tuple[datetime, int | None, int | None], list[StoryCandidate]] = {}
    sent_of: dict[tuple[datetime, int | None, int | None], dict[str, list[tuple[int, int]]]] = {}
    verdicts: list[tuple[_Reader, str, str]] = []
    placed: dict[object, tuple[Placement, Edition]] = {}
    to_fit: dict[object, tuple[Edition, list[_Reader]]] = {}
    for r in readers:
        address = r.address.lower()
        got = got_it.get(address, [])
        if r.edition_id is not None and any(d.edition_id == r.edition_id for d in got):
            verdicts.append((r, INCLUDED, "in it"))
            continue
        earlier = [d for d in got if r.edition_id is None or d.edition_id < r.edition_id]
        if earlier:
            verdicts.append((r, DELIVERED, f"already sent to them in {earlier[0].edition_key}"))
            continue
        window = (r.since, r.after, r.upto)
        if window not in candidates_of:
            found = _window_candidates(config, store, digest, cutoff, r.since, r.after, r.upto)
            candidates_of[window] = found
            sent: dict[str, list[tuple[int, int]]] = {}
            for d in store.deliveries([c.story_id for c in found]):
                sent.setdefault(d.address, []).append((d.story_id, d.edition_id))
            sent_of[window] = sent
        story = next((c for c in candidates_of[window] if c.story_id == item.story_id), None)
        if story is None:
            reason = why_no_candidate(
                story_id=item.story_id,
                story_first_seen=story_first_seen,
                item_first_seen=item.first_seen_at,
                item_published=item.published_at,
                item_filtered=item.filtered,
                item_archived=item.archived,
                since=r.since,
                after_story_id=r.after,
                cutoff=cutoff,
                upto_story_id=r.upto,
                published_after=published_after(digest.window, r.since, cutoff),
            )
            note = _absent_note(reason, item, story_first_seen, r, cutoff, _zone(config))
            verdicts.append((r, reason, note))
            continue
        # What had reached them before this edition was chosen was not among its candidates.
        removed = frozenset(
            s
            for s, e in sent_of[window].get(address, ())
            if r.edition_id is None or e < r.edition_id
        )
        # Readers alike in these share one placement (and one rendering).
        plan = (window, frozenset(r.subscriber.topics), removed)
        if plan not in placed:
            mine = _unsent(candidates_of[window], removed)
            planned = _plan(config, digest, r.subscriber, mine, cutoff)
            place = story_placement(
                story,
                digest=digest,
                subscriber=r.subscriber,
                topics=config.topics,
                candidates=mine,
                sections=planned.sections,
                fallback=fallback,
            )
            placed[plan] = (place, planned)
        place, planned = placed[plan]
        if place.reason != PLANNED:
            title = titles.get(place.topic, place.topic)
            verdicts.append((r, place.reason, _placement_note(place, digest, title)))
        elif built:  # planned, yet not recorded: rendering dropped it
            verdicts.append((r, SIZE, _SIZE_NOTE))
        else:
            to_fit.setdefault(plan, (planned, []))[1].append(r)
    if to_fit:
        env = _environment(config)
        for planned, group in to_fit.values():
            # Measured as _render_groups measures: with the longest personal details.
            probe = max(group, key=lambda r: _personal_length(config, digest, r.address))
            fitted, _, _ = _fit(config, env, digest, replace(planned, recipient=probe.address))
            kept = item.story_id in fitted.story_ids
            verdicts += [(r, INCLUDED, "in it") if kept else (r, SIZE, _SIZE_NOTE) for r in group]
    groups: dict[tuple[str, str], list[str]] = {}
    for r, reason, note in verdicts:
        groups.setdefault((reason, note), []).append(r.address)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0] != INCLUDED, -len(kv[1])))
    return {
        "key": key,
        "cutoff": _iso(cutoff),
        "built": built,
        "built_at": _iso(built_at),
        "groups": [
            {"included": reason == INCLUDED, "reason": reason, "note": note, "recipients": who}
            for (reason, note), who in ordered
        ],
    }


_SIZE_NOTE = "left out to keep the e-mail under 90 KB (the lowest-ranked stories go first)"


def _placement_note(place: Placement, digest: DigestConfig, title: str) -> str:
    """For people: which cap left a candidate story out (digest.story_placement)."""
    if place.reason == MAX_PER_TOPIC:
        return (
            f"left out by max_per_topic: ranked {place.rank} of {place.ranked} in {title}, "
            f"which takes {digest.max_per_topic}"
        )
    if place.reason == MAX_TOTAL:
        return (
            f"left out by max_total ({digest.max_total}): ranked {place.rank} of "
            f"{place.ranked} in {title}, which had room for {place.room} after the sections "
            "before it"
        )
    return f"{title} is not among their sections"


def _readers(
    config: Config, store: Store, digest: DigestConfig, cutoff: datetime, *, built: bool
) -> tuple[list[_Reader], str, datetime | None]:
    """The recipients of the edition of ``digest`` at ``cutoff``, its key and when it was
    built: those it was recorded for, else those the next edition would go to now."""
    by_address = {s.email.lower(): s for s in config.subscribers}
    tz = config.settings.timezone
    if built:
        rows = store.editions_at(digest.key, cutoff)
        marks = store.last_editions(digest.key, before=cutoff)
        readers = []
        for row in rows:
            since, after = _start(marks.get(row.recipient), digest, cutoff)
            readers.append(
                _Reader(
                    address=row.recipient,
                    subscriber=by_address.get(row.recipient.lower(), Subscriber(row.recipient)),
                    since=since,
                    after=after,
                    upto=row.last_story_id,
                    edition_id=row.id,
                )
            )
        key = rows[0].edition_key if rows else edition_key(digest.key, cutoff, tz)
        return readers, key, min((r.built_at for r in rows), default=None)
    marks = store.last_editions(digest.key)
    snapshot = store.max_story_id()  # as _plan_all reads it
    readers = []
    for sub in _recipients(config, store, digest):
        since, after = _start(marks.get(sub.email), digest, cutoff)
        readers.append(
            _Reader(
                address=sub.email,
                subscriber=sub,
                since=since,
                after=after,
                upto=snapshot,
                edition_id=None,
            )
        )
    return readers, edition_key(digest.key, cutoff, tz), None


def _absent_note(
    reason: str,
    item: StoredItem,
    story_first_seen: datetime,
    r: _Reader,
    cutoff: datetime,
    zone: tzinfo,
) -> str:
    """For people: why the story was no candidate of this reader's edition."""
    window = f"{_local(r.since, zone)} to {_local(cutoff, zone)}"
    if reason == "not_new":
        return (
            f"the story was first seen {_local(story_first_seen, zone)}, before this edition's "
            f"window ({window}): an earlier edition's"
        )
    if reason == "later":
        return "first seen after this edition was chosen: the next edition's"
    if reason == "filtered":
        return f"filtered: {item.filter_reason or 'by a filter rule'}"
    if reason in ("archive", "too_old"):
        return _age_note(item, r.since, cutoff, zone)
    return "not among the edition's candidates (the story changed since)"


_GRACE_HOURS = PUBLISHED_GRACE.total_seconds() / 3600  # as explain shows PUBLISHED_GRACE


def _age_note(
    item: StoredItem, start: datetime, cutoff: datetime, zone: tzinfo, *, digest: str = ""
) -> str:
    """For people: why ``item`` is in no edition whose window runs from ``start`` to
    ``cutoff``: a new feed's archive (digest.is_archive), else published more than
    PUBLISHED_GRACE before the window. With ``digest`` the note names it (the "editions"
    section's own); a recipient group's note sits under its digest already."""
    if item.archived:
        said = "no published time, and already in the feed when it was first polled"
        if not digest:
            return f"{said}: archive"
        return (
            f"{said} ({_local(item.first_seen_at, zone)}): the feed's archive, not news; not "
            f"included in digest {digest}"
        )
    assert item.published_at is not None  # too old: an undated item never is
    of = f" of digest {digest}" if digest else ""
    said = (
        f"published {_local(item.published_at, zone)}, more than {_GRACE_HOURS:g} h before "
        f"the window{of} ({_local(start, zone)} to {_local(cutoff, zone)})"
    )
    return f"{said}: not included" if digest else said


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _zone(config: Config) -> tzinfo:
    return ZoneInfo(config.settings.timezone)


def _local(value: datetime, zone: tzinfo) -> str:
    """A time as editors read it: in settings.timezone, the zone named (their schedules
    are written in it; a window "06:00 to 06:00 UTC" for a 07:00 digest misleads)."""
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M %Z}"


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
    dropped: int = 0  # lowest-ranked stories left out to keep the HTML under the size cap
    recovered: bool = False  # recorded by an earlier run that stopped before writing it
    built_at: datetime | None = None  # skipped as ALREADY_BUILT: when that edition was built


@dataclass(frozen=True, slots=True)
class PreviewReport:
    digest: str
    edition_key: str
    due: datetime  # when that edition is built: the schedule's next time (UTC)
    recipient: str  # the subscriber, or PREVIEW_RECIPIENT for a topic set
    topics: tuple[str, ...]  # the sections in the preview
    stories: int
    dropped: int
    path: Path  # the HTML in outbox/previews/


PREVIEW_RECIPIENT = "preview@example.invalid"  # stands in for the reader of a topic-set preview


def subscribers_of(config: Config, digest: DigestConfig) -> list[Subscriber]:
    return [s for s in config.subscribers if not s.digests or digest.key in s.digests]


def plan_for(
    config: Config, store: Store, digest: DigestConfig, subscriber: Subscriber, cutoff: datetime
) -> Edition:
    """The edition this subscriber would get at ``cutoff``; records nothing."""
    return _plan_all(config, store, digest, [subscriber], cutoff)[0][0]


def _plan_all(
    config: Config,
    store: Store,
    digest: DigestConfig,
    subscribers: Sequence[Subscriber],
    cutoff: datetime,
) -> tuple[list[Edition], int]:
    """Each subscriber's next edition at ``cutoff`` (in order), and the story-id watermark
    they were chosen under. Subscribers whose previous edition ended at the same place share
    one query, and those with the same topics share one plan (and so one rendering)."""
    snapshot = store.max_story_id()
    marks = store.last_editions(digest.key)
    groups: dict[tuple[datetime, int | None], list[int]] = {}
    for n, sub in enumerate(subscribers):
        groups.setdefault(_start(marks.get(sub.email), digest, cutoff), []).append(n)
    planned: list[Edition | None] = [None] * len(subscribers)
    for (since, after), members in groups.items():
        candidates = _window_candidates(config, store, digest, cutoff, since, after, snapshot)
        sent: dict[str, set[int]] = {}
        for address, story_id in store.delivered_pairs([c.story_id for c in candidates]):
            sent.setdefault(address, set()).add(story_id)
        shared: dict[frozenset[str], Edition] = {}
        for n in members:
            sub = subscribers[n]
            mine = _unsent(candidates, sent.get(sub.email.lower(), ()))
            if len(mine) != len(candidates):  # some already reached this subscriber
                planned[n] = _plan(config, digest, sub, mine, cutoff)
                continue
            topics = frozenset(sub.topics)
            if topics not in shared:
                shared[topics] = _plan(config, digest, sub, candidates, cutoff)
            planned[n] = replace(shared[topics], recipient=sub.email)
    return [e for e in planned if e is not None], snapshot


def _recipients(config: Config, store: Store, digest: DigestConfig) -> list[Subscriber]:
    """Who the next edition of ``digest`` goes to: its subscribers, less those who left it."""
    left = store.unsubscribed(digest.key)
    return [s for s in subscribers_of(config, digest) if s.email.lower() not in left]


def _start(
    mark: EditionMark | None, digest: DigestConfig, cutoff: datetime
) -> tuple[datetime, int | None]:
    """Where a reader's edition of ``digest`` at ``cutoff`` starts: where their previous one
    (``mark``) ended, its cutoff and story-id watermark; a first edition looks back a window."""
    return (mark.cutoff, mark.last_story_id) if mark else (cutoff - digest.window, None)


def _window_candidates(
    config: Config,
    store: Store,
    digest: DigestConfig,
    cutoff: datetime,
    since: datetime,
    after: int | None,
    upto: int | None,
) -> list[StoryCandidate]:
    """The candidates of the edition of ``digest`` at ``cutoff`` for the readers whose
    previous edition ended at ``since`` with the watermark ``after`` (_start); ``upto`` is
    this edition's watermark. What already reached each reader is still among them (_unsent).
    """
    return store.story_candidates(
        since=since,
        cutoff=cutoff,
        published_after=published_after(digest.window, since, cutoff),
        feed_priority=_priorities(config),
        after_story_id=after,
        upto_story_id=upto,
    )


def _unsent(candidates: Sequence[StoryCandidate], reached: Collection[int]) -> list[StoryCandidate]:
    """``candidates`` less the stories in ``reached``, those that had already reached the
    reader, by any digest: a reader of the morning and the evening digest gets a story once."""
    return [c for c in candidates if c.story_id not in reached]


def _plan(
    config: Config,
    digest: DigestConfig,
    subscriber: Subscriber,
    candidates: Sequence[StoryCandidate],
    cutoff: datetime,
) -> Edition:
    return plan_edition(
        digest=digest,
        subscriber=subscriber,
        topics=config.topics,
        candidates=candidates,
        scheduled_for=cutoff,
        timezone=config.settings.timezone,
        fallback=config.settings.fallback_topic,
    )


ALREADY_BUILT = "already built"  # EditionReport.skipped: this edition key was built before


def build_editions(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    scheduled_for: datetime | None = None,
    digests: Sequence[str] | None = None,
) -> list[EditionReport]:
    """Build one edition of each digest (or the named ones) for every subscriber, into outbox/.

    The scheduler passes the fire time as ``scheduled_for``; by hand it is now. Per digest:
      1. editions an earlier run recorded but did not finish writing are written now, from
         their recorded stories (so a kill at any moment loses nothing, duplicates nothing);
      2. each subscriber's stories are chosen (stories first seen after the cutoff, or
         committed after the watermark read here, wait for the next edition);
      3. rendered and inlined once per distinct set of sections, trimmed to the size cap;
      4. recorded in the store (stories delivered, watermark), one transaction;
      5. personalised, written to outbox/pending/ (atomic, deterministic names: a message
         already pending or sent is not written again), then marked written.
    """
    from . import outbox, render

    cutoff = scheduled_for or clock.now()
    env = render.make_environment(config.settings.templates)
    outbox.clean_temp(config.settings.outbox, older_than=clock.now() - STALE_TEMP)
    reports: list[EditionReport] = []
    for digest in config.digests:
        if digests is not None and digest.key not in digests:
            continue
        recovered = _finish_unwritten(config, store, env, digest)
        reports += recovered
        key = edition_key(digest.key, cutoff, config.settings.timezone)
        everyone = _recipients(config, store, digest)
        done = store.edition_recipients(digest.key, key)
        just_finished = {r.recipient for r in recovered if r.edition_key == key}
        built = store.edition_built_at(digest.key, key) if done else None
        by_recipient: dict[str, EditionReport] = {
            s.email: EditionReport(
                digest.key, s.email, key, 0, None, None, ALREADY_BUILT, built_at=built
            )
            for s in everyone
            if s.email in done and s.email not in just_finished
        }
        planned, snapshot = _plan_all(
            config, store, digest, [s for s in everyone if s.email not in done], cutoff
        )
        built_at = clock.now()
        empty = [e for e in planned if e.is_empty and not digest.send_empty]
        groups = _render_groups(
            config, env, digest, [e for e in planned if not e.is_empty or digest.send_empty]
        )

        ids = store.record_editions(
            [_record(e, built_at, snapshot, sent=False) for e in empty]
            + [_record(e, built_at, snapshot, sent=True) for _, members in groups for e in members]
        )
        for e in empty:
            by_recipient[e.recipient] = EditionReport(
                digest.key, e.recipient, key, 0, None, None, "nothing new"
            )
        by_recipient.update(_write_groups(config, digest, groups, built_at))
        store.mark_written(ids[len(empty) :], clock.now())
        reports += [by_recipient[s.email] for s in everyone if s.email in by_recipient]
    return reports


def finish_editions(
    config: Config, store: Store, clock: Clock, *, digests: Sequence[str] | None = None
) -> list[EditionReport]:
    """Only step 1 of ``build_editions``: write the editions an interrupted run recorded but
    did not finish (from their recorded stories); choose nothing new. For start-up, or by
    hand (``aggregator digest --resume``) after a crash, without starting a new edition."""
    from . import outbox

    outbox.clean_temp(config.settings.outbox, older_than=clock.now() - STALE_TEMP)
    env = _environment(config)
    reports: list[EditionReport] = []
    for digest in config.digests:
        if digests is None or digest.key in digests:
            reports += _finish_unwritten(config, store, env, digest)
    return reports


UNSUBSCRIBED_REASON = "not sent: the recipient unsubscribed after it was written"


def send(
    config: Config, store: Store, clock: Clock, *, stop: threading.Event | None = None
) -> deliver_types.DeliveryReport:
    """Deliver the pending messages that are due (deliver.py); each one the server accepted
    is recorded in the store (editions.sent_at), then moved to outbox/sent/. A pending message
    the store says was sent (the move failed, or a crash came between the two) is only moved:
    never sent twice. A crash between the server's reply and the record sends it again (the
    one-message window); the record keeps the first time."""
    from . import deliver, outbox

    settings = config.settings
    # One delivery run at a time per outbox, across processes (the daemon's and a hand-run
    # `send`): two would both read a pending message before either moved it to sent/.
    with locks.holding(settings.outbox / DELIVERY_LOCK) as holder:
        if holder is not None:
            busy = f"another delivery run (pid {holder}) is sending; this one sent nothing"
            return deliver.DeliveryReport(busy=busy)
        prune_outbox(config, store, clock.now())
        # Written before its recipient unsubscribed: it must not go out after they said stop.
        pending = [p.name for p in outbox.list_messages(settings.outbox)[outbox.PENDING]]
        withheld = store.unsubscribed_messages(pending)
        for name in withheld:
            outbox.mark_failed(settings.outbox, name, UNSUBSCRIBED_REASON)
            log.info("message=%s %s", name, UNSUBSCRIBED_REASON)
        report = deliver.deliver_pending(
            settings.outbox,
            settings.smtp,
            clock,
            stop=stop,
            on_sent=lambda name: store.record_sent([name], clock.now()),
            accepted=store.sent_messages([n for n in pending if n not in withheld]),
        )
    # They are failures of this run too: `send` lists and counts them with the rest.
    report.failed[:0] = [(name, UNSUBSCRIBED_REASON) for name in withheld]
    _remember_delivery(store, clock.now(), report)
    return report


DELIVERY_LOCK = ".deliver.lock"  # in the outbox (locks.holding)
LAST_DELIVERY = "last_delivery"  # meta: the latest delivery run that tried to send something


def _remember_delivery(store: Store, now: datetime, report: deliver_types.DeliveryReport) -> None:
    """Keep what the latest delivery run that tried something did, for `status`: a login
    the server refuses leaves the messages pending with no attempt counted, and would
    otherwise show only in the daemon's log."""
    if not (report.sent or report.failed or report.retrying or report.error):
        return
    record = {
        "at": now.isoformat(),
        "sent": len(report.sent),
        "failed": len(report.failed),
        "retrying": len(report.retrying),
        "error": report.error,
    }
    try:
        store.set_meta(LAST_DELIVERY, json.dumps(record))
    except Exception as exc:  # a full or read-only database: the run's own log says it
        if not is_environmental(exc):
            raise
        log.debug("last delivery not recorded: %s", error_text(exc))


def last_delivery(store: Store) -> dict[str, Any] | None:
    """What ``_remember_delivery`` kept: at, sent, failed, retrying, error; None before any."""
    value = store.get_meta(LAST_DELIVERY)
    return None if value is None else dict(json.loads(value))


def _record(e: Edition, built_at: datetime, snapshot: int, *, sent: bool) -> EditionRecord:
    from . import outbox

    return EditionRecord(
        digest=e.digest,
        recipient=e.recipient,
        edition_key=e.edition_key,
        cutoff=e.cutoff,
        built_at=built_at,
        message_name=outbox.message_name(e.edition_key, e.recipient) if sent else None,
        story_ids=e.story_ids,
        last_story_id=snapshot,
    )


@dataclass(frozen=True, slots=True)
class _Rendered:
    """One rendering shared by every recipient of the same sections."""

    shared: render_types.SharedRender
    dropped: int  # stories dropped to fit the size cap
    recovered: bool = False


def _render_groups(
    config: Config, env: jinja2.Environment, digest: DigestConfig, editions: Sequence[Edition]
) -> list[tuple[_Rendered, list[Edition]]]:
    """Render once per distinct set of sections (editions planned together share the same
    sections object), each trimmed to fit; the editions come back with the trimmed sections."""
    by_sections: dict[int, list[Edition]] = {}
    for e in editions:
        by_sections.setdefault(id(e.sections), []).append(e)
    out: list[tuple[_Rendered, list[Edition]]] = []
    for members in by_sections.values():
        # Measured with the longest personal details, so every member fits.
        probe = max(members, key=lambda e: _personal_length(config, digest, e.recipient))
        fitted, shared, dropped = _fit(config, env, digest, probe)
        out.append(
            (
                _Rendered(shared, dropped),
                [replace(e, sections=fitted.sections) for e in members],
            )
        )
    return out


def _fit(
    config: Config, env: jinja2.Environment, digest: DigestConfig, edition: Edition
) -> tuple[Edition, render_types.SharedRender, int]:
    """Render ``edition``; while its encoded HTML part is over ``render.MAX_HTML_BYTES``,
    drop the lowest-ranked stories (about as many as the excess needs) and render again."""
    import math

    from . import render

    dropped = 0
    while True:
        shared = _render_shared(config, env, digest, edition)
        html, _ = _personalise(config, digest, shared, edition.recipient)
        size = render.encoded_size(html)
        count = len(edition.story_ids)
        if size <= render.MAX_HTML_BYTES or count <= 1:
            return edition, shared, dropped
        drop = max(1, math.ceil((size - render.MAX_HTML_BYTES) / (size / count)))
        drop = min(drop, count - 1)
        edition = drop_lowest(edition, drop)
        dropped += drop


def _render_shared(
    config: Config, env: jinja2.Environment, digest: DigestConfig, edition: Edition
) -> render_types.SharedRender:
    from . import render

    return render.render_shared(
        env,
        edition,
        digest_title=digest_title(config, digest),
        timezone=config.settings.timezone,
        unsubscribe_mailto=unsubscribe_mailto(config, digest),
        with_url=config.settings.base_url is not None,
    )


def _personalise(
    config: Config, digest: DigestConfig, shared: render_types.SharedRender, recipient: str
) -> tuple[str, str]:
    from . import render

    return render.personalise(
        shared,
        recipient=recipient,
        why_text=why_text(config, digest, recipient),
        unsubscribe_url=unsubscribe_url(config, digest, recipient),
    )


def _personal_length(config: Config, digest: DigestConfig, recipient: str) -> int:
    url = unsubscribe_url(config, digest, recipient) or ""
    return len(recipient) + len(why_text(config, digest, recipient)) + 2 * len(url)


WRITE_BATCH = 500  # messages written to the outbox with one flush to disk
STALE_TEMP = timedelta(hours=1)  # outbox temp files older than this were left by a crash


def _write_groups(
    config: Config,
    digest: DigestConfig,
    groups: Sequence[tuple[_Rendered, Sequence[Edition]]],
    built_at: datetime,
) -> dict[str, EditionReport]:
    """Personalise and write every member of every group, WRITE_BATCH messages per flush to
    disk; one HTML preview per group."""
    from . import outbox, render

    box = config.settings.outbox
    reports: dict[str, EditionReport] = {}
    batch: list[tuple[str, bytes]] = []
    waiting: list[tuple[Edition, _Rendered, Path]] = []

    def flush() -> None:
        paths = outbox.write_messages(box, batch)
        for (e, group, preview), path in zip(waiting, paths, strict=True):
            log.info(
                "edition=%s recipient=%s stories=%d dropped=%d%s file=%s",
                e.edition_key,
                e.recipient,
                len(e.story_ids),
                group.dropped,
                " recovered=1" if group.recovered else "",
                path.name,
            )
            reports[e.recipient] = EditionReport(
                digest=digest.key,
                recipient=e.recipient,
                edition_key=e.edition_key,
                stories=len(e.story_ids),
                path=path,
                preview=preview,
                dropped=group.dropped,
                recovered=group.recovered,
            )
        batch.clear()
        waiting.clear()

    for group, members in groups:
        preview: Path | None = None
        for e in members:
            html, text = _personalise(config, digest, group.shared, e.recipient)
            data = render.compose(
                edition_key=e.edition_key,
                subject=e.subject,
                recipient=e.recipient,
                html=html,
                text=text,
                sender=config.settings.sender,
                list_id=list_id(config, digest),
                unsubscribe_mailto=unsubscribe_mailto(config, digest),
                unsubscribe_url=unsubscribe_url(config, digest, e.recipient),
                date=built_at,
            )
            if preview is None:
                name = e.edition_key
                if len(groups) > 1:
                    name += "--" + ("+".join(sec.topic for sec in e.sections) or "empty")
                preview = outbox.write_preview(box, name, html)
            batch.append((outbox.message_name(e.edition_key, e.recipient), data))
            waiting.append((e, group, preview))
            if len(batch) >= WRITE_BATCH:
                flush()
    if batch:
        flush()
    return reports


def _finish_unwritten(
    config: Config, store: Store, env: jinja2.Environment, digest: DigestConfig
) -> list[EditionReport]:
    """Write the editions of ``digest`` an earlier run recorded but did not mark written:
    their recorded stories, rendered again; a file already pending or sent stays as it is."""
    pending = [r for r in store.unwritten_editions(digest.key) if r.message_name]
    by_batch: dict[tuple[str, datetime, datetime, tuple[int, ...]], list[EditionRecord]] = {}
    for rec in pending:
        batch = (rec.edition_key, rec.cutoff, rec.built_at, tuple(sorted(rec.story_ids)))
        by_batch.setdefault(batch, []).append(rec)
    reports: list[EditionReport] = []
    priority = _priorities(config)
    for (key, cutoff, built_at, story_ids), records in by_batch.items():
        stories = store.story_candidates(
            since=cutoff,
            cutoff=cutoff,
            published_after=cutoff,
            feed_priority=priority,
            story_ids=story_ids,
        )
        edition = recorded_edition(
            digest=digest,
            recipient=records[0].recipient,
            edition_key=key,
            cutoff=cutoff,
            topics=config.topics,
            stories=stories,
            timezone=config.settings.timezone,
            fallback=config.settings.fallback_topic,
        )
        group = _Rendered(_render_shared(config, env, digest, edition), 0, recovered=True)
        members = [replace(edition, recipient=r.recipient) for r in records]
        written = _write_groups(config, digest, [(group, members)], built_at)
        store.mark_written([r.id for r in records if r.id is not None], built_at)
        reports += [written[r.recipient] for r in records]
    return reports


def preview_edition(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    digest: str | None = None,
    subscriber: str | None = None,
    topics: Sequence[str] | None = None,
) -> PreviewReport:
    """Render the next edition of ``digest`` (default: the first; the first the subscriber
    gets) for one subscriber, or for a set of topics as a first edition would look back,
    into outbox/previews/. Records nothing: the subscriber's next real edition is not
    changed by it.

    The edition is the one the schedule builds next (next_edition_at), with what is stored
    now: its window, its date in the subject and heading, its name, as explain's "next
    edition" has them; what is polled before it is due can still join it.

    Raises ValueError for an unknown digest, subscriber or topic.
    """
    from . import outbox

    if subscriber is not None and topics:
        raise ValueError("give a subscriber or topics, not both")
    chosen = _digest_named(config, digest)
    if subscriber is not None:
        wanted = subscriber.strip().lower()
        sub = next((s for s in config.subscribers if s.email.lower() == wanted), None)
        if sub is None:
            raise ValueError(f"no subscriber {subscriber!r} in {config.path}")
        theirs = [d for d in config.digests if sub in subscribers_of(config, d)]
        if digest is None and theirs:  # the first digest they get, not just the first
            chosen = theirs[0]
        if sub not in subscribers_of(config, chosen):
            raise ValueError(f"{sub.email} does not get the {chosen.key!r} digest")
        label = sub.email
    else:
        known = [t.key for t in config.topics] + [config.settings.fallback_topic.key]
        unknown = [t for t in topics or () if t not in known]
        if unknown:
            raise ValueError(f"unknown topic(s): {', '.join(unknown)} (known: {', '.join(known)})")
        sub = Subscriber(email=PREVIEW_RECIPIENT, topics=tuple(topics or ()))
        label = "+".join(topics or ()) or "all"
    env = _environment(config)
    due = next_edition_at(config, chosen, clock.now()) or clock.now()  # never: as of now
    planned = plan_for(config, store, chosen, sub, due)
    fitted, shared, dropped = _fit(config, env, chosen, planned)
    html, _ = _personalise(config, chosen, shared, sub.email)
    path = outbox.write_preview(
        config.settings.outbox, f"preview-{fitted.edition_key}--{label}", html
    )
    return PreviewReport(
        digest=chosen.key,
        edition_key=fitted.edition_key,
        due=due,
        recipient=sub.email,
        topics=tuple(sec.topic for sec in fitted.sections),
        stories=len(fitted.story_ids),
        dropped=dropped,
        path=path,
    )


def next_edition_at(config: Config, digest: DigestConfig, now: datetime) -> datetime | None:
    """When ``digest``'s next edition is built (UTC): the schedule's first fire time from
    ``now`` on (``now`` itself when it is one); None for a schedule that never fires again.
    What check, status and preview say, computed in one place."""
    from .config import cron_trigger

    trigger = cron_trigger(digest.schedule, config.settings.timezone)
    due = trigger.get_next_fire_time(None, now)
    return None if due is None else due.astimezone(UTC)


def _environment(config: Config) -> jinja2.Environment:
    from . import render

    return render.make_environment(config.settings.templates)


def _digest_named(config: Config, name: str | None) -> DigestConfig:
    if not config.digests:
        raise ValueError(f"no digests in {config.path}")
    if name is None:
        return config.digests[0]
    for d in config.digests:
        if d.key == name:
            return d
    raise ValueError(f"unknown digest {name!r} (known: {', '.join(d.key for d in config.digests)})")


def render_edition(config: Config, env: jinja2.Environment, edition: Edition) -> tuple[str, str]:
    """(html, text) of ``edition`` for its recipient, as build_editions writes them."""
    digest = _digest_named(config, edition.digest)
    return _personalise(
        config, digest, _render_shared(config, env, digest, edition), edition.recipient
    )


def digest_title(config: Config, digest: DigestConfig) -> str:
    """The heading of the message: the sender's display name, else the digest's title."""
    return parseaddr(config.settings.sender)[0] or digest.title


def why_text(config: Config, digest: DigestConfig, recipient: str) -> str:
    """The footer's "why you get this" line for one recipient (plain text; escaped later).

    It names the digest by its title, as readers know it: the key is feeds.yaml's word."""
    title = digest.title
    sender = parseaddr(config.settings.sender)[0]
    by = f" from {sender}" if sender and sender != title else ""
    return f"You get this because {recipient} is subscribed to {title}{by}."


def unsubscribe_url(config: Config, digest: DigestConfig, recipient: str) -> str | None:
    """The one-click link that unsubscribes ``recipient`` from ``digest`` (List-Unsubscribe
    and the footer): ``{base_url}/u/{token}``, the token signed per (digest, address) (see
    tokens.py; `aggregator serve` answers it). None without ``settings.base_url``."""
    from . import tokens

    base = config.settings.base_url
    if base is None:
        return None
    key = _signing_keys(config.settings.data_dir, *_secret_env())[0]
    return f"{base.rstrip('/')}/u/{tokens.make_token(key, digest.key, recipient)}"


def _secret_env() -> tuple[str | None, str | None]:
    from . import tokens

    return os.environ.get(tokens.SECRET_ENV), os.environ.get(tokens.PREVIOUS_ENV)


@functools.lru_cache(maxsize=8)
def _signing_keys(data_dir: Path, secret: str | None, previous: str | None) -> tuple[bytes, ...]:
    from . import tokens

    env = {k: v for k, v in ((tokens.SECRET_ENV, secret), (tokens.PREVIOUS_ENV, previous)) if v}
    return tokens.signing_keys(data_dir, env)


def signing_keys(config: Config) -> tuple[bytes, ...]:
    """The unsubscribe signing keys (current first), read once per process."""
    return _signing_keys(config.settings.data_dir, *_secret_env())


# -- health ------------------------------------------------------------------------------------


HEALTH_MIN_AGE = timedelta(minutes=15)  # a poll this recent is always recent enough


def health(config: Config, store: Store, now: datetime) -> tuple[bool, dict[str, object]]:
    """For /healthz: ok when the store answers and, if any feed is enabled, the latest poll
    was recorded within max(2 x settings.poll_interval, HEALTH_MIN_AGE). (ok, details)."""
    limit = max(2 * config.settings.poll_interval, HEALTH_MIN_AGE)
    details: dict[str, object] = {"max_poll_age_seconds": int(limit.total_seconds())}
    try:
        last = store.last_poll_at()
    except Exception as exc:  # any failure to answer is what we report
        return False, {**details, "store": f"error: {type(exc).__name__}"}
    details.update(store="ok", last_poll_at=_iso(last))
    if last is not None:
        details["last_poll_age_seconds"] = int((now - last).total_seconds())
    if not any(f.enabled for f in config.feeds):
        return True, details
    if last is None:
        return False, {**details, "problem": "no poll recorded yet"}
    if now - last > limit:
        return False, {**details, "problem": "the latest poll is too old: is the daemon running?"}
    return True, details


# -- unsubscribes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Membership:
    """One (subscriber, digest) as `aggregator subscribers` shows it."""

    email: str
    digest: str
    left_at: datetime | None  # None: still subscribed
    via: str | None  # how they left: one-click | web | editor
    configured: bool = True  # False: left, and no longer in feeds.yaml either


def memberships(config: Config, store: Store) -> list[Membership]:
    """Every configured subscriber of every digest they get, whether they left and when; then
    the unsubscribes of addresses feeds.yaml no longer lists."""
    left = {(u.digest, u.recipient): u for u in store.unsubscribes()}
    out: list[Membership] = []
    for sub in config.subscribers:
        for digest in config.digests:
            if sub not in subscribers_of(config, digest):
                continue
            u = left.pop((digest.key, sub.email.lower()), None)
            out.append(Membership(sub.email, digest.key, u.at if u else None, u.via if u else None))
    out += [Membership(u.recipient, u.digest, u.at, u.via, configured=False) for u in left.values()]
    return out


def unsubscribe(
    config: Config,
    store: Store,
    clock: Clock,
    email: str,
    *,
    digest: str | None,
    via: str,
    undo: bool = False,
) -> list[tuple[str, bool]]:
    """Record that ``email`` left ``digest`` (default: every digest they get), or with
    ``undo`` that they came back. Per digest: (key, changed). Raises ValueError for an
    address or digest feeds.yaml lacks."""
    wanted = email.strip().lower()
    sub = next((s for s in config.subscribers if s.email.lower() == wanted), None)
    if sub is None:
        raise ValueError(f"no subscriber {email!r} in {config.path}")
    chosen = [_digest_named(config, digest)] if digest is not None else config.digests
    theirs = [d for d in chosen if sub in subscribers_of(config, d)]
    if not theirs:
        raise ValueError(f"{sub.email} gets no digest named {digest!r}")
    if undo:
        return [(d.key, store.resubscribe(d.key, sub.email)) for d in theirs]
    now = clock.now()
    return [(d.key, store.unsubscribe(d.key, sub.email, now, via)) for d in theirs]


def list_id(config: Config, digest: DigestConfig) -> str:
    domain = parseaddr(config.settings.sender)[1].rpartition("@")[2] or "localhost"
    return f"<{digest.key}.{domain}>"


def unsubscribe_mailto(config: Config, digest: DigestConfig) -> str:
    address = parseaddr(config.settings.sender)[1]
    return f"mailto:{address}?subject=unsubscribe%20{digest.key}"


def _priorities(config: Config) -> Callable[[str], int]:
    table = {f.url: f.priority for f in config.feeds}
    return lambda url: table.get(url, 0)
