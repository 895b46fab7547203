"""feeds.yaml -> Config: frozen, typed, validated; every problem reported with file:line.

    load_config(path)            read and check the whole file; raise ConfigError naming
                                 every problem as `file:line:col: key.path: message`
    dump_config(config)          the effective config, defaults filled in (`check --dump`)
    cron_trigger(schedule, tz)   a five-field cron line -> APScheduler CronTrigger, with
                                 cron's own weekday numbers (0 and 7 = Sunday)
    parse_duration, format_duration, parse_size, format_size
                                 the small value syntaxes of the file (`1h30m`, `5MB`)

Loading reads ruamel's round-trip tree, which remembers the line and column of every key and
value. Each section is checked by a small function that reports into one `_Checker` and
carries on with a default, so a single run lists every problem; the Config is only returned
when there were none. Paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import math
import os
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.parser import ParserError

from aggregator.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:  # imported by cron_trigger: a config without digests never needs it
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_POLL_INTERVAL = timedelta(minutes=30)
DEFAULT_TIMEZONE = "UTC"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LEAD_CHARS = 400
# Entries read from one feed body, the newest: real feeds list tens to hundreds; a body of
# tens of thousands (an archive, or a hostile feed) cost ~600 MB and half a minute a poll.
DEFAULT_MAX_ENTRIES = 1000
DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_USER_AGENT = "aggregator/0.1 (+https://github.com/aggregator; feed digest builder)"
DEFAULT_DEDUPE_WINDOW = timedelta(hours=72)  # near-duplicates are looked for this far apart
DEFAULT_KEEP_POLLS = timedelta(days=30)  # poll attempts (history, not state) older are deleted
DEFAULT_KEEP_SENT = timedelta(days=90)  # sent messages and previews (records only) older too
DEFAULT_STALE_AFTER = timedelta(days=14)  # `status` flags a feed with nothing new for this long
DEFAULT_TOPIC_WEIGHT = 1.0
DEFAULT_FALLBACK_TOPIC = "more"  # where items matching no topic clearly go
DEFAULT_FALLBACK_TITLE = "More news"
DEFAULT_TOPIC_THRESHOLD = 1.0  # the best topic needs this score, else the fallback topic
DEFAULT_MODEL_WEIGHT = 4.0  # a certain topic model counts this many points (see categorize)
DEFAULT_TOPIC_EXAMPLES = "topic-examples.yaml"  # beside feeds.yaml, used when present
FILTER_FIELDS = ("headline", "lead", "link", "author")  # what a filter rule may read
DEFAULT_FILTER_FIELDS = ("headline", "lead")
DEFAULT_LISTEN = "127.0.0.1:8080"  # `aggregator serve`: loopback; a reverse proxy faces the world
DEFAULT_SUBJECT = "{title} - {{date:%A %d %B}}"  # {title} is filled from the digest key


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    security: str = "none"  # "none" | "starttls" | "tls"
    username_env: str | None = None  # name of the env var holding the user name
    password_env: str | None = None  # name of the env var holding the password
    rate: float | None = None  # messages per second at most (`rate: 10/s`, `600/m`); None: no cap


@dataclass(frozen=True, slots=True)
class DedupeSettings:
    """Near-duplicate stories across feeds (dedupe.py); the evidence is in docs/design.md."""

    window: timedelta = DEFAULT_DEDUPE_WINDOW  # items further apart are never one story
    title_threshold: float = 0.86  # headline similarity that makes one story, 0..1
    lead_threshold: float = 0.6  # share of lead shingles that makes one copy, 0..1
    combined_threshold: float = 1.15  # headline + lead similarity added up, 0..2


@dataclass(frozen=True, slots=True)
class FallbackTopic:
    """The section for items that match no topic clearly (`settings.fallback_topic`)."""

    key: str = DEFAULT_FALLBACK_TOPIC
    title: str = DEFAULT_FALLBACK_TITLE


@dataclass(frozen=True, slots=True)
class Settings:
    timezone: str = DEFAULT_TIMEZONE  # IANA name
    data_dir: Path = Path("data")  # absolute after loading (relative to the config file)
    outbox: Path = Path("outbox")  # absolute after loading
    templates: Path | None = None  # editor's template folder, absolute; None = shipped ones
    poll_interval: timedelta = DEFAULT_POLL_INTERVAL
    sender: str = "Aggregator <aggregator@localhost>"  # the `from:` key
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    user_agent: str = DEFAULT_USER_AGENT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES  # entries read from one feed body, the newest
    concurrency: int = 16  # fetches in flight at once
    per_host: int = 2  # fetches in flight per host
    timeout: timedelta = timedelta(seconds=30)  # overall deadline of one fetch
    lead_chars: int = DEFAULT_LEAD_CHARS
    base_url: str | None = None  # public URL of `aggregator serve`, for unsubscribe links
    listen: str = DEFAULT_LISTEN  # host:port `aggregator serve` binds ([::1]:8080 for IPv6)
    database_url: str | None = None  # SQLAlchemy URL; default sqlite file in data_dir
    stale_after: timedelta = DEFAULT_STALE_AFTER  # nothing new for this long: `status` says stale
    keep_polls: timedelta = DEFAULT_KEEP_POLLS  # how long each poll attempt's row is kept
    keep_sent: timedelta = DEFAULT_KEEP_SENT  # how long outbox/sent and outbox/previews keep files
    block_private_addresses: bool = False  # refuse feeds on private/loopback/reserved addresses
    tracking_params: tuple[str, ...] = ()  # query parameters stripped from item links, on top
    # of extract.TRACKING_PARAMS (lower-case; "name*" strips every parameter starting "name")
    fallback_topic: FallbackTopic = field(default_factory=FallbackTopic)
    topic_threshold: float = DEFAULT_TOPIC_THRESHOLD  # below it: the fallback topic
    topic_examples: Path | None = None  # labelled examples for the topic model; absolute
    topic_model_weight: float = DEFAULT_MODEL_WEIGHT  # 0 switches the model off
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One block or keep rule: matches when any word, or the pattern, is found in a field."""

    words: tuple[str, ...] = ()  # words and phrases, matched like topic keywords
    pattern: str | None = None  # a regular expression, searched case-insensitively
    fields: tuple[str, ...] = DEFAULT_FILTER_FIELDS  # the `in:` key: parts of FILTER_FIELDS


@dataclass(frozen=True, slots=True)
class Filters:
    """`filters:` at the top level (every feed) or in one feed."""

    block: tuple[FilterRule, ...] = ()  # any match: the item is stored as filtered
    keep: tuple[FilterRule, ...] = ()  # when given, an item must match one, else filtered

    def __bool__(self) -> bool:
        return bool(self.block or self.keep)


@dataclass(frozen=True, slots=True)
class Topic:
    key: str  # the mapping key in feeds.yaml
    title: str  # default: key.title()
    keywords: tuple[str, ...] = ()  # words and phrases as the editor wrote them
    exclude: tuple[str, ...] = ()  # words that veto this topic
    patterns: tuple[str, ...] = ()  # regular expressions (checked to compile), as written
    aliases: tuple[str, ...] = ()  # other names for the topic
    weight: float = DEFAULT_TOPIC_WEIGHT  # relative importance when topics compete


@dataclass(frozen=True, slots=True)
class FeedConfig:
    url: str  # as written; a relative `file:` path becomes an absolute file:// URL
    # the editor's `name:`; None: shown under the feed's own <title> (records.feed_display_name)
    name: str | None
    topic: str | None = None  # a topic key: a prior, not a verdict
    interval: timedelta | None = None  # None = settings.poll_interval
    priority: int = 0  # higher wins when stories are merged
    max_bytes: int | None = None  # None = settings.max_bytes
    fetch_article: bool = False  # fetch each item's page for a better lead
    enabled: bool = True  # False: kept in the config, never polled
    filters: Filters = field(default_factory=Filters)  # this feed's own block / keep rules


@dataclass(frozen=True, slots=True)
class DigestConfig:
    key: str
    schedule: str  # five-field cron, in settings.timezone; see cron_trigger()
    subject: str  # str.format template; {date} is the edition's local datetime
    max_per_topic: int = 8
    max_total: int = 40
    topics: tuple[str, ...] = ()  # () = every topic, in config order
    window: timedelta = DEFAULT_WINDOW  # how far back a first edition looks
    send_empty: bool = False
    title: str = ""  # what readers call it (footer, heading); see digest_title_from()


@dataclass(frozen=True, slots=True)
class Subscriber:
    email: str
    name: str | None = None
    digests: tuple[str, ...] = ()  # () = every digest
    topics: tuple[str, ...] = ()  # () = every topic


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the file it was loaded from (absolute)
    settings: Settings
    topics: tuple[Topic, ...]
    feeds: tuple[FeedConfig, ...]
    digests: tuple[DigestConfig, ...]
    subscribers: tuple[Subscriber, ...]
    filters: Filters = field(default_factory=Filters)  # block / keep rules for every feed

    def topic(self, key: str) -> Topic:
        for t in self.topics:
            if t.key == key:
                return t
        raise KeyError(key)

    def feed(self, url: str) -> FeedConfig:
        for f in self.feeds:
            if f.url == url:
                return f
        raise KeyError(url)


# The keys each level accepts, in the order `dump_config` writes them.
TOP_KEYS = ("settings", "topics", "filters", "feeds", "digests", "subscribers")
SETTINGS_KEYS = (
    "timezone",
    "data_dir",
    "outbox",
    "templates",
    "poll_interval",
    "from",
    "smtp",
    "user_agent",
    "max_bytes",
    "max_entries",
    "concurrency",
    "per_host",
    "timeout",
    "lead_chars",
    "base_url",
    "listen",
    "database_url",
    "stale_after",
    "keep_polls",
    "keep_sent",
    "block_private_addresses",
    "tracking_params",
    "fallback_topic",
    "topic_threshold",
    "topic_examples",
    "topic_model_weight",
    "dedupe",
)
DEDUPE_KEYS = ("window", "title_threshold", "lead_threshold", "combined_threshold")
FALLBACK_KEYS = ("key", "title")
FILTERS_KEYS = ("block", "keep")
FILTER_RULE_KEYS = ("words", "pattern", "in")
SMTP_KEYS = ("host", "port", "security", "username_env", "password_env", "rate")
SMTP_SECURITY = ("none", "starttls", "tls")
TOPIC_KEYS = ("title", "keywords", "exclude", "patterns", "aliases", "weight")
FEED_KEYS = (
    "url",
    "name",
    "topic",
    "interval",
    "priority",
    "max_bytes",
    "fetch_article",
    "enabled",
    "filters",
)
DIGEST_KEYS = (
    "schedule",
    "subject",
    "title",
    "max_per_topic",
    "max_total",
    "topics",
    "window",
    "send_empty",
)
SUBSCRIBER_KEYS = ("email", "name", "digests", "topics")
# The keys of the mappings that sit in another, for a key indented out of its own.
_NESTED_KEYS = {
    "smtp": SMTP_KEYS,
    "dedupe": DEDUPE_KEYS,
    "fallback_topic": FALLBACK_KEYS,
    "filters": FILTERS_KEYS,
}
_NAMED_KEYS = {"topic": TOPIC_KEYS, "digest": DIGEST_KEYS}  # the keys of one topic / digest

_SECRET_MESSAGE = (
    "secrets are not kept in feeds.yaml: put the password in an environment variable"
    " and name that variable with 'password_env' (e.g. password_env: SMTP_PASSWORD)"
)


# --- the small value syntaxes ------------------------------------------------------------

_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_HINT = "write 30s, 15m, 2h, 1d or 1h30m"
_SIZE_RE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}  # binary: 1KB = 1024 bytes


def parse_duration(text: str) -> timedelta:
    """'1h30m' -> 90 minutes. A unit is required: a bare 30 could mean seconds or minutes."""
    compact = text.replace(" ", "")
    match = _DURATION_RE.fullmatch(compact)
    if not compact or match is None:
        # '1h30' is a likely slip for '1h30m'; say so rather than list every form.
        guess = compact + "m"
        hint = f"did you mean {guess!r}?" if _DURATION_RE.fullmatch(guess) else _DURATION_HINT
        raise ValueError(f"invalid duration {text!r} ({hint})")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not result:
        raise ValueError("a duration must be longer than zero")
    return result


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration: 90 minutes -> '1h30m'."""
    remaining = int(delta.total_seconds())
    parts = []
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_size(value: int | str) -> int:
    """A byte count: an integer, or text like '512KB' / '5MB' / '1GB' (multiples of 1024)."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f"invalid size {value!r} (write a number of bytes, or 512KB, 5MB, 1GB)"
            )
        size = int(match[1]) * _SIZE_UNITS[(match[2] or "b")[0].lower()]
    if size < 1:
        raise ValueError("a size must be at least 1 byte")
    return size


def format_size(size: int) -> str | int:
    """The inverse of parse_size: 10485760 -> '10MB'; sizes that are no round unit stay ints."""
    for unit in ("GB", "MB", "KB"):
        multiple = _SIZE_UNITS[unit[0].lower()]
        if size % multiple == 0:
            return f"{size // multiple}{unit}"
    return size


# --- cron --------------------------------------------------------------------------------

_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_CRON_LABELS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_APSCHEDULER_PREFIX = re.compile(r"^Error validating expression '[^']*': ")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron order: Sunday = 0


def cron_trigger(schedule: str, timezone: str) -> CronTrigger:
    """A standard five-field cron line as an APScheduler 3 trigger firing in `timezone`.

    APScheduler counts weekdays from Monday = 0, cron from Sunday = 0 (and 7), so the
    day-of-week field is rewritten as day names before APScheduler sees it. Cron fires when
    *either* a restricted day-of-month or a restricted day-of-week matches, APScheduler only
    when both do; rather than silently pick one meaning, lines restricting both are refused.
    Raises ValueError with a message fit for the editor.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = schedule.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        raise ValueError(
            "restricts both day-of-month and day-of-week, which cron reads as 'either' and"
            " this scheduler as 'both': restrict only one of them"
        )
    zone = _zone(timezone)
    values = [*fields[:4], _cron_weekdays(fields[4])]
    # One field at a time, so the message can say which field is wrong.
    for name, label, value, written in zip(_CRON_FIELDS, _CRON_LABELS, values, fields, strict=True):
        try:
            CronTrigger(timezone=zone, **{name: value})
        except ValueError as exc:
            reason = _APSCHEDULER_PREFIX.sub("", str(exc))
            raise ValueError(f"bad {label} field {written!r}: {reason}") from exc
    return CronTrigger(timezone=zone, **dict(zip(_CRON_FIELDS, values, strict=True)))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        close = _close_match(name, sorted(available_timezones()))
        hint = f"did you mean {close!r}?" if close else "use an IANA name like Europe/London"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc


def _cron_weekdays(text: str) -> str:
    """Cron's day-of-week field ('1-5', '0,6', 'mon-fri', '*/2') as APScheduler day names."""
    if text == "*":
        return text
    days: set[int] = set()
    for part in text.split(","):
        days |= _cron_weekday_part(part)
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _cron_weekday_part(part: str) -> set[int]:
    span, slash, step_text = part.partition("/")
    if slash and not (step_text.isdigit() and int(step_text) > 0):
        raise ValueError(f"bad day-of-week field {part!r}: the step must be a positive number")
    step = int(step_text) if slash else 1
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        low, _, high = span.partition("-")
        first, last = _cron_weekday(low, part), _cron_weekday(high, part)
        last = 7 if last == 0 and first > 0 else last  # 'mon-sun' ends on Sunday = 7
    else:
        first = _cron_weekday(span, part)
        last = 7 if slash else first  # '1/2' runs from 1 to the end of the week
    if first > last:
        raise ValueError(f"bad day-of-week field {part!r}: the range runs backwards")
    return {day % 7 for day in range(first, last + 1, step)}


def _cron_weekday(text: str, part: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(text.lower())
    raise ValueError(f"bad day-of-week field {part!r}: use 0-7 (0 and 7 = Sunday) or sun-sat")


# --- loading -----------------------------------------------------------------------------


def load_config(path: Path | str) -> Config:
    """Read and check `path`; raise ConfigError listing every problem, in file order.

    A valid file is read once with ruamel's C-accelerated safe loader (about 15x faster than
    the round-trip one: it matters with thousands of feeds, since every command loads the
    file). Only when that finds a problem is the file read again, round-trip, so every
    problem is reported with its line and column.
    """
    return _load(path, warnings=False)[0]


def load_config_with_warnings(path: Path | str) -> tuple[Config, tuple[ConfigProblem, ...]]:
    """load_config, and what loads but cannot work as meant (a subscriber who can get
    nothing from a digest), each placed like a problem, in file order: for `check`. A file
    with warnings is read round-trip too, for their places; load_config leaves them out, so
    the daemon and other commands never pay for that."""
    return _load(path, warnings=True)


def _load(path: Path | str, *, warnings: bool) -> tuple[Config, tuple[ConfigProblem, ...]]:
    shown = str(path)
    absolute = Path(os.path.abspath(path))
    fast = _read_fast(absolute)
    if fast is not None:
        document, text = fast
        quick = _Checker(shown)
        config = _config(quick, _Node(document, 1, 1, ""), absolute)
        # A '- ' item deeper than the one above it may have run on into it: only the
        # round-trip reading can tell (and place it).
        suspect = _MAYBE_RUN_ON.search(text)
        if not quick.problems and not (warnings and quick.warnings) and not suspect:
            return config, ()
    check = _Checker(shown)
    root = _read(check, absolute)
    if root is None:
        raise ConfigError(check.problems)
    config = _config(check, root, absolute)
    if check.problems:
        raise ConfigError(_in_file_order(check.problems))
    return config, tuple(_in_file_order(check.warnings))


def _in_file_order(problems: Sequence[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


def _read_fast(path: Path) -> tuple[Any, str] | None:
    """The document as plain dicts and lists (no line numbers) and the file's text, or None
    on any trouble."""
    try:
        text = path.read_text(encoding="utf-8")
        document = YAML(typ="safe").load(text)
    except (OSError, UnicodeDecodeError, YAMLError, ValueError):
        return None
    return ({} if document is None else document), text


# A '- ' item line followed by a deeper one: YAML reads the second as the rest of the first
# item's text when that is a plain value ('- climate' then ' - dinosaur': "climate -
# dinosaur"), which loads without a complaint. _run_on_values finds the ones that did. An
# item that ends with a key ('- words:' over its own list) is no suspect: a valid file with
# one would otherwise always be read twice (0.5 -> 1.2 s for 2,000 feeds).
_MAYBE_RUN_ON = re.compile(r"^( *)- (?![^\n#]*:[ \t]*(?:#[^\n]*)?$)[^\n]*\n\1 +- ", re.MULTILINE)


def _run_on_values(text: str) -> dict[tuple[int, int], int]:
    """Plain values that run on into a following line starting with '- ': (line, column) of
    the value -> the number of that line."""
    if not _MAYBE_RUN_ON.search(text):
        return {}
    lines = text.split("\n")
    found: dict[tuple[int, int], int] = {}
    try:
        for token in YAML(typ="rt").scan(text):
            start, end = token.start_mark.line, token.end_mark.line
            if type(token).__name__ != "ScalarToken" or not token.plain or start == end:
                continue
            for n in range(start + 1, min(end, len(lines) - 1) + 1):
                if lines[n].lstrip(" ").startswith("- "):
                    found[(start + 1, token.start_mark.column + 1)] = n + 1
                    break
    except YAMLError:
        pass
    return found


def _read(check: _Checker, path: Path) -> _Node | None:
    """The parsed document, or None after reporting why the file could not be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        check.report_at(0, 0, "file not found")
        return None
    except OSError as exc:
        check.report_at(0, 0, f"cannot read the file: {exc}")
        return None
    try:
        # Bytes, not read_text, so that the first bad byte can be placed; newlines as
        # read_text's universal newlines have them.
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        bad = data[exc.start]
        check.report_at(
            line, column, f"not UTF-8: byte {bad:#04x} cannot be decoded (save the file as UTF-8)"
        )
        return None
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        check.report_at(*_yaml_problem(exc, text))
        return None
    except YAMLError as exc:
        check.report_at(0, 0, f"YAML syntax error: {exc}")
        return None
    check.run_on = _run_on_values(text)
    # An empty file is an empty mapping, which then misses its `feeds`.
    return _Node(CommentedMap() if document is None else document, 1, 1, "")


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of the byte at `offset`, the column counted in characters
    like YAML's marks (what comes before the first bad byte decodes)."""
    start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode("utf-8")) + 1


def _yaml_problem(exc: MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Line, column and message of a file YAML cannot read, in the editor's words.

    The parser's own text ("expected <block end>, but found '?'") names its tokens, not what
    the editor typed, and it stops where it noticed the trouble, which is not always where the
    trouble is (an unclosed quote is noticed at the next quote, maybe many lines on). The
    common slips are told apart here, each placed on the line to fix, with the fix named:
    a ': ' or a leading '*', '{', '@' in a value that needs quotes, a key out of line with
    its neighbours, a quote left open, a missing ': ' or ']'.
    """
    lines = text.split("\n")
    problem = str(exc.problem or exc.context)
    context = str(exc.context or "")
    at = _mark(exc.problem_mark) or _mark(exc.context_mark) or (0, 0)
    opened = _mark(exc.context_mark)
    line_text = lines[at[0] - 1] if 0 < at[0] <= len(lines) else ""
    syntax = "YAML syntax error: "
    if isinstance(exc, DuplicateKeyError):
        # ruamel's text repeats both values and explains its own API: name the key only.
        match = re.match(r'found duplicate key "(.*?)" with value', problem)
        key = f" {match[1]!r}" if match else ""
        message = f"duplicate key{key}: a key may appear only once in a mapping"
        if match and opened and _first_key_of_list_item(lines, opened) == match[1]:
            # `url:` again in a feed that began with `url:`: a new feed without its '- '
            message += f" (to start a new list item, write '- {match[1]}: ...')"
        return (*at, message)
    if "'\\t'" in problem:
        return (*at, f"{syntax}{problem} (indent with spaces, not tabs)")
    unclosed = _quote_run_on(text, at)
    if unclosed is not None:
        return unclosed
    if problem == "mapping values are not allowed here":
        line, column, message = _colon_in_value(lines, at)
        return line, column, syntax + message
    if context == "while scanning an alias" or problem.startswith("found undefined alias"):
        star = opened if context == "while scanning an alias" and opened else at
        star_line = lines[star[0] - 1] if 0 < star[0] <= len(lines) else ""
        return (*star, syntax + "a value starting with '*' " + _needs_quotes(star_line, "*"))
    starts = re.fullmatch(r"found character '(.)' that cannot start any token", problem)
    if starts:
        return (*at, syntax + f"a value starting with '{starts[1]}' " + _needs_quotes(line_text))
    if problem == "could not find expected ':'" and opened:
        return (
            *opened,
            syntax + "no ': ' after the key on this line (write key: value, with a space after"
            " the colon)",
        )
    if context == "while scanning a quoted scalar" and opened:
        return (*opened, syntax + "this quote is never closed: end the value with the same quote")
    if isinstance(exc, ParserError) and at != (0, 0):
        return _parser_problem(exc, lines, at, opened)
    return (*at, syntax + problem)


def _mark(mark: Any) -> tuple[int, int] | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _indent_of(line: str) -> tuple[int, str]:
    """1-based column where a line's key or value starts (after any '- '), and that text."""
    content = line.lstrip(" ")
    column = len(line) - len(content) + 1
    while content.startswith("- ") or content == "-":
        rest = content[1:].lstrip(" ")
        column += len(content) - len(rest)
        content = rest
    return column, content


def _line_above(lines: Sequence[str], line: int) -> int:
    """The 1-based number of the nearest line above `line` with content, or 0."""
    for n in range(line - 1, 0, -1):
        stripped = lines[n - 1].strip()
        if stripped and not stripped.startswith("#"):
            return n
    return 0


def _key_of(content: str) -> str | None:
    match = re.match(r"([^\s:#'\"\[\]{},][^:#]*?):(?:\s|$)", content)
    return match[1].strip() if match else None


def _first_key_of_list_item(lines: Sequence[str], place: tuple[int, int]) -> str | None:
    """The first key of the mapping starting at `place` when it is a list item ('- key:')."""
    line, column = place
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if not text[: column - 1].rstrip().endswith("-"):
        return None
    return _key_of(text[column - 1 :])


def _needs_quotes(line: str, first: str = "") -> str:
    """The rest of "a value starting with X must be in quotes, e.g. key: 'value'", with the
    editor's own line quoted as the example when that can be written plainly."""
    example = _quoted(line)
    note = {"*": " (YAML reads '*name' as a reference to an anchor)"}.get(first, "")
    return f"must be in quotes{note}" + (f", e.g. {example}" if example else "")


def _quoted(line: str) -> str | None:
    """`  subject: Brief: {date}` -> `subject: "Brief: {date}"`; None when no plain example."""
    _, content = _indent_of(line)
    key = _key_of(content)
    value = content[len(key) + 1 :].strip() if key else content.strip()
    value = re.sub(r"\s+#.*$", "", value)
    if not value:
        return None
    if '"' not in value and "\\" not in value:
        quoted = f'"{value}"'
    elif "'" not in value:
        quoted = f"'{value}'"
    else:
        return None
    return f"{key}: {quoted}" if key else quoted


def _colon_in_value(lines: Sequence[str], at: tuple[int, int]) -> tuple[int, int, str]:
    """'mapping values are not allowed here': a ': ' inside a plain value, or a key indented
    deeper than the one above it (so read as the rest of that key's value), or a line above
    without its ': ' (so this one is read as the rest of its text)."""
    line, column = at
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    indent, content = _indent_of(text)
    key = _key_of(content)
    if key is not None and indent + len(key) == column:  # the colon is this line's own
        above = _line_above(lines, line)
        above_indent, above_content = _indent_of(lines[above - 1]) if above else (0, "")
        above_key = _key_of(above_content)
        if above and above_key:
            return (
                *at,
                f"'{key}' (column {indent}) is indented deeper than '{above_key}' on line"
                f" {above} (column {above_indent}), so YAML reads it as part of that value:"
                " keys of one mapping start in the same column (check the indentation)",
            )
        if above and above_content.strip():
            return (
                above,
                above_indent,
                f"no ': ' after the key on this line, so YAML reads line {line} as the rest of"
                " its text (write key: value, with a space after the colon)",
            )
        return (*at, "this line is indented deeper than the line above it (check the indentation)")
    example = _quoted(text)
    return (
        *at,
        "a ': ' inside a value: put the whole value in quotes"
        + (f", e.g. {example}" if example else ""),
    )


def _parser_problem(
    exc: MarkedYAMLError, lines: Sequence[str], at: tuple[int, int], opened: tuple[int, int] | None
) -> tuple[int, int, str]:
    """The parser's complaints: what came before the unexpected token tells the slip."""
    syntax = "YAML syntax error: "
    problem = str(exc.problem)
    context = str(exc.context or "")
    before = _token_before("\n".join(lines), at)
    style = getattr(before, "style", None)
    text_before = lines[at[0] - 1][: at[1] - 1] if 0 < at[0] <= len(lines) else ""
    if before is not None and style in ("'", '"') and text_before.strip():
        other = '"..."' if style == "'" else "'...'"
        inside = "write it twice ('')" if style == "'" else 'write \\"'
        return (
            *at,
            syntax + f"text after the closing {style} of a quoted value: to put a {style}"
            f" inside {style}...{style}, {inside}, or quote the whole value with {other}",
        )
    if (
        type(before).__name__ in ("FlowMappingEndToken", "FlowSequenceEndToken")
        and problem.endswith("'<scalar>'")
        and before.end_mark.line + 1 == at[0]
    ):
        bracket = "{" if type(before).__name__ == "FlowMappingEndToken" else "["
        what = "mapping" if bracket == "{" else "list"
        text = lines[before.start_mark.line] if before.start_mark.line < len(lines) else ""
        example = _quoted(text)
        return (
            *at,
            syntax + f"a value starting with '{bracket}' is read as a YAML {what}: put the"
            " whole value in quotes" + (f", e.g. {example}" if example else ""),
        )
    flow = re.fullmatch(r"while parsing a flow (sequence|mapping)", context)
    if flow and opened:
        bracket, close = ("[", "]") if flow[1] == "sequence" else ("{", "}")
        return (
            *opened,
            syntax + f"this {bracket} is not closed (YAML looked for its '{close}' up to line"
            f" {at[0]}, column {at[1]}): end it with '{close}', and separate its items with ','",
        )
    if problem.startswith("expected '<document start>'"):  # a top-level key out of line
        first = next((n for n, t in enumerate(lines, 1) if t.strip()[:1] not in ("", "#")), 0)
        text = lines[at[0] - 1] if 0 < at[0] <= len(lines) else ""
        key, first_key = _key_of(text.strip()), _key_of(lines[first - 1].strip()) if first else None
        if key and first_key:
            first_indent = _indent_of(lines[first - 1])[0]
            return (
                *at,
                syntax + f"'{key}' (column {at[1]}) does not line up with '{first_key}' on line"
                f" {first} (column {first_indent}), the file's first key: the top-level keys"
                " start in the same column (check the indentation)",
            )
    if problem.startswith("expected <block end>, but found"):
        text = lines[at[0] - 1] if 0 < at[0] <= len(lines) else ""
        if re.match(r"\s*-[^\s-]", text):
            return (*at, syntax + "a list item needs a space after its '-' (write '- url: ...')")
        if problem.endswith("'-'"):
            where = f" that starts on line {opened[0]}" if opened else ""
            return (
                *at,
                syntax + f"a list item ('- ') among the keys of the mapping{where}: begin"
                " every item of a list with '- ', or check the indentation",
            )
        return (*at, syntax + _out_of_line(lines, at[0]))
    return (*at, syntax + problem)


def _out_of_line(lines: Sequence[str], line: int) -> str:
    """A line the parser did not expect where it is: say how it sits against the line above."""
    text = lines[line - 1]
    indent, content = _indent_of(text)
    key = _key_of(content)
    item = text.lstrip(" ").startswith("- ")
    if item:  # a list item is placed by its '- '
        what, indent = "this list item ('- ')", len(text) - len(text.lstrip(" ")) + 1
        rule = "the items of a list start with '- ' in one column"
    else:
        what, rule = f"'{key}'", "keys of one mapping start in the same column"
    above = _line_above(lines, line)
    while above and not _key_of(_indent_of(lines[above - 1])[1]):  # past a [list]'s lines
        above = _line_above(lines, above)
    if above and (key or item):
        above_indent, above_content = _indent_of(lines[above - 1])
        above_key = _key_of(above_content)
        if above_key and above_indent != indent:
            return (
                f"{what} (column {indent}) does not line up with '{above_key}' on line"
                f" {above} (column {above_indent}): {rule} (check the indentation)"
            )
    return "this line does not line up with the lines above it (check the indentation)"


def _quote_run_on(text: str, at: tuple[int, int]) -> tuple[int, int, str] | None:
    """A quote left open runs on to the next quote mark, maybe lines on (in a comment, an
    apostrophe), and YAML complains only after that: place it where it opened."""
    before = _token_before(text, at)
    style = getattr(before, "style", None)
    if before is None or style not in ("'", '"'):
        return None
    start, end = _mark(before.start_mark), _mark(before.end_mark)
    if not start or not end or start[0] == end[0]:
        return None
    return (
        *start,
        f"YAML syntax error: the quote ({style}) opened here is not closed on this line (YAML"
        f" takes the next {style}, on line {end[0]}, as its end): close it on this line",
    )


def _token_before(text: str, at: tuple[int, int]) -> Any:
    """The last YAML token that starts before `at` (line, column), or None."""
    before = None
    try:
        for token in YAML(typ="rt").scan(text):
            if (token.start_mark.line + 1, token.start_mark.column + 1) >= at:
                break
            before = token
    except YAMLError:
        pass
    return before


@dataclass(frozen=True, slots=True)
class _Node:
    """A value from the YAML tree with where it sits and how messages name it."""

    value: Any  # a ruamel CommentedMap / CommentedSeq or a scalar
    line: int  # 1-based
    column: int  # 1-based
    key: str  # key path, e.g. "feeds[3].url"

    def entries(self) -> Iterator[tuple[object, _Node, _Node]]:
        """(key, the key's own place, the value) for each entry of a mapping."""
        for name, value in self.value.items():
            key = f"{self.key}.{name}" if self.key else str(name)
            key_node = _Node(name, *_place(self.value, "key", name, self), key)
            if value is None:  # no place of its own: ruamel would point at the next line
                yield name, key_node, dataclasses.replace(key_node, value=None)
            else:
                yield name, key_node, _Node(value, *_place(self.value, "value", name, self), key)

    def items(self) -> Iterator[_Node]:
        for index, value in enumerate(self.value):
            yield _Node(value, *_place(self.value, "item", index, self), f"{self.key}[{index}]")

    def child_key(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name


def _place(container: Any, kind: str, index: object, fallback: _Node) -> tuple[int, int]:
    """1-based line and column of an entry; keys merged in with `<<:` have none recorded."""
    try:
        line, column = getattr(container.lc, kind)(index)
    except (KeyError, IndexError, AttributeError):
        return fallback.line, fallback.column
    return line + 1, column + 1


_T = TypeVar("_T")
_ADDR_SPEC = re.compile(
    r"[^@\s<>()\[\]\\,;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_CURLY_QUOTES = re.compile(r"^[“”‘’„«»]|[“”‘’„«»]$")  # pasted from a word processor
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class _Checker:
    """Collects problems; each check reports and returns None, so loading carries on.
    Warnings are collected apart: they never stop a load."""

    def __init__(self, shown_path: str) -> None:
        self.shown_path = shown_path
        self.problems: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []
        self.run_on: dict[tuple[int, int], int] = {}  # _run_on_values of the file
        # "topic" / "digest" when `topics:` / `digests:` is misspelled: the names given to
        # them are not checked, so that one slip is one problem, not one per name
        self.unchecked: set[str] = set()
        self.misplaced: set[str] = set()  # top-level sections indented into another one

    def report(self, node: _Node, message: str, *, key: str | None = None) -> None:
        if isinstance(node.value, str) and _CURLY_QUOTES.search(node.value):
            message += (
                " (“ ” and ‘ ’ are typographic quotes, which YAML takes as part of the value:"
                " quote with straight \" or ')"
            )
        where = ConfigProblem(
            self.shown_path, node.line, node.column, node.key if key is None else key, message
        )
        self.problems.append(where)

    def warn(self, node: _Node, message: str) -> None:
        self.warnings.append(
            ConfigProblem(self.shown_path, node.line, node.column, node.key, message)
        )

    def report_at(self, line: int, column: int, message: str) -> None:
        self.problems.append(ConfigProblem(self.shown_path, line, column, "", message))

    # -- containers

    def mapping(
        self,
        node: _Node,
        allowed: Sequence[str],
        *,
        required: Sequence[str] = (),
        refused: Mapping[str, str] | None = None,
        null_ok: bool = True,
    ) -> dict[str, _Node] | None:
        """The allowed entries by key; unknown keys are reported with a did-you-mean.

        A null value (`settings:` with nothing under it) counts as an empty mapping, unless
        `null_ok` is false (a bare `-` in a list is more likely a slip).
        """
        if (node.value is not None or not null_ok) and not isinstance(node.value, dict):
            self.report(node, f"expected a mapping of keys, got {_kind(node.value)}")
            return None
        fields: dict[str, _Node] = {}
        meant: set[str] = set(self.misplaced)  # what the unknown keys were suggested to be
        section = None  # a top-level section indented into this mapping
        for name, key_node, value_node in node.entries() if node.value else ():
            if refused and name in refused:
                self.report(key_node, refused[str(name)])
            elif name in allowed:
                fields[str(name)] = value_node
            elif name in self.misplaced:
                section = str(name)
                self.report(
                    key_node,
                    f"'{name}' is a top-level section, indented here into '{node.key}':"
                    " start it at the beginning of its line (check the indentation)",
                )
            elif section is None:  # after a misplaced section, most likely its own keys
                inner = next((c for c in allowed if name in _NESTED_KEYS.get(c, ())), None)
                if inner is not None:  # `security:` out of `smtp:`
                    self.report(
                        key_node,
                        f"unknown key {name!r} here: it is a key of '{inner}', indent it under"
                        f" {inner}: (check the indentation)",
                    )
                    continue
                self.report(key_node, _unknown("key", str(name), allowed))
                meant.add(_close_match(str(name), allowed) or "")
        for name in required:
            if name not in fields and name not in meant:  # 'URL:' said "did you mean 'url'?"
                self.report(node, "required key is missing", key=node.child_key(name))
        return fields

    def named(self, node: _Node, what: str) -> list[tuple[str, _Node]]:
        """The entries of a `name: {...}` section (topics, digests), names checked."""
        entries = []
        if node.value is not None and not isinstance(node.value, dict):
            self.report(node, f"expected a mapping of {what} names, got {_kind(node.value)}")
            return []
        for name, key_node, value_node in node.entries() if node.value else ():
            if name in self.misplaced:
                self.report(
                    key_node,
                    f"'{name}' is a top-level section, indented here into '{node.key}':"
                    " start it at the beginning of its line (check the indentation)",
                )
            elif name in _NAMED_KEYS.get(what, ()):  # `keywords:` out of its topic
                self.report(
                    key_node,
                    f"{name!r} is a key of a {what}, not a {what}'s name: indent it under the"
                    f" {what} it belongs to (check the indentation)",
                )
            elif isinstance(name, str) and _SHORT_NAME.fullmatch(name):
                entries.append((name, value_node))
            else:
                self.report(key_node, f"{what} names use letters, digits, '-' and '_' only")
        return entries

    def sequence(self, node: _Node) -> list[_Node] | None:
        """The items of a list; a null value counts as an empty list."""
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            hint = f" (write [{node.value}])" if isinstance(node.value, str) else ""
            self.report(node, f"expected a list, got {_kind(node.value)}{hint}")
            return None
        return list(node.items())

    # -- scalars

    def text(self, node: _Node) -> str | None:
        if not isinstance(node.value, str):
            hint = " (put it in quotes)" if isinstance(node.value, int | float) else ""
            self.report(node, f"expected text, got {_kind(node.value)}{hint}")
            return None
        if not node.value.strip():
            self.report(node, "must not be empty")
            return None
        into = self.run_on.get((node.line, node.column))
        if into is not None:
            self.report(
                node,
                f"{node.value!r} runs on into line {into}, whose '- ' is indented deeper than"
                f" the one on line {node.line}, so YAML reads both lines as one value: start"
                " the items of a list in one column (check the indentation)",
            )
            return None
        return str(node.value).strip()  # a plain str, not a ruamel subclass

    def texts(self, node: _Node) -> tuple[str, ...] | None:
        items = self.sequence(node)
        if items is None:
            return None
        values = [self.text(item) for item in items]
        return None if None in values else tuple(v for v in values if v is not None)

    def integer(self, node: _Node, low: int | None = None, high: int | None = None) -> int | None:
        if not _is_int(node.value):
            self.report(node, f"expected a whole number, got {_kind(node.value)}")
            return None
        value = int(node.value)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.report(node, f"must be {bounds}, got {value}")
            return None
        return value

    def number(self, node: _Node) -> float | None:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            self.report(node, f"expected a number, got {_kind(node.value)}")
            return None
        if not math.isfinite(node.value):
            self.report(node, f"expected a finite number, got {node.value}")
            return None
        return float(node.value)

    def boolean(self, node: _Node) -> bool | None:
        if not isinstance(node.value, bool):
            self.report(node, f"expected true or false, got {_kind(node.value)}")
            return None
        return bool(node.value)

    def duration(self, node: _Node) -> timedelta | None:
        if _is_int(node.value):
            self.report(node, f"a duration needs a unit ({_DURATION_HINT})")
            return None
        return self.parsed(node, parse_duration)

    def size(self, node: _Node) -> int | None:
        if _is_int(node.value):
            return self.parsed(node, parse_size, node.value)
        if not isinstance(node.value, str):
            self.report(node, f"expected a size like 5MB, got {_kind(node.value)}")
            return None
        return self.parsed(node, parse_size)

    def parsed(self, node: _Node, parse: Callable[[Any], _T], value: object = None) -> _T | None:
        """Run a ValueError-raising parser on the node's text (or on `value`), reporting."""
        if value is None:
            value = self.text(node)
            if value is None:
                return None
        try:
            return parse(value)
        except ValueError as exc:
            self.report(node, str(exc))
            return None

    def choice(self, node: _Node, choices: Sequence[str], what: str) -> str | None:
        value = self.text(node)
        if what in self.unchecked:  # its section's key is misspelled, and said so
            return value
        if value is not None and value not in choices:
            self.report(node, _unknown(what, value, choices))
            return None
        return value

    def references(self, node: _Node, known: Sequence[str], what: str) -> tuple[str, ...] | None:
        """A non-empty list of names that must each be defined elsewhere in the file."""
        items = self.sequence(node)
        if items is None:
            return None
        if not items:
            self.report(node, f"an empty list is not 'no {what}s': leave the key out for all")
            return None
        names = [self.choice(item, known, what) for item in items]
        return None if None in names else tuple(n for n in names if n is not None)

    def email(self, node: _Node) -> str | None:
        value = self.text(node)
        if value is None:
            return None
        if not _ADDR_SPEC.fullmatch(value):
            hint = " (write the bare address; a name goes under 'name')" if "<" in value else ""
            self.report(node, f"not an e-mail address: {value!r}{hint}")
            return None
        domain = value.rpartition("@")[2]
        if "." not in domain and domain.lower() != "localhost":
            # 'reader@example' is a slip for reader@example.org: no mail system delivers it
            self.report(
                node,
                f"not an e-mail address: {value!r} (its domain {domain!r} has no dot,"
                " e.g. example.org)",
            )
            return None
        return value

    def sender(self, node: _Node) -> str | None:
        value = self.text(node)
        if value is None:
            return None
        addresses = getaddresses([value])
        if len(addresses) != 1 or not _ADDR_SPEC.fullmatch(addresses[0][1]):
            self.report(node, f"not an e-mail address: {value!r} (e.g. Brief <brief@example.org>)")
            return None
        return value

    def env_name(self, node: _Node) -> str | None:
        value = self.text(node)
        if value is not None and not _ENV_NAME.fullmatch(value):
            self.report(node, f"not an environment variable name: {value!r}")
            return None
        return value

    def timezone(self, node: _Node) -> str | None:
        return self.parsed(node, lambda name: _zone(name).key)

    def path(self, node: _Node, base: Path) -> Path | None:
        value = self.text(node)
        return None if value is None else _absolute(base, value)

    def http_url(self, node: _Node) -> str | None:
        value = self.text(node)
        problem = value and _http_url_problem(value)
        if problem:
            self.report(node, problem)
            return None
        return value


def _get(
    fields: Mapping[str, _Node], name: str, check: Callable[[_Node], _T | None], default: _T
) -> _T:
    """The checked value of an optional key; its default when absent or wrong (reported)."""
    node = fields.get(name)
    if node is None:
        return default
    value = check(node)
    return default if value is None else value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    """How a message names what the editor wrote."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {str(value)!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime):
        return "a date"
    if isinstance(value, TaggedScalar):
        return f"a YAML tag {value.tag}: a value starting with '!' must be in quotes"
    return type(value).__name__


def _close_match(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` is most likely a slip for, or None: the same name in another
    case first ('URL' for 'url', 'TLS' for 'tls'), else the closest spelling, ignoring case."""
    by_case: dict[str, str] = {}
    for k in known:
        by_case.setdefault(k.lower(), k)
    if name.lower() in by_case:
        return by_case[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_case), n=1)
    return by_case[close[0]] if close else None


def _unknown(what: str, name: str, known: Sequence[str]) -> str:
    close = _close_match(name, known)
    if close:
        hint = f"did you mean {close!r}?"
    elif known:
        hint = "expected one of: " + ", ".join(known)
    else:
        hint = f"no {what}s are defined"
    return f"unknown {what} {name!r} ({hint})"


def _absolute(base: Path, written: str) -> Path:
    return Path(os.path.abspath(base / Path(written).expanduser()))


_WHITESPACE = re.compile(r"\s")


def _http_url_problem(url: str, allowed: str = "http:// or https://") -> str | None:
    parts = urlsplit(url)
    if _WHITESPACE.search(url):
        return f"a URL cannot contain spaces: {url!r}"
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme or "." in parts.scheme:
            return f"not a URL: {url!r} (did you mean 'https://{url}'?)"
        return f"unsupported scheme '{parts.scheme}:' (use {allowed})"
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"bad port in {url!r}"
    return None if parts.hostname else f"no host in {url!r}"


# --- the sections ------------------------------------------------------------------------


def _config(check: _Checker, root: _Node, path: Path) -> Config:
    base = path.parent
    check.misplaced = _misplaced_sections(root.value)
    top = check.mapping(root, TOP_KEYS, required=("feeds",))
    if top is None:
        return Config(path, Settings(), (), (), (), ())
    meant = {_close_match(str(k), TOP_KEYS) for k in root.value or () if k not in TOP_KEYS}
    meant |= check.misplaced
    check.unchecked = {key[:-1] for key in ("topics", "digests") if key in meant - set(top)}
    empty = _Node(None, 1, 1, "")
    topics = _topics(check, top.get("topics", empty))
    topic_keys = tuple(t.key for t in topics)
    settings = _settings(check, top.get("settings", empty), base, topic_keys)
    # Digests and subscribers may name the fallback section too; a feed's topic hint may not.
    sections = (*topic_keys, settings.fallback_topic.key)
    digests = _digests(check, top.get("digests", empty), sections, settings.timezone)
    return Config(
        path=path,
        settings=settings,
        topics=topics,
        feeds=_feeds(check, top.get("feeds", empty), topic_keys, base),
        digests=digests,
        subscribers=_subscribers(check, top.get("subscribers", empty), sections, digests),
        filters=_filters(check, top["filters"]) if "filters" in top else Filters(),
    )


def _misplaced_sections(document: object) -> set[str]:
    """Top-level sections missing from the top that a section (or one of its list's items)
    has among its keys: `topics:` indented under `settings:`, `digests:` under the last
    feed. Reported there as indented, not as unknown keys and a missing section."""
    if not isinstance(document, dict):
        return set()
    own = {"settings": SETTINGS_KEYS, "filters": FILTERS_KEYS, "feeds": FEED_KEYS}
    own["subscribers"] = SUBSCRIBER_KEYS  # topics and digests: names of the editor's choice
    found: set[str] = set()
    for section, value in document.items():
        for inner in value if isinstance(value, list) else [value]:
            if isinstance(inner, dict):
                keys = own.get(str(section), ())
                found |= {k for k in inner if k in TOP_KEYS and k not in document and k not in keys}
    return found


def _settings(check: _Checker, node: _Node, base: Path, topic_keys: Sequence[str] = ()) -> Settings:
    f = check.mapping(node, SETTINGS_KEYS) or {}
    d = Settings()
    return Settings(
        timezone=_get(f, "timezone", check.timezone, d.timezone),
        data_dir=_get(f, "data_dir", lambda n: check.path(n, base), _absolute(base, "data")),
        outbox=_get(f, "outbox", lambda n: check.path(n, base), _absolute(base, "outbox")),
        templates=_get(f, "templates", lambda n: _templates(check, n, base), None),
        poll_interval=_get(f, "poll_interval", lambda n: _poll_interval(check, n), d.poll_interval),
        sender=_get(f, "from", check.sender, d.sender),
        smtp=_smtp(check, f["smtp"]) if "smtp" in f else d.smtp,
        user_agent=_get(f, "user_agent", check.text, d.user_agent),
        max_bytes=_get(f, "max_bytes", check.size, d.max_bytes),
        max_entries=_get(f, "max_entries", lambda n: check.integer(n, 1), d.max_entries),
        concurrency=_get(f, "concurrency", lambda n: check.integer(n, 1), d.concurrency),
        per_host=_get(f, "per_host", lambda n: check.integer(n, 1), d.per_host),
        timeout=_get(f, "timeout", check.duration, d.timeout),
        lead_chars=_get(f, "lead_chars", lambda n: check.integer(n, 0), d.lead_chars),
        base_url=_get(f, "base_url", check.http_url, None),
        listen=_get(f, "listen", lambda n: _listen(check, n), d.listen),
        database_url=_get(f, "database_url", lambda n: _database_url(check, n), None),
        stale_after=_get(f, "stale_after", check.duration, d.stale_after),
        keep_polls=_get(f, "keep_polls", check.duration, d.keep_polls),
        keep_sent=_get(f, "keep_sent", check.duration, d.keep_sent),
        block_private_addresses=_get(
            f, "block_private_addresses", check.boolean, d.block_private_addresses
        ),
        tracking_params=_get(
            f, "tracking_params", lambda n: _tracking_params(check, n), d.tracking_params
        ),
        fallback_topic=_get(
            f, "fallback_topic", lambda n: _fallback(check, n, topic_keys), d.fallback_topic
        ),
        topic_threshold=_get(
            f, "topic_threshold", lambda n: _non_negative(check, n), d.topic_threshold
        ),
        topic_examples=_get(
            f, "topic_examples", lambda n: _examples(check, n, base), _default_examples(base)
        ),
        topic_model_weight=_get(
            f, "topic_model_weight", lambda n: _non_negative(check, n), d.topic_model_weight
        ),
        dedupe=_dedupe(check, f["dedupe"]) if "dedupe" in f else d.dedupe,
    )


POLL_FLOOR = timedelta(minutes=5)  # schedule.FLOOR: no feed is polled more often
POLL_CEILING = timedelta(hours=24)  # schedule.CEILING: nor less often


def _poll_interval(check: _Checker, node: _Node) -> timedelta | None:
    """A duration; outside what the scheduler keeps to, a warning: it works, not as written."""
    value = check.duration(node)
    if value is not None and not POLL_FLOOR <= value <= POLL_CEILING:
        bound = POLL_FLOOR if value < POLL_FLOOR else POLL_CEILING
        often = "more often than every" if value < POLL_FLOOR else "less often than every"
        check.warn(
            node,
            f"no feed is polled {often} {format_duration(bound)}: {format_duration(value)}"
            f" works as {format_duration(bound)}",
        )
    return value


def _dedupe(check: _Checker, node: _Node) -> DedupeSettings:
    f = check.mapping(node, DEDUPE_KEYS) or {}
    d = DedupeSettings()

    def share(n: _Node, high: float = 1.0) -> float | None:
        value = check.number(n)
        if value is not None and not 0 < value <= high:
            check.report(n, f"must be more than 0 and at most {high:g}, got {value:g}")
            return None
        return value

    return DedupeSettings(
        window=_get(f, "window", check.duration, d.window),
        title_threshold=_get(f, "title_threshold", share, d.title_threshold),
        lead_threshold=_get(f, "lead_threshold", share, d.lead_threshold),
        combined_threshold=_get(
            f, "combined_threshold", lambda n: share(n, 2.0), d.combined_threshold
        ),
    )


def _fallback(check: _Checker, node: _Node, topic_keys: Sequence[str]) -> FallbackTopic | None:
    f = check.mapping(node, FALLBACK_KEYS, required=("key",))
    if f is None or "key" not in f:
        return None
    key = check.text(f["key"])
    if key is None:
        return None
    if not _SHORT_NAME.fullmatch(key):
        check.report(f["key"], "topic names use letters, digits, '-' and '_' only")
        return None
    if key in topic_keys:
        check.report(
            f["key"], f"{key!r} is already a topic: the fallback topic needs a name of its own"
        )
        return None
    title = _get(f, "title", check.text, key.replace("_", " ").replace("-", " ").capitalize())
    return FallbackTopic(key=key, title=title)


def _non_negative(check: _Checker, node: _Node) -> float | None:
    value = check.number(node)
    if value is not None and value < 0:
        check.report(node, f"must be zero or more, got {value:g}")
        return None
    return value


def _examples(check: _Checker, node: _Node, base: Path) -> Path | None:
    path = check.path(node, base)
    if path is not None and not path.is_file():
        check.report(node, f"no such file: {path}")
        return None
    return path


def _default_examples(base: Path) -> Path | None:
    """topic-examples.yaml beside the config file, when there is one."""
    path = base / DEFAULT_TOPIC_EXAMPLES
    return path if path.is_file() else None


def _tracking_params(check: _Checker, node: _Node) -> tuple[str, ...] | None:
    names = check.texts(node)
    if names is None:
        return None
    bad = [n for n in names if not re.fullmatch(r"[^\s=&#?]+\*?", n)]
    if bad:
        check.report(
            node, f"not a query parameter name: {bad[0]!r} (write e.g. utm_source or utm_*)"
        )
        return None
    return tuple(dict.fromkeys(n.lower() for n in names))


def _templates(check: _Checker, node: _Node, base: Path) -> Path | None:
    folder = check.path(node, base)
    if folder is not None and not folder.is_dir():
        check.report(node, f"no such folder: {folder}")
        return None
    return folder


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) -> (host, port); ValueError when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not host:port: {value!r} (e.g. 127.0.0.1:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    if not host or any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(f"not host:port: {value!r} (e.g. 127.0.0.1:8080)")
    return host, int(port)


def _listen(check: _Checker, node: _Node) -> str | None:
    value = check.text(node)
    if value is None:
        return None
    try:
        split_listen(value)
    except ValueError as exc:
        check.report(node, str(exc))
        return None
    return value


def _database_url(check: _Checker, node: _Node) -> str | None:
    value = check.text(node)
    if value is not None and "://" not in value:
        check.report(node, "expected a database URL like sqlite:////abs/brief.db")
        return None
    return value


def _smtp(check: _Checker, node: _Node) -> SmtpSettings:
    f = check.mapping(node, SMTP_KEYS, refused={"password": _SECRET_MESSAGE}) or {}
    d = SmtpSettings()
    return SmtpSettings(
        host=_get(f, "host", check.text, d.host),
        port=_get(f, "port", lambda n: check.integer(n, 1, 65535), d.port),
        security=_get(
            f, "security", lambda n: check.choice(n, SMTP_SECURITY, "security"), d.security
        ),
        username_env=_get(f, "username_env", check.env_name, None),
        password_env=_get(f, "password_env", check.env_name, None),
        rate=_get(f, "rate", lambda n: check.parsed(n, parse_rate), None),
    )


_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)", re.IGNORECASE)
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """``10/s``, ``600/m``, ``5000/h`` -> messages per second (> 0)."""
    m = _RATE_RE.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a rate: {text!r} (write 10/s, 600/m or 5000/h)")
    return float(m.group(1)) / _RATE_UNITS[m.group(2)[0].lower()]


def format_rate(per_second: float) -> str:
    if per_second >= 1:
        return f"{per_second:g}/s"
    return f"{per_second * 60:g}/m" if per_second * 60 >= 1 else f"{per_second * 3600:g}/h"


def _topics(check: _Checker, node: _Node) -> tuple[Topic, ...]:
    return tuple(_topic(check, key, value) for key, value in check.named(node, "topic"))


def _topic(check: _Checker, key: str, node: _Node) -> Topic:
    f = check.mapping(node, TOPIC_KEYS) or {}
    return Topic(
        key=key,
        title=_get(f, "title", check.text, key.replace("_", " ").replace("-", " ").title()),
        keywords=_get(f, "keywords", check.texts, ()),
        exclude=_get(f, "exclude", check.texts, ()),
        patterns=_get(f, "patterns", lambda n: _patterns(check, n), ()),
        aliases=_get(f, "aliases", check.texts, ()),
        weight=_get(f, "weight", check.number, DEFAULT_TOPIC_WEIGHT),
    )


def _patterns(check: _Checker, node: _Node) -> tuple[str, ...] | None:
    patterns = check.texts(node)
    if patterns is None:
        return None
    compiled = True
    for item, pattern in zip(node.items(), patterns, strict=True):
        try:
            re.compile(pattern)
        except re.error as exc:
            check.report(item, f"invalid regular expression {pattern!r}: {exc}")
            compiled = False
    return patterns if compiled else None


def _feeds(
    check: _Checker, node: _Node, topics: Sequence[str], base: Path
) -> tuple[FeedConfig, ...]:
    feeds = []
    first_seen: dict[str, _Node] = {}  # normalised URL -> the url node of its first feed
    for item in check.sequence(node) or []:
        checked = _feed(check, item, topics, base)
        if checked is None:
            continue
        feed, url_node = checked
        same = feed_url_key(feed.url)
        if same in first_seen:
            first = first_seen[same]
            where = first.key.removesuffix(".url")
            check.report(url_node, f"duplicate feed: same URL as {where} (line {first.line})")
        else:
            first_seen[same] = url_node
        feeds.append(feed)
    return tuple(feeds)


def _feed(
    check: _Checker, node: _Node, topics: Sequence[str], base: Path
) -> tuple[FeedConfig, _Node] | None:
    f = check.mapping(node, FEED_KEYS, required=("url",), null_ok=False)
    if f is None:
        return None
    url = _get(f, "url", lambda n: _feed_url(check, n, base), "")
    feed = FeedConfig(
        url=url,
        name=_get(f, "name", check.text, None),
        topic=_get(f, "topic", lambda n: check.choice(n, topics, "topic"), None),
        interval=_get(f, "interval", lambda n: _poll_interval(check, n), None),
        priority=_get(f, "priority", check.integer, 0),
        max_bytes=_get(f, "max_bytes", check.size, None),
        fetch_article=_get(f, "fetch_article", check.boolean, False),
        enabled=_get(f, "enabled", check.boolean, True),
        filters=_get(f, "filters", lambda n: _filters(check, n), Filters()),
    )
    return (feed, f["url"]) if url else None


def _filters(check: _Checker, node: _Node) -> Filters:
    f = check.mapping(node, FILTERS_KEYS) or {}
    return Filters(
        block=_get(f, "block", lambda n: _filter_rules(check, n), ()),
        keep=_get(f, "keep", lambda n: _filter_rules(check, n), ()),
    )


def _filter_rules(check: _Checker, node: _Node) -> tuple[FilterRule, ...] | None:
    items = check.sequence(node)
    if items is None:
        return None
    rules = [_filter_rule(check, item) for item in items]
    return None if None in rules else tuple(r for r in rules if r is not None)


def _filter_rule(check: _Checker, node: _Node) -> FilterRule | None:
    """`sponsored` (a word, in headline or lead) or {words: [...], pattern: ..., in: [...]}."""
    if isinstance(node.value, str):
        word = check.text(node)
        return None if word is None else FilterRule(words=(word,))
    f = check.mapping(node, FILTER_RULE_KEYS, null_ok=False)
    if f is None:
        return None
    reported = len(check.problems)
    no_words: tuple[str, ...] = ()
    words = _get(f, "words", check.texts, no_words)
    pattern = _get(f, "pattern", lambda n: _pattern(check, n), None)
    default_fields: tuple[str, ...] = DEFAULT_FILTER_FIELDS
    fields = _get(f, "in", lambda n: _filter_fields(check, n), default_fields)
    if not words and pattern is None:
        if len(check.problems) == reported:
            check.report(node, "a filter rule needs 'words' or 'pattern' (or write the word alone)")
        return None
    return FilterRule(words=words, pattern=pattern, fields=fields)


def _pattern(check: _Checker, node: _Node) -> str | None:
    value = check.text(node)
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as exc:
        check.report(node, f"invalid regular expression {value!r}: {exc}")
        return None
    return value


def _filter_fields(check: _Checker, node: _Node) -> tuple[str, ...] | None:
    """`in: link` or `in: [headline, author]`."""
    if isinstance(node.value, str):
        one = check.choice(node, FILTER_FIELDS, "field")
        return None if one is None else (one,)
    return check.references(node, FILTER_FIELDS, "field")


def _feed_url(check: _Checker, node: _Node, base: Path) -> str | None:
    """http(s) URLs as written; `file:` ones as absolute file:// URLs."""
    url = check.text(node)
    if url is None:
        return None
    if urlsplit(url).scheme.lower() != "file":
        problem = _http_url_problem(url, allowed="http://, https:// or file:")
        if problem:
            check.report(node, problem)
            return None
        return url
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        check.report(node, "a file: URL names a local path: file:///abs/path or file:relative/path")
        return None
    if not parts.path:
        check.report(node, "a file: URL needs a path")
        return None
    path = _absolute(base, unquote(parts.path))
    if not path.is_file():  # a warning: the file may be written later, the rest still works
        check.warn(node, f"no such file: {path} (this feed fails until it exists)")
    return path.as_uri()


def feed_url_key(url: str) -> str:
    """Enough to catch the same feed written twice: case of scheme and host, trailing slash.
    Also what `opml import` compares, so that both call the same URLs one feed."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _digests(
    check: _Checker, node: _Node, topics: Sequence[str], timezone: str
) -> tuple[DigestConfig, ...]:
    return tuple(
        _digest(check, key, value, topics, timezone) for key, value in check.named(node, "digest")
    )


def _digest(
    check: _Checker, key: str, node: _Node, topics: Sequence[str], timezone: str
) -> DigestConfig:
    f = check.mapping(node, DIGEST_KEYS, required=("schedule",)) or {}
    d = DigestConfig(key, "", "")
    default_subject = DEFAULT_SUBJECT.format(title=_key_title(key))
    subject = _get(f, "subject", lambda n: _subject(check, n), default_subject)
    return DigestConfig(
        key=key,
        # The placeholder is never seen: a missing or wrong schedule has been reported.
        schedule=_get(f, "schedule", lambda n: _schedule(check, n, timezone), "* * * * *"),
        subject=subject,
        title=_get(f, "title", check.text, digest_title_from(subject, key)),
        max_per_topic=_get(f, "max_per_topic", lambda n: check.integer(n, 1), d.max_per_topic),
        max_total=_get(f, "max_total", lambda n: check.integer(n, 1), d.max_total),
        topics=_get(f, "topics", lambda n: check.references(n, topics, "topic"), ()),
        window=_get(f, "window", check.duration, d.window),
        send_empty=_get(f, "send_empty", check.boolean, d.send_empty),
    )


def _key_title(key: str) -> str:
    return key.replace("_", " ").title()


_TITLE_EDGES = " \t-–—:|·,;/"  # what joins a subject's name to its date


def digest_title_from(subject: str, key: str) -> str:
    """A digest's default title: its subject without the {date} fields and the punctuation
    that joined them ("Morning Brief - {date:%A %d %B}" -> "Morning Brief"), else the key as
    the default subject writes it ("evening_news" -> "Evening News")."""
    literal = "".join(text for text, *_ in string.Formatter().parse(subject))  # _subject checked it
    return " ".join(literal.split()).strip(_TITLE_EDGES) or _key_title(key)


def _schedule(check: _Checker, node: _Node, timezone: str) -> str | None:
    def parse(schedule: str) -> str:
        cron_trigger(schedule, timezone)
        return " ".join(schedule.split())

    return check.parsed(node, parse)


_SAMPLE_DATE = datetime(2024, 1, 7, 7, 0, tzinfo=UTC)
_SUBJECT_HINT = "e.g. {date:%A %d %B}"


def _subject(check: _Checker, node: _Node) -> str | None:
    """A str.format template whose only field is {date}: format it once to be sure."""
    template = check.text(node)
    if template is None:
        return None
    try:
        template.format(date=_SAMPLE_DATE)
    except KeyError as exc:
        problem = f"unknown field {{{exc.args[0]}}}: only {{date}} is available, {_SUBJECT_HINT}"
    except IndexError:
        problem = f"a field needs a name: only {{date}} is available, {_SUBJECT_HINT}"
    except (ValueError, AttributeError, TypeError) as exc:
        problem = f"invalid template: {exc} (a literal brace is written {{{{ or }}}})"
    else:
        unknown = _unknown_date_codes(template)
        if not unknown:
            return template
        problem = (
            f"unknown date code {', '.join(unknown)}: it would be printed as it is; use "
            f"strftime codes, {_SUBJECT_HINT} (a literal % is written %%)"
        )
    check.report(node, problem)
    return None


# strftime's codes (C99 and glibc's, which Python passes through), after an optional glibc
# flag ("%-d": no padding). An unknown one is printed as it is: "Brief %Q" in a subject.
_DATE_CODE = re.compile(r"%[-_0^#]?(.|$)", re.DOTALL)
_DATE_CODES = frozenset("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%+")


def _unknown_date_codes(template: str) -> list[str]:
    """The strftime codes of ``template``'s {date:...} fields that strftime does not know."""
    unknown: list[str] = []
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None or not spec:
            continue
        for m in _DATE_CODE.finditer(spec):
            if m.group(1) not in _DATE_CODES and m.group(0) not in unknown:
                unknown.append(m.group(0))
    return unknown


def _subscribers(
    check: _Checker, node: _Node, topics: Sequence[str], digests: Sequence[DigestConfig]
) -> tuple[Subscriber, ...]:
    digest_keys = tuple(d.key for d in digests)
    subscribers = []
    first_seen: dict[str, _Node] = {}  # lowercased address -> its first email node
    for item in check.sequence(node) or []:
        f = check.mapping(item, SUBSCRIBER_KEYS, required=("email",), null_ok=False)
        if f is None:
            continue
        subscriber = Subscriber(
            email=_get(f, "email", check.email, ""),
            name=_get(f, "name", check.text, None),
            digests=_get(f, "digests", lambda n: check.references(n, digest_keys, "digest"), ()),
            topics=_get(f, "topics", lambda n: check.references(n, topics, "topic"), ()),
        )
        if not subscriber.email:  # missing or wrong: reported
            continue
        address = subscriber.email.lower()
        if address in first_seen:
            first = first_seen[address]
            where = first.key.removesuffix(".email")
            check.report(
                f["email"], f"duplicate subscriber: same address as {where} (line {first.line})"
            )
        first_seen.setdefault(address, f["email"])
        subscribers.append(subscriber)
        if "topics" in f:
            _warn_of_empty_digests(check, f["topics"], subscriber, digests)
    return tuple(subscribers)


def _warn_of_empty_digests(
    check: _Checker, node: _Node, subscriber: Subscriber, digests: Sequence[DigestConfig]
) -> None:
    """A subscriber whose topics and a digest's have none in common gets an empty edition of
    it every time (digest.subscriber_topics: the sections are the two lists' common part), so
    nothing unless `send_empty`. A warning, not a problem: such a file works, and the editor
    may mean it for a while (a digest being set up)."""
    theirs = subscriber.topics
    if not theirs:  # every topic; or a wrong list, reported as a problem
        return
    for digest in digests:
        if subscriber.digests and digest.key not in subscriber.digests:
            continue
        if not digest.topics or set(digest.topics) & set(theirs):
            continue
        fix = (
            f"give them one of its topics, or take '{digest.key}' from their `digests:`"
            if subscriber.digests
            else "list the digests they want under `digests:` (default: every digest)"
        )
        check.warn(
            node,
            f"{subscriber.email} gets nothing from digest '{digest.key}': none of its topics "
            f"({', '.join(digest.topics)}) is one of theirs ({', '.join(theirs)}); {fix}",
        )


# --- dumping -----------------------------------------------------------------------------


def dump_config(config: Config) -> str:
    """The effective config as YAML, defaults filled in; load_config reads it back unchanged.

    Keys whose value is "none" (no topic hint, no base_url, ...) are left out.
    """
    document = CommentedMap()
    document["settings"] = _dump_settings(config.settings)
    document["topics"] = CommentedMap((t.key, _dump_topic(t)) for t in config.topics)
    document["filters"] = _dump_filters(config.filters)
    document["feeds"] = [_dump_feed(f) for f in config.feeds]
    document["digests"] = CommentedMap((d.key, _dump_digest(d)) for d in config.digests)
    document["subscribers"] = [_dump_subscriber(s) for s in config.subscribers]
    document.yaml_set_start_comment(
        f"Effective configuration of {config.path}, defaults filled in."
    )
    yaml = YAML(typ="rt")
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _dump_map(pairs: Sequence[tuple[str, object]]) -> CommentedMap:
    """A mapping without its None values (absent keys mean 'none' to the loader)."""
    return CommentedMap((k, v) for k, v in pairs if v is not None)


def _flow(values: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _dump_settings(s: Settings) -> CommentedMap:
    smtp = s.smtp
    return _dump_map(
        [
            ("timezone", s.timezone),
            ("data_dir", str(s.data_dir)),
            ("outbox", str(s.outbox)),
            ("templates", str(s.templates) if s.templates else None),
            ("poll_interval", format_duration(s.poll_interval)),
            ("from", s.sender),
            (
                "smtp",
                _dump_map(
                    [
                        ("host", smtp.host),
                        ("port", smtp.port),
                        ("security", smtp.security),
                        ("username_env", smtp.username_env),
                        ("password_env", smtp.password_env),
                        ("rate", format_rate(smtp.rate) if smtp.rate else None),
                    ]
                ),
            ),
            ("user_agent", s.user_agent),
            ("max_bytes", format_size(s.max_bytes)),
            ("max_entries", s.max_entries),
            ("concurrency", s.concurrency),
            ("per_host", s.per_host),
            ("timeout", format_duration(s.timeout)),
            ("lead_chars", s.lead_chars),
            ("base_url", s.base_url),
            ("listen", s.listen),
            ("database_url", s.database_url),
            ("stale_after", format_duration(s.stale_after)),
            ("keep_polls", format_duration(s.keep_polls)),
            ("keep_sent", format_duration(s.keep_sent)),
            ("block_private_addresses", s.block_private_addresses),
            ("tracking_params", _flow(s.tracking_params) if s.tracking_params else None),
            (
                "fallback_topic",
                _dump_map([("key", s.fallback_topic.key), ("title", s.fallback_topic.title)]),
            ),
            ("topic_threshold", s.topic_threshold),
            ("topic_examples", str(s.topic_examples) if s.topic_examples else None),
            ("topic_model_weight", s.topic_model_weight),
            (
                "dedupe",
                _dump_map(
                    [
                        ("window", format_duration(s.dedupe.window)),
                        ("title_threshold", s.dedupe.title_threshold),
                        ("lead_threshold", s.dedupe.lead_threshold),
                        ("combined_threshold", s.dedupe.combined_threshold),
                    ]
                ),
            ),
        ]
    )


def _dump_topic(t: Topic) -> CommentedMap:
    return _dump_map(
        [
            ("title", t.title),
            ("keywords", _flow(t.keywords)),
            ("exclude", _flow(t.exclude)),
            ("patterns", _flow(t.patterns)),
            ("aliases", _flow(t.aliases)),
            ("weight", t.weight),
        ]
    )


def _dump_feed(f: FeedConfig) -> CommentedMap:
    return _dump_map(
        [
            ("url", f.url),
            ("name", f.name),
            ("topic", f.topic),
            ("interval", format_duration(f.interval) if f.interval else None),
            ("priority", f.priority),
            ("max_bytes", format_size(f.max_bytes) if f.max_bytes else None),
            ("fetch_article", f.fetch_article),
            ("enabled", f.enabled),
            ("filters", _dump_filters(f.filters) if f.filters else None),
        ]
    )


def _dump_filters(filters: Filters) -> CommentedMap:
    return _dump_map(
        [
            ("block", [_dump_filter_rule(r) for r in filters.block]),
            ("keep", [_dump_filter_rule(r) for r in filters.keep]),
        ]
    )


def _dump_filter_rule(rule: FilterRule) -> CommentedMap:
    return _dump_map(
        [
            ("words", _flow(rule.words) if rule.words else None),
            ("pattern", rule.pattern),
            ("in", _flow(rule.fields)),
        ]
    )


def _dump_digest(d: DigestConfig) -> CommentedMap:
    return _dump_map(
        [
            ("schedule", d.schedule),
            ("subject", d.subject),
            ("title", d.title),
            ("max_per_topic", d.max_per_topic),
            ("max_total", d.max_total),
            ("topics", _flow(d.topics) if d.topics else None),
            ("window", format_duration(d.window)),
            ("send_empty", d.send_empty),
        ]
    )


def _dump_subscriber(s: Subscriber) -> CommentedMap:
    return _dump_map(
        [
            ("email", s.email),
            ("name", s.name),
            ("digests", _flow(s.digests) if s.digests else None),
            ("topics", _flow(s.topics) if s.topics else None),
        ]
    )
