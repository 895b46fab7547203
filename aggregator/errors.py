"""The one exception tree of the package.

    AggregatorError
     ├── ConfigError(ValueError)        feeds.yaml is invalid; carries every ConfigProblem
     ├── FetchError                     one feed could not be fetched (expected, per feed)
     │    └── BodyTooLargeError         the decompressed body passed the cap
     ├── ParseError(ValueError)         the body is not a feed we can read (expected, per feed)
     │    └── NotAFeedError             an HTML page; carries the feed links it advertises
     ├── StoreError                     the database is unusable (wrong schema version, ...)
     ├── DeliveryError                  a message could not be written or sent
     ├── TokenError(ValueError)         an unsubscribe token that is not well formed
     ├── SigningKeyError                the unsubscribe signing key is missing or unsafe
     └── AlreadyRunningError            another daemon holds the data directory

Expected per-feed errors (FetchError, ParseError) are recorded and the run goes on; anything
else is a bug and propagates. ``is_environmental`` tells the failures of the machine (a full
or read-only disk, a folder that may not be written, a locked database) from bugs: the daemon
and the CLI report those in one line (``error_text``), without a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AggregatorError(Exception):
    """Base class of every error this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a config file, located for the editor."""

    path: str  # the file, as the editor named it
    line: int  # 1-based; 0 when the problem has no single place (e.g. file missing)
    column: int  # 1-based; 0 when unknown
    key: str  # dotted key path, e.g. "feeds[3].url"
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(AggregatorError, ValueError):
    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FetchError(AggregatorError):
    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class BodyTooLargeError(FetchError):
    pass


class ParseError(AggregatorError, ValueError):
    def __init__(self, message: str, *, url: str = "") -> None:
        self.url = url
        super().__init__(message)


class NotAFeedError(ParseError):
    def __init__(self, message: str, *, url: str = "", feed_links: Sequence[str] = ()) -> None:
        self.feed_links = tuple(feed_links)
        super().__init__(message, url=url)


class StoreError(AggregatorError):
    pass


class DeliveryError(AggregatorError):
    pass


class TokenError(AggregatorError, ValueError):
    """An unsubscribe token that is not even well formed (truncated, wrong alphabet, unknown
    version). A well-formed token with a wrong signature is no error: it does not verify."""


class SigningKeyError(AggregatorError):
    """The unsubscribe signing key is too short, or its file is readable by others."""


class AlreadyRunningError(AggregatorError):
    """Another daemon holds this data directory (locks.holding): two would poll, build and
    send side by side."""


# sqlite's result codes for a machine's trouble, not the code's (sqlite3.Error.sqlite_errorname):
# SQLITE_FULL, SQLITE_READONLY_*, SQLITE_IOERR_*, SQLITE_CANTOPEN_*, SQLITE_BUSY_*, ...
_SQLITE_ENVIRONMENT = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                       "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_PERM", "SQLITE_NOLFS")  # fmt: skip


def _driver_error(exc: BaseException) -> BaseException:
    """The database driver's own error inside SQLAlchemy's wrapping (``.orig``), else ``exc``."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def is_environmental(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of this package or of the machine (OS errors; a database
    that is full, read-only, locked or cannot be opened) rather than a bug."""
    if isinstance(exc, AggregatorError | OSError):
        return True
    name = getattr(_driver_error(exc), "sqlite_errorname", None)
    return isinstance(name, str) and name.startswith(_SQLITE_ENVIRONMENT)


def error_text(exc: BaseException) -> str:
    """An error in one line: this package's own message as it is; an OS or database error
    with its type, without the library's boilerplate (sqlite's "database or disk is full",
    not SQLAlchemy's wrapping of it)."""
    if isinstance(exc, AggregatorError):
        return " ".join(str(exc).split())
    exc = _driver_error(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
