"""The command line: thin commands over the library calls in ``pipeline`` and ``daemon``."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from . import __version__, pipeline, topicmodel
from .clock import Clock, SystemClock
from .config import (
    Config,
    dump_config,
    load_config,
    load_config_with_warnings,
    parse_duration,
)
from .errors import AggregatorError, ConfigError, ConfigProblem, error_text, is_environmental
from .records import PollOutcome
from .store import SQLITE_FILE, Store

DEFAULT_CONFIG = "feeds.yaml"
_T = TypeVar("_T")


@dataclass
class Context:
    config_path: str
    clock: Clock

    def config(self) -> Config:
        return self._loaded(load_config)

    def config_with_warnings(self) -> tuple[Config, tuple[ConfigProblem, ...]]:
        return self._loaded(load_config_with_warnings)

    def _loaded(self, load: Callable[[str], _T]) -> _T:
        """What `load` makes of the config file; its problems end the command (exit 2)."""
        try:
            return load(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(exc.problems)} problem(s) in {self.config_path}", err=True)
            raise SystemExit(2) from None

    @contextmanager
    def store(self, config: Config) -> Iterator[Store]:
        store = pipeline.open_store(config)
        try:
            yield store
        finally:
            store.close()


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("aggregator")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


_FIELD = re.compile(r"(?:^|\s)([a-z_]+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")


# A field named like one of the line's own keys, under another name: the outbox file of
# "message=NAME.eml status=sent" is "message_name" (as in the database), "message" the text.
_RENAMED_FIELDS = {
    "message": "message_name",
    "time": "time_field",
    "level": "level_field",
    "logger": "logger_field",
}


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; the ``key=value`` fields of the message (feed=, status=,
    new=, ms=, edition=, message=, ...) also as keys of their own, for log shippers
    (``message=`` as ``message_name``: ``message`` is the line's text)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        for found, value in _FIELD.findall(message):
            key = _RENAMED_FIELDS.get(found, found)
            if key not in fields:
                fields[key] = value[1:-1] if value[:1] in "'\"" else _scalar(value)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _scalar(value: str) -> str | int | float:
    """An unquoted field as JSON has it: new=3 and ms=8 are numbers (so that a log query can
    compare them), anything else text."""
    if _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    default=lambda: os.environ.get("AGGREGATOR_CONFIG", DEFAULT_CONFIG),
    show_default="./feeds.yaml or $AGGREGATOR_CONFIG",
    help="The feeds.yaml to use.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_level: str, log_format: str) -> None:
    """Poll RSS, Atom and JSON feeds and build an e-mail news digest.

    \b
    Example:
      aggregator check                 # validate feeds.yaml
      aggregator fetch                 # poll every feed once
      aggregator digest                # write this edition into outbox/
      aggregator run                   # the daemon: poll and build on schedule
    """
    _setup_logging(log_level, log_format)
    # Tests hand in their own clock through click's obj; people get the system's.
    clock = getattr(ctx.obj, "clock", None) or SystemClock()
    ctx.obj = Context(config_path=config_path, clock=clock)


@cli.command()
@click.option("--dump", is_flag=True, help="Print the effective config with every default.")
@click.pass_obj
def check(obj: Context, dump: bool) -> None:
    """Validate feeds.yaml and summarise it; exit non-zero on errors.

    \b
    Example:
      aggregator --config feeds.yaml check
    """
    config, warnings = obj.config_with_warnings()
    lines = [str(w) for w in warnings]
    if not config.feeds:
        lines.insert(0, "no feeds configured")
    for line in lines:
        click.echo(f"warning: {line}", err=True)  # stderr: a --dump stays clean YAML
    if dump:
        click.echo(dump_config(config), nl=False)
        return
    s = config.settings
    model = _topic_model_summary(config)  # its problems, if any, end the command before "ok"
    click.echo(f"{config.path}: ok")
    click.echo(
        f"  feeds:       {len(config.feeds)} ({sum(1 for f in config.feeds if f.enabled)} enabled)"
    )
    click.echo(f"  topics:      {', '.join(t.key for t in config.topics) or '(none)'}")
    click.echo(f"  topic model: {model}")
    click.echo(f"  subscribers: {len(config.subscribers)}")
    click.echo(f"  data:        {s.database_url or s.data_dir}")
    click.echo(f"  outbox:      {s.outbox}")
    now = obj.clock.now()
    for digest in config.digests:
        nxt = pipeline.next_edition_at(config, digest, now)
        when = f"{nxt.astimezone(_zone(config)):%a %d %b %Y %H:%M %Z}" if nxt else "never"
        n = len(pipeline.subscribers_of(config, digest))
        click.echo(f"  digest {digest.key}: '{digest.schedule}' next {when}, {n} subscriber(s)")


def _collect_for_polling() -> None:
    """Python's cyclic garbage collector, set for a process that polls (fetch, run).

    Polling allocates millions of short-lived container objects (parsed items and their
    labels, rows, tuples): at the default thresholds (700, 10, 10) the collector ran ~1,200
    times in a cold poll of 2,000 feeds, 1.4-1.8 CPU s of the main process, the critical
    path, each full pass walking every object made at start-up (config, modules). Those
    are frozen out of its passes, and it runs less often: 0.36-0.41 CPU s (4 runs each).
    Nothing is left uncollected; cyclic garbage waits a little longer (peak RSS about the
    same). Called after start-up; the parse workers, forked later, inherit it."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


@cli.command()
@click.option("--due", is_flag=True, help="Only the feeds whose next poll time has come.")
@click.pass_obj
def fetch(obj: Context, due: bool) -> None:
    """Poll every feed once and store new items; failures are listed, exit 0.

    \b
    Example:
      aggregator fetch
      aggregator --log-level info fetch --due
    """
    config = obj.config()
    with obj.store(config) as store:
        total = sum(1 for f in config.feeds if f.enabled)
        show_bar = sys.stderr.isatty() and total > 1
        _collect_for_polling()
        with click.progressbar(
            length=total, label="polling", file=sys.stderr, hidden=not show_bar
        ) as bar:
            reports = pipeline.poll_feeds(
                config, store, obj.clock, due_only=due, on_report=lambda _r: bar.update(1)
            )
    reports.sort(key=lambda r: r.name.lower())
    width = max([len(r.name) for r in reports] + [4])
    click.echo(f"{'feed':<{width}}  {'outcome':<13} {'new':>5} {'upd':>5} {'ms':>6}  error / note")
    for r in reports:
        click.echo(
            f"{r.name:<{width}}  {r.outcome.value:<13} {r.new:>5} {r.updated:>5} "
            f"{r.elapsed_ms:>6}  {r.error or r.note or ''}"
        )
    failed = [
        r for r in reports if r.outcome not in (PollOutcome.UPDATED, PollOutcome.NOT_MODIFIED)
    ]
    click.echo(
        f"{len(reports)} feeds polled, {sum(r.new for r in reports)} new items, "
        f"{len(failed)} failed"
    )


@cli.command()
@click.option("--digest", "names", multiple=True, help="Only this digest (repeatable).")
@click.option(
    "--resume",
    is_flag=True,
    help="Only write what an interrupted run recorded; start no new edition.",
)
@click.pass_obj
def digest(obj: Context, names: tuple[str, ...], resume: bool) -> None:
    """Build an edition of each digest now, into outbox/, and print what was written.

    Each subscriber gets what is new since their previous edition (a first edition looks back
    over the digest's window). The daemon calls the same function at the scheduled times.
    Editions a killed run recorded but did not write are written first, from the stories
    recorded for them; --resume does only that.

    \b
    Example:
      aggregator digest
      aggregator digest --digest daily
      aggregator digest --resume
    """
    config = obj.config()
    unknown = [n for n in names if n not in {d.key for d in config.digests}]
    if unknown:
        known = ", ".join(d.key for d in config.digests) or "none"
        raise click.UsageError(
            f"unknown digest(s): {', '.join(unknown)} (the digests of {config.path}: {known})"
        )
    build = pipeline.finish_editions if resume else pipeline.build_editions
    with obj.store(config) as store:
        reports = build(config, store, obj.clock, digests=names or None)
    if resume and not reports:
        click.echo("nothing to resume: every recorded edition is written")
    for r in reports:
        if r.path is not None:
            notes = "".join(
                [
                    f" ({r.dropped} lowest-ranked left out for size)" if r.dropped else "",
                    " (recovered from an interrupted run)" if r.recovered else "",
                ]
            )
            click.echo(f"{r.edition_key} {r.recipient}: {r.stories} stories -> {r.path}{notes}")
        else:
            click.echo(f"{r.edition_key} {r.recipient}: nothing written ({r.skipped})")
    previews = sorted({str(r.preview) for r in reports if r.preview})
    for p in previews:
        click.echo(f"preview: {p}")
    _explain_already_built(config, reports)


def _explain_already_built(config: Config, reports: list[pipeline.EditionReport]) -> None:
    """A run in the same minute as the last one is the same edition (its key is the minute,
    so that a retry never sends twice): say so, and how to look at what is coming instead."""

    built: dict[tuple[str, str], list[pipeline.EditionReport]] = {}
    for r in reports:
        if r.skipped == pipeline.ALREADY_BUILT:
            built.setdefault((r.digest, r.edition_key), []).append(r)
    for (name, key), group in built.items():
        at = group[0].built_at
        when = f" at {at.astimezone(_zone(config)):%Y-%m-%d %H:%M:%S %Z}" if at else ""
        click.echo(
            f"digest {name}: edition {key} was already built{when} for {len(group)} "
            f"subscriber(s), its messages are in {config.settings.outbox} (pending/ until "
            "sent); nothing is written or sent twice"
        )
        click.echo(
            "  an edition is named by the minute it is built for; to look at the next one "
            f"without building it: aggregator preview --digest {name}"
        )


@cli.command()
@click.option(
    "--digest",
    "name",
    help="The digest to preview (default: the first one; the first the subscriber gets).",
)
@click.option("--subscriber", "email", help="Preview this subscriber's next edition.")
@click.option("--topics", help="Or a comma-separated topic set, as a first edition would see it.")
@click.pass_obj
def preview(obj: Context, name: str | None, email: str | None, topics: str | None) -> None:
    """Render the next edition for one subscriber or topic set, recording nothing.

    The edition is the one the digest's schedule builds next (its window, its date), with
    the stories stored so far. The HTML goes to outbox/previews/; the path is printed. Open
    it in a browser. The subscriber's real next edition is not changed by a preview.

    \b
    Example:
      aggregator preview --subscriber reader@example.org
      aggregator preview --digest daily --topics world,business
    """
    config = obj.config()
    wanted = [t.strip() for t in topics.split(",") if t.strip()] if topics else None
    with obj.store(config) as store:
        try:
            report = pipeline.preview_edition(
                config, store, obj.clock, digest=name, subscriber=email, topics=wanted
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    dropped = f", {report.dropped} left out for size" if report.dropped else ""
    click.echo(
        f"{report.edition_key} {report.recipient}: {report.stories} stories"
        f" in {', '.join(report.topics) or 'no sections'}{dropped}"
    )
    due = report.due.astimezone(_zone(config))
    click.echo(
        f"  the next edition, due {due:%a %d %b %Y %H:%M %Z}, as it stands now"
        " (what is polled before then can still join it)"
    )
    click.echo(f"preview: {report.path}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--problems",
    is_flag=True,
    help="Only the feeds that need a look: flagged, moved, or with a note.",
)
@click.pass_obj
def status(obj: Context, as_json: bool, problems: bool) -> None:
    """Feed health: last success, outcome, error streak, next poll, items, flags, per feed;
    then a summary line (how many feeds are fine, failing, gone, stale, moved, noted, not
    polled yet, disabled), each digest's editions and the outbox, with the latest delivery
    run that tried to send (and why it stopped: a refused login, an unreachable server).
    Times are in settings.timezone (the JSON gives them with their UTC offset).

    Flags: failing (the last attempt failed), gone (410: no longer polled; fix or remove the
    feed), stale (nothing new for settings.stale_after). A feed that moved for good (301/308)
    shows its new URL; feeds.yaml is not rewritten. A note (last_note) says why the last
    fetched body gave less than it listed: no entries, entries with nothing to store, sloppy
    XML. --problems lists only the feeds with a flag, a move or a note (the summary still
    counts them all).

    \b
    Example:
      aggregator status --problems
      aggregator status --json | jq '.feeds[] | select(.flags | index("failing"))'
    """
    config = obj.config()
    now = obj.clock.now()
    with obj.store(config) as store:
        found = pipeline.feed_status(config, store, now)
        delivery = _delivery_status(config, store, now)  # issue 7: editions and outbox
    summary = pipeline.health_summary(found)
    if problems:
        found = [f for f in found if pipeline.needs_attention(f)]
    rows: list[dict[str, Any]] = []
    for feed in found:
        st = feed.state
        rows.append(
            {
                "url": feed.url,
                "name": feed.name,
                "enabled": feed.enabled,
                "last_poll": _iso(st.last_poll_at) if st else None,
                "last_success": _iso(st.last_success_at) if st else None,
                "last_outcome": st.last_outcome if st else None,
                "last_status": st.last_status if st else None,
                "last_error": st.last_error if st else None,
                "last_note": st.last_note if st else None,
                "error_streak": st.error_streak if st else 0,
                "next_due": _iso(st.next_due_at) if st and not st.gone_at else None,
                "moved_to": st.moved_to if st else None,
                "gone": bool(st and st.gone_at),
                "last_new_item": _iso(st.last_new_item_at) if st else None,
                "items_stored": st.items_stored if st else 0,
                "items_7d": st.items_recent if st else 0,
                "flags": list(feed.flags),
            }
        )
    if as_json:
        document = {"feeds": rows, "summary": summary, **delivery}
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    zone = _zone(config)
    width = max([len(r["name"]) for r in rows] + [4])
    if problems and not rows:
        click.echo("no feed needs a look")
    else:
        click.echo(
            f"{'feed':<{width}}  {'last success':<16} {'outcome':<13} {'errs':>4} {'items':>6} "
            f"{'7d':>5}  {'next poll':<16} flags / notes"
        )
    for r in rows:
        notes = [*r["flags"]]
        if not r["enabled"]:
            notes.append("disabled")
        if r["moved_to"]:
            notes.append(f"moved to {r['moved_to']}")
        if r["last_error"]:
            notes.append(r["last_error"])
        if r["last_note"]:
            notes.append(r["last_note"])
        click.echo(
            f"{r['name']:<{width}}  {_short(r['last_success'], zone):<16} "
            f"{(r['last_outcome'] or '-'):<13} {r['error_streak']:>4} {r['items_stored']:>6} "
            f"{r['items_7d']:>5}  {_short(r['next_due'], zone):<16} {'; '.join(notes)}"
        )
    click.echo(pipeline.summary_line(summary))
    _echo_delivery_status(delivery, zone)


# -- status: editions and the outbox (issue 7) -------------------------------------------------


def _delivery_status(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    from . import daemon, deliver

    box = deliver.outbox_status(config.settings.outbox)
    return {
        "editions": [
            {
                "digest": d.key,
                "last": _iso(d.last_edition),
                "last_recipients": d.recipients,
                "last_messages": d.messages,
                "last_sent": d.sent,
                "next": _iso(d.next_edition),
            }
            for d in daemon.digest_status(config, store, now)
        ],
        "outbox": {
            "pending": box.pending,
            "sent": box.sent,
            "failed": box.failed,
            "failures": [{"file": n, "reason": r} for n, r in box.failures],
            "retrying": [
                {
                    "file": n,
                    "attempts": a.count,
                    "next_attempt": _iso(a.next_at),
                    "last_error": a.last_error,
                }
                for n, a in box.retrying
            ],
            # the latest delivery run that tried to send: at, sent, failed, retrying, error
            "last_run": pipeline.last_delivery(store),
        },
    }


def _echo_delivery_status(delivery: dict[str, Any], zone: tzinfo) -> None:
    click.echo("")
    click.echo(f"{'digest':<16} {'last edition':<16} {'next edition':<16}")
    for d in delivery["editions"]:
        click.echo(
            f"{d['digest']:<16} {_short(d['last'], zone):<16} {_short(d['next'], zone):<16}"
            + (
                f" ({d['last_recipients']} recipient(s), {d['last_messages']} message(s), "
                f"{d['last_sent']} sent)"
                if d["last"]
                else ""
            )
        )
    box = delivery["outbox"]
    click.echo(f"outbox: {box['pending']} pending, {box['sent']} sent, {box['failed']} failed")
    run = box["last_run"]
    if run:
        click.echo(
            f"last delivery run {_short(run['at'], zone)}: {run['sent']} sent, "
            f"{run['retrying']} to retry, {run['failed']} failed"
            + (f"; stopped: {run['error']}" if run["error"] else "")
        )
    click.echo(f"times in {zone} (settings.timezone)")
    for r in box["retrying"]:
        click.echo(
            f"  retrying {r['file']}: attempt {r['attempts']} failed ({r['last_error']}), "
            f"next {_short(r['next_attempt'], zone)}"
        )
    for f in box["failures"]:
        click.echo(f"  failed {f['file']}: {f['reason']}")


@cli.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
@click.pass_obj
def discover(obj: Context, url: str, as_json: bool) -> None:
    """List the feeds a web page advertises (<link rel="alternate">), to put in feeds.yaml.

    The page is fetched like a feed: same User-Agent, size cap, deadline and address guard.
    Exits 1 when the page could not be fetched or names no feed.

    \b
    Example:
      aggregator discover https://www.theguardian.com/world
    """
    config = obj.config()
    found = pipeline.discover(config, obj.clock, url)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "url": found.url,
                    "final_url": found.final_url,
                    "is_feed": found.is_feed,
                    "title": found.title,
                    "feeds": list(found.feed_links),
                    "error": found.error,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    elif found.error:
        click.echo(f"{url}: {found.error}", err=True)
    elif found.is_feed:
        click.echo(f"{found.final_url} is a feed" + (f": {found.title}" if found.title else ""))
    elif found.feed_links:
        for link in found.feed_links:
            click.echo(link)
    else:
        click.echo(f"{found.final_url}: the page advertises no feeds", err=True)
    if found.error or not (found.is_feed or found.feed_links):
        raise SystemExit(1)


@cli.group()
def opml() -> None:
    """Exchange the feed list with other readers as OPML.

    \b
    Example:
      aggregator opml export > feeds.opml
      aggregator opml import subscriptions.opml
    """


@opml.command("export")
@click.pass_obj
def opml_export(obj: Context) -> None:
    """Print the configured feeds as OPML 2.0, one folder per topic.

    \b
    Example:
      aggregator opml export > feeds.opml
    """
    from . import opml as opml_module

    config = obj.config()
    names = None
    settings = config.settings
    # The stored feed titles name unnamed feeds; an export before any poll creates no store.
    if settings.database_url or (settings.data_dir / SQLITE_FILE).exists():
        with obj.store(config) as store:
            names = pipeline.feed_names(config, store)
    click.echo(opml_module.build_opml(config, now=obj.clock.now(), names=names).decode(), nl=False)


@opml.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be added; change nothing.")
@click.pass_obj
def opml_import(obj: Context, file: Path, dry_run: bool) -> None:
    """Add the feeds of an OPML file to feeds.yaml, keeping its comments and order.

    Feeds already in the file, a URL the OPML lists again and URLs that are not http(s) are
    skipped (and named), and so is an outline that has no xmlUrl, unless it is plainly an
    empty folder; feeds nested in a feed are added like the rest. A folder that names one of
    your topics (its key, title or an alias; any case) gives the feed that topic; in nested
    folders the innermost that names one. The new file is checked before it replaces the old
    one.

    \b
    Example:
      aggregator opml import subscriptions.opml
      aggregator opml import --dry-run subscriptions.opml
    """
    from . import opml as opml_module

    config = obj.config()
    try:
        plan = opml_module.plan_import(
            config, opml_module.parse_opml(file.read_bytes()), source=str(file)
        )
        if plan.add and not dry_run:
            opml_module.add_feeds(Path(obj.config_path), plan.add)
    except opml_module.OpmlError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would add" if dry_run else "added"
    for feed, topic in plan.add:
        click.echo(
            f"{verb} {feed.url}"
            + (f" ({feed.name})" if feed.name else "")
            + (f" topic={topic}" if topic else "")
        )
    for feed, why in plan.skipped:
        click.echo(f"skipped {feed.label}: {why}")
    click.echo(f"{len(plan.add)} feed(s) {verb}, {len(plan.skipped)} skipped")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help='One JSON document: {"items": [...]}.')
@click.option(
    "--since", default=None, help="Only items first seen in this past period, e.g. 2d, 6h."
)
@click.option(
    "--limit",
    # 0 or less would ask for nothing, or (as SQL's LIMIT -1 reads it) for everything.
    type=click.IntRange(min=1),
    default=None,
    help="At most this many (1 or more), newest first; default: every one.",
)
@click.pass_obj
def items(obj: Context, as_json: bool, since: str | None, limit: int | None) -> None:
    """Stored items, newest first: id, feed, headline, lead, link, published, topic, story.

    \b
    Example:
      aggregator items --since 2d
      aggregator items --json --limit 50
    """
    config = obj.config()
    start = None
    if since:
        try:
            start = obj.clock.now() - parse_duration(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    with obj.store(config) as store:
        found = store.items(since=start, limit=limit)
    if as_json:
        payload = [
            {
                "id": it.id,
                "feed": it.feed_url,
                "source": it.feed_name,
                "publisher": it.source,
                "headline": it.title,
                "lead": it.lead,
                "link": it.link,
                "published": _iso(it.published_at),
                "first_seen": _iso(it.first_seen_at),
                "topic": it.topic,
                "story": it.story_id,
                "author": it.author,
                "categories": list(it.categories),
                "filtered": it.filtered,
                "filter_reason": it.filter_reason,
            }
            for it in found
        ]
        click.echo(json.dumps({"items": payload}, ensure_ascii=False))
        return
    zone = _zone(config)
    for it in found:
        when = _short(_iso(it.published_at or it.first_seen_at), zone)
        topic = f"{it.topic or '-'}{', filtered' if it.filtered else ''}"
        click.echo(f"{it.id:>6} {when} [{topic}] {it.source_name}: {it.title}")
        if it.lead:
            click.echo(f"       {it.lead[:160]}")
        if it.link:
            click.echo(f"       {it.link}")


@cli.command()
@click.argument("item_id", metavar="ITEM", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document, one key per section.")
@click.pass_obj
def explain(obj: Context, item_id: int, as_json: bool) -> None:
    """Why an item is where it is, or why it was left out of a digest.

    In sections: the item; its topic, with every topic's score and what made it (keywords,
    patterns, aliases, the feed's hint, the topic model); the filters that matched it; per
    digest, the window of the edition that takes it (or why it is too old, or a new feed's
    archive) and, per group of that edition's recipients, whether the story is in it or
    what left it out (not their topic, max_per_topic, max_total, the size cap, a filter,
    already sent to them); its story, the story's other items and why each joined it.

    ITEM is an item id, as `aggregator items` shows it.

    \b
    Example:
      aggregator explain 1234
      aggregator explain 1234 --json | jq .editions
    """
    config = obj.config()
    with obj.store(config) as store:
        try:
            sections = pipeline.explain_item(config, store, item_id)
        except KeyError:
            raise click.BadParameter(f"no item {item_id}", param_hint="ITEM") from None
    if as_json:
        click.echo(json.dumps(sections, indent=2, ensure_ascii=False))
        return
    zone = _zone(config)
    for name, section in sections.items():
        render = _EXPLAIN_TEXT.get(name)
        click.echo(f"{name}:")
        if render is not None and isinstance(section, dict):
            render(section, zone)
        else:
            click.echo("  " + json.dumps(section, ensure_ascii=False))
    click.echo(f"times in {zone} (settings.timezone)")


def _explain_story(story: dict[str, Any], _tz: tzinfo) -> None:
    hours = story["window_hours"]
    click.echo(f"  story {story['id']}: {len(story['items'])} item(s), window {hours:g} h")
    for it in story["items"]:
        mark = "*" if it["id"] == story["representative"] else " "
        click.echo(
            f"  {mark}{it['id']:>6} {it['credit']} (priority {it['priority']}): {it['headline']}"
        )
        if it["link"]:
            click.echo(f"          {it['link']}")
        j = it["joined"]
        if j is None:
            click.echo("          started the story")
        elif j["rule"] == "link":
            click.echo("          joined: same canonical link")
        else:
            click.echo(
                f"          joined: {j['rule']} match with item {j['matched_item']}, "
                f"headline {j['title_score']:.2f}, lead {j['lead_score']:.2f}: {j['reason']}"
            )
    click.echo("  (* the representative: highest feed priority, then earliest, then fullest lead)")


def _explain_item(item: dict[str, Any], zone: tzinfo) -> None:
    click.echo(f"  {item['id']} {item['credit']}: {item['headline']}")
    seen = _short(item["first_seen"], zone)
    click.echo(f"  first seen {seen}, topic {item['topic'] or '-'}")


def _explain_topic(topic: dict[str, Any], _tz: tzinfo) -> None:
    now = topic["now"]
    line = f"  {topic['stored'] or '-'}"
    if topic["delivered"]:
        line += " (delivered: keeps this topic)"
    if now != topic["stored"]:
        line += f"; with the current rules: {now}"
    if topic["fallback"]:
        line += f" (no topic reached the threshold {topic['threshold']:g})"
    click.echo(line)
    labels = ", ".join(topic["categories"]) or "-"
    click.echo(f"  feed hint: {topic['feed_hint'] or '-'}; feed categories: {labels}")
    # Every topic appears (the README promises every score), but a line each for the many
    # that scored nothing would bury the few that did: those share one line at the end.
    nothing = [
        s["topic"] for s in topic["scores"] if not (s["total"] or s["matches"] or s["excluded"])
    ]
    for s in topic["scores"]:
        if s["topic"] in nothing:
            continue
        why = ", ".join(s["matches"]) or "no rule matched"
        if s["excluded"]:
            why += f"; vetoed by {', '.join(s['excluded'])}"
        click.echo(
            f"  {s['topic']:<12} {s['total']:6.2f} = (rules {s['rules']:g} + model "
            f"{s['model']:.2f}) x {s['weight']:g}: {why}"
        )
    if nothing:
        click.echo(f"  scored 0 (no rule matched, no model points): {', '.join(nothing)}")
    model = topic["model"]
    if model is None:
        click.echo("  model: none (no topic examples)")
        return
    click.echo(f"  model ({model['examples']} examples, weight {model['weight']:g}):")
    for key, p in model["probabilities"].items():
        terms = ", ".join(f"{t} {w:.2f}" for t, w in model["top_terms"].get(key, []))
        click.echo(f"    {key:<12} p={p:.2f}  {terms or '-'}")


def _explain_filters(filters: dict[str, Any], _tz: tzinfo) -> None:
    if filters["filtered"]:
        click.echo(f"  filtered: {filters['reason']}")
    else:
        click.echo("  not filtered")
    if filters["now"] != filters["filtered"]:
        click.echo(f"  with the current rules: {'filtered' if filters['now'] else 'kept'}")
    for check in filters["checks"]:
        click.echo(f"  {check}")


def _explain_editions(editions: dict[str, Any], zone: tzinfo) -> None:
    grace = editions["grace_hours"]
    for d in editions["digests"]:
        if d["note"]:
            click.echo(f"  {d['note']}")
        else:
            when = (
                f"published {_short(editions['published'], zone)}, in time"
                if editions["published"]
                else "no published time, so never too old"
            )
            click.echo(
                f"  digest {d['digest']}: window {_short(d['window_start'], zone)} to "
                f"{_short(d['cutoff'], zone)}; {when}"
            )
        _explain_edition(d["edition"], zone)
    if not editions["digests"]:
        click.echo("  no digest")
    click.echo(f"  (items published more than {grace:g} h before an edition's window are left out)")


SHOWN_RECIPIENTS = 3  # addresses named per group in the text; --json lists them all


def _explain_edition(edition: dict[str, Any], zone: tzinfo) -> None:
    if edition["built"]:
        click.echo(f"    edition {edition['key']} (built {_short(edition['built_at'], zone)}):")
    else:
        click.echo(f"    next edition {edition['key']} (not built yet; as things stand now):")
    for g in edition["groups"]:
        who = g["recipients"]
        named = ", ".join(who[:SHOWN_RECIPIENTS])
        if len(who) > SHOWN_RECIPIENTS:
            named += f", +{len(who) - SHOWN_RECIPIENTS} more"
        click.echo(f"      {len(who)} recipient(s) ({named}): {g['note']}")
    if not edition["groups"]:
        click.echo("      no recipients")


_EXPLAIN_TEXT: dict[str, Any] = {
    "item": _explain_item,
    "topic": _explain_topic,
    "filters": _explain_filters,
    "editions": _explain_editions,
    "story": _explain_story,
}


@cli.command()
@click.option("--since", default="7d", show_default=True, help="The past period to count.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def topics(obj: Context, since: str, as_json: bool) -> None:
    """Items per topic and per feed, and the words of items no topic claimed.

    The words most found in items that fell to the fallback section ("More news") are the
    keywords (or examples, in topic-examples.yaml) a topic is missing.

    \b
    Example:
      aggregator topics
      aggregator topics --since 30d --json
    """
    config = obj.config()
    try:
        start = obj.clock.now() - parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with obj.store(config) as store:
        report = pipeline.topics_report(config, store, since=start)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    click.echo(
        f"since {_short(report['since'], _zone(config))}: {report['items']} items"
        f" ({report['filtered']} filtered)"
    )
    for row in report["topics"]:
        click.echo(f"  {row['title']:<24} {row['items']:>6}")
    click.echo("per feed:")
    for row in report["feeds"]:
        counts = ", ".join(f"{k} {n}" for k, n in row["topics"].items())
        click.echo(f"  {row['feed']}: {counts}")
    words = ", ".join(f"{w} {n}" for w, n in report["fallback_words"]) or "-"
    click.echo(f"words in items that fell to '{report['fallback']}': {words}")


@cli.command()
@click.pass_obj
def recategorize(obj: Context) -> None:
    """Place recent items again with the current topics, filters and examples.

    Stories already delivered keep their topic. Polling does this by itself whenever
    feeds.yaml's topics or filters, or the topic examples, have changed.

    \b
    Example:
      aggregator recategorize
    """
    config = obj.config()
    with obj.store(config) as store:
        report = pipeline.recategorize(config, store, obj.clock)
    click.echo(
        f"{report.checked} undelivered item(s) placed again: {report.moved} moved to another "
        f"topic, {report.filtered:+d} filtered"
    )


def _topic_model_summary(config: Config) -> str:
    """One line for `check`; problems in the examples file end the command like config ones."""
    path = config.settings.topic_examples
    if path is None:
        return "none (no topic-examples.yaml beside feeds.yaml: rules alone)"
    try:
        model = topicmodel.model_for(path, [t.key for t in config.topics])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) in {path}", err=True)
        raise SystemExit(2) from None
    if model is None:
        return f"{path}: examples for fewer than two topics, rules alone"
    return f"{path} ({model.examples} examples for {', '.join(model.topics)})"


@cli.command()
@click.option(
    "--serve",
    "serve_web",
    is_flag=True,
    help="Also serve what `aggregator serve` does (one-click unsubscribe, editor pages, "
    "/healthz) from this process.",
)
@click.option("--listen", help="with --serve: host:port (default: settings.listen).")
@click.pass_obj
def run(obj: Context, serve_web: bool, listen: str | None) -> None:
    """Run the daemon: poll due feeds, build digests on their schedules, until Ctrl-C/SIGTERM.

    \b
    Example:
      aggregator --log-level info run
      aggregator run --serve --listen 127.0.0.1:8080
    """
    from .daemon import Daemon, sole_daemon

    config, warnings = obj.config_with_warnings()
    with sole_daemon(config):
        daemon = Daemon(
            Path(obj.config_path), clock=obj.clock, config=config, config_warnings=warnings
        )
        if serve_web:
            from . import web

            host, port = _web_address(daemon.config, listen)
            # The app reads the daemon's config each time, so a reload reaches it too.
            app = web.create_app(lambda: daemon.config, daemon.store, obj.clock)
            daemon.services.append(web.BackgroundServer(app, host, port))
        elif listen:
            raise click.BadParameter("needs --serve", param_hint="--listen")
        _collect_for_polling()
        daemon.run()


@cli.command()
@click.option("--listen", help="host:port to bind (default: settings.listen, 127.0.0.1:8080).")
@click.pass_obj
def serve(obj: Context, listen: str | None) -> None:
    """Serve one-click unsubscribe (/u/TOKEN), editor pages (/editor/) and /healthz.

    Put it behind a reverse proxy that terminates TLS at settings.base_url (README). Editor
    pages answer only direct requests from this machine unless AGGREGATOR_EDITOR_PASSWORD
    is set (then HTTP basic auth, any user name).

    \b
    Example:
      aggregator serve --listen 127.0.0.1:8080
    """
    from . import web

    config = obj.config()
    host, port = _web_address(config, listen)
    with obj.store(config) as store:
        sock = web.bind(host, port)
        click.echo(f"serving on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        web.serve(web.create_app(config, store, obj.clock), sock)


def _web_address(config: Config, listen: str | None) -> tuple[str, int]:
    """Where `serve` and `run --serve` listen, checked before anything starts: the address,
    notes on what will not work yet, and the signing key (bad: fail now, not on a click)."""
    from . import web
    from .config import split_listen

    try:
        host, port = split_listen(listen or config.settings.listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    if not web.is_loopback(host) and not os.environ.get(web.EDITOR_PASSWORD_ENV):
        click.echo(
            f"note: listening beyond loopback; editor pages stay closed to other machines "
            f"until {web.EDITOR_PASSWORD_ENV} is set",
            err=True,
        )
    if config.settings.base_url is None:
        click.echo("note: settings.base_url is not set, so no message links here yet", err=True)
    pipeline.signing_keys(config)
    return host, port


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.pass_obj
def subscribers(obj: Context, as_json: bool) -> None:
    """Who gets which digest, and who left (when, and how: one-click, web or editor).

    \b
    Example:
      aggregator subscribers
      aggregator subscribers --json | jq '.subscribers[] | select(.left_at)'
    """
    config = obj.config()
    with obj.store(config) as store:
        found = pipeline.memberships(config, store)
    rows: list[dict[str, Any]] = [
        {
            "email": m.email,
            "digest": m.digest,
            "left_at": _iso(m.left_at),
            "via": m.via,
            "in_feeds_yaml": m.configured,
        }
        for m in found
    ]
    if as_json:
        click.echo(json.dumps({"subscribers": rows}, indent=2, ensure_ascii=False))
        return
    width = max([len(r["email"]) for r in rows] + [5])
    click.echo(f"{'email':<{width}}  {'digest':<12} status")
    for r in rows:
        left = _short(r["left_at"], _zone(config))
        state = f"left {left} ({r['via']})" if r["left_at"] else "subscribed"
        if not r["in_feeds_yaml"]:
            state += "; no longer in feeds.yaml"
        click.echo(f"{r['email']:<{width}}  {r['digest']:<12} {state}")


@cli.command()
@click.argument("email")
@click.option("--digest", "name", help="Only this digest (default: every digest they get).")
@click.option("--undo", is_flag=True, help="They asked to come back: forget that they left.")
@click.pass_obj
def unsubscribe(obj: Context, email: str, name: str | None, undo: bool) -> None:
    """Unsubscribe EMAIL, e.g. after a mail to the List-Unsubscribe mailto: address.

    Recorded in the store (feeds.yaml is not rewritten); the next edition skips them.

    \b
    Example:
      aggregator unsubscribe reader@example.org --digest daily
      aggregator unsubscribe reader@example.org --undo
    """
    config = obj.config()
    with obj.store(config) as store:
        try:
            done = pipeline.unsubscribe(
                config, store, obj.clock, email, digest=name, via="editor", undo=undo
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    for key, changed in done:
        if undo:
            click.echo(f"{email}: {'back on' if changed else 'had not left'} {key}")
        else:
            click.echo(f"{email}: {'unsubscribed from' if changed else 'had already left'} {key}")


@cli.command()
@click.pass_obj
def send(obj: Context) -> None:
    """Deliver the pending messages in outbox/ over SMTP now; exit 1 if the server is out of reach.

    Messages waiting for a retry (after a 4xx reply) are left until their time. A 5xx reply
    moves a message to outbox/failed/ with the reason (shown by `status`). The daemon does
    the same after each edition and every minute. One delivery run at a time per outbox:
    while another (the daemon's) is sending, this one says so and sends nothing (exit 0).
    Exit 1 also when a sent message cannot be recorded (a full disk, a sent/ that may not
    be written): it is never sent again, and the error says what to fix.

    \b
    Example:
      SMTP_PASSWORD=... aggregator send
    """
    config = obj.config()
    with obj.store(config) as store:
        report = pipeline.send(config, store, obj.clock)
    for name in report.sent:
        click.echo(f"sent {name}")
    for name, why, at in report.retrying:
        click.echo(f"retry {name} at {_short(_iso(at), _zone(config))}: {why}")
    for name, why in report.failed:
        click.echo(f"failed {name}: {why}")
    for name in report.unrecorded:
        click.echo(f"held {name}: accepted by the server earlier, cannot be moved to sent/")
    click.echo(
        f"{len(report.sent)} sent, {len(report.retrying)} to retry, {len(report.failed)} failed, "
        f"{report.waiting} waiting"
    )
    if report.busy:
        click.echo(report.busy)  # the other run delivers them: nothing wrong, nothing sent twice
        return
    if report.error:
        click.echo(f"error: {report.error}", err=True)
        raise SystemExit(1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _short(iso: str | None, zone: tzinfo) -> str:
    """'2026-11-24T06:00:00+00:00' -> '2026-11-24 07:00' in ``zone`` (settings.timezone, so
    that one table never mixes UTC and local times); '-' for none."""
    return f"{datetime.fromisoformat(iso).astimezone(zone):%Y-%m-%d %H:%M}" if iso else "-"


def _zone(config: Config) -> tzinfo:
    return ZoneInfo(config.settings.timezone)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:
        # The machine's trouble (a read-only data directory, a full disk) in one line, like
        # this package's own errors; a bug keeps its stack trace.
        if not is_environmental(exc):
            raise
        click.echo(
            f"error: {exc if isinstance(exc, AggregatorError) else error_text(exc)}", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
