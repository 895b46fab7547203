"""Atomic files in ``outbox/``: rendered messages waiting, sent, or failed; HTML previews.

    outbox/
      pending/   <edition_key>--<recipient hash>.eml    written by write_message, read by deliver
      sent/      the same files, moved by mark_sent
      failed/    moved by mark_failed, with <name>.reason beside each (one line of text)
      previews/  <edition_key>.html                       written by write_preview

Every file appears whole or not at all: it is written to a ``.tmp-*`` file in the folder it
ends up in, flushed and fsynced, then ``os.replace``d into place, and the folder is fsynced.
``write_messages`` does the same for a batch with one ``os.sync()`` for all the temp files.
Moves between folders are single ``os.replace`` calls (one file system). Names are chosen
by the caller and deterministic (``message_name``), so a re-run of the same edition finds
its message already pending or sent and does not write it twice.

Temp files left by a crash are ignored by ``list_messages`` and removed by ``clean_temp``.
``prune`` deletes sent messages and previews older than a cut-off: they are records only (the
store, not these files, says which editions were built and sent).
OS errors surface as ``DeliveryError`` with the path in the message and the cause chained.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from aggregator.errors import DeliveryError

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
PREVIEWS = "previews"
STATES = (PENDING, SENT, FAILED)  # the folders a message moves through
TEMP_PREFIX = ".tmp-"
REASON_SUFFIX = ".reason"  # failed/<name>.reason: why delivery gave up
MAX_KEY_CHARS = 100  # of the edition key in a file name (file names stop at 255 bytes)

_NOT_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- names -----------------------------------------------------------------------------------


def _short_hash(text: str, chars: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:chars]


def safe_key(edition_key: str) -> str:
    """``edition_key`` as a file-name stem: kept as is when already safe, else cleaned and
    suffixed with a hash of the original so that two keys never share a name."""
    cleaned = _NOT_SAFE.sub("-", edition_key).strip(".-")[:MAX_KEY_CHARS]
    if cleaned == edition_key and cleaned:
        return cleaned
    return f"{cleaned or 'edition'}-{_short_hash(edition_key, 8)}"


def message_name(edition_key: str, recipient: str) -> str:
    """The file name of one edition's message to one recipient, deterministic.

    ``2026-11-24-daily--3f2a9c0b1d4e.eml``: the recipient (trimmed, lower-cased) only as a
    hash, so addresses do not show in directory listings.
    """
    return f"{safe_key(edition_key)}--{_short_hash(recipient.strip().lower())}.eml"


def _check_name(name: str) -> None:
    if (
        not name
        or name.startswith(".")
        or name != Path(name).name
        or "/" in name
        or "\\" in name
        or name.endswith(REASON_SUFFIX)
    ):
        raise ValueError(f"not a usable outbox file name: {name!r}")


# -- low-level atomic operations ------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename itself is atomic
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file, or the whole new one."""
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)
    _fsync_dir(dst.parent)
    _fsync_dir(src.parent)


def ensure_layout(outbox: Path) -> None:
    """Create ``outbox/`` and its four folders if missing."""
    try:
        for folder in (*STATES, PREVIEWS):
            (outbox / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeliveryError(f"cannot create outbox folders in {outbox}: {exc}") from exc


def check_writable(outbox: Path) -> None:
    """DeliveryError unless a file can be made in each folder a message moves through (the
    daemon checks at start rather than fail at every edition and every delivery)."""
    ensure_layout(outbox)
    for folder in (*STATES, PREVIEWS):
        try:
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=outbox / folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise DeliveryError(f"cannot write into {outbox / folder}: {exc}") from exc


# -- the public operations -------------------------------------------------------------------


def write_message(outbox: Path, name: str, data: bytes) -> Path:
    """Put a message into ``pending/`` atomically; returns its path.

    When a file of that name is already pending or sent, nothing is written and that
    file's path is returned: the same edition is never queued twice. (A failed one is
    queued again: re-running an edition is how the editor retries it.)
    """
    _check_name(name)
    ensure_layout(outbox)
    for state in (PENDING, SENT):
        existing = outbox / state / name
        if existing.exists():
            return existing
    target = outbox / PENDING / name
    try:
        _atomic_write(target, data)
    except OSError as exc:
        raise DeliveryError(f"cannot write {target}: {exc}") from exc
    return target


def write_messages(outbox: Path, messages: Sequence[tuple[str, bytes]]) -> list[Path]:
    """``write_message`` for many messages with one flush to disk instead of one per file.

    Each message new to the outbox is written to a temp file in ``pending/``; one
    ``os.sync()`` makes them all durable; then each is renamed into place and the folder is
    fsynced once. The guarantees are those of ``write_message`` (every file whole or absent;
    a name already pending or sent is not written again), at a fraction of the cost when
    thousands of digests go out at once. Returns each message's path, in order.
    """
    ensure_layout(outbox)
    paths: list[Path] = []
    temps: list[tuple[Path, Path]] = []
    try:
        for name, data in messages:
            _check_name(name)
            existing = next(
                (p for p in (outbox / PENDING / name, outbox / SENT / name) if p.exists()), None
            )
            target = outbox / PENDING / name
            paths.append(existing or target)
            if existing is not None or any(t == target for _, t in temps):
                continue
            fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
            temps.append((Path(tmp_name), target))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp_name, 0o644)
        if temps:
            os.sync()  # every temp file's data on disk before any rename makes it visible
            for tmp, target in temps:
                os.replace(tmp, target)
            _fsync_dir(outbox / PENDING)
    except OSError as exc:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise DeliveryError(f"cannot write messages into {outbox / PENDING}: {exc}") from exc
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    return paths


def write_preview(outbox: Path, edition_key: str, html: str) -> Path:
    """Write (or replace) ``previews/<edition_key>.html`` atomically; returns its path."""
    ensure_layout(outbox)
    target = outbox / PREVIEWS / f"{safe_key(edition_key)}.html"
    try:
        _atomic_write(target, html.encode("utf-8"))
    except OSError as exc:
        raise DeliveryError(f"cannot write {target}: {exc}") from exc
    return target


def mark_sent(outbox: Path, name: str) -> Path:
    """Move ``pending/<name>`` to ``sent/``; returns the new path.

    Idempotent: a message already in ``sent/`` is left there.
    """
    _check_name(name)
    ensure_layout(outbox)
    src, dst = outbox / PENDING / name, outbox / SENT / name
    try:
        _move(src, dst)
    except FileNotFoundError as exc:
        if dst.exists():
            return dst
        raise DeliveryError(f"no pending message {src}") from exc
    except OSError as exc:
        raise DeliveryError(f"cannot move {src} to {dst}: {exc}") from exc
    return dst


def mark_failed(outbox: Path, name: str, reason: str) -> Path:
    """Move ``pending/<name>`` to ``failed/`` and write ``failed/<name>.reason``.

    The reason is written first, so a failed message never lacks its explanation.
    """
    _check_name(name)
    ensure_layout(outbox)
    src, dst = outbox / PENDING / name, outbox / FAILED / name
    reason_path = outbox / FAILED / f"{name}{REASON_SUFFIX}"
    if not src.exists() and not dst.exists():
        raise DeliveryError(f"no pending message {src}")
    try:
        _atomic_write(reason_path, _reason_text(reason))
        if not src.exists():  # failed already: the reason is updated, the file stays
            return dst
        _move(src, dst)
    except FileNotFoundError as exc:
        with contextlib.suppress(OSError):
            reason_path.unlink()
        raise DeliveryError(f"no pending message {src}") from exc
    except OSError as exc:
        raise DeliveryError(f"cannot move {src} to {dst}: {exc}") from exc
    return dst


def _reason_text(reason: str) -> bytes:
    return (" ".join(reason.split()) + "\n").encode("utf-8")


def failure_reason(outbox: Path, name: str) -> str | None:
    """The reason recorded by ``mark_failed``, or None."""
    try:
        return (outbox / FAILED / f"{name}{REASON_SUFFIX}").read_text("utf-8").strip()
    except FileNotFoundError:
        return None


def requeue_failed(outbox: Path, name: str) -> Path:
    """Move ``failed/<name>`` back to ``pending/`` (dropping its reason); returns the path."""
    _check_name(name)
    ensure_layout(outbox)
    src, dst = outbox / FAILED / name, outbox / PENDING / name
    try:
        _move(src, dst)
    except OSError as exc:
        raise DeliveryError(f"cannot move {src} to {dst}: {exc}") from exc
    with contextlib.suppress(FileNotFoundError):
        (outbox / FAILED / f"{name}{REASON_SUFFIX}").unlink()
    return dst


def _is_message(path: Path) -> bool:
    return (
        not path.name.startswith(".") and not path.name.endswith(REASON_SUFFIX) and path.is_file()
    )


def list_messages(outbox: Path) -> dict[str, list[Path]]:
    """The messages in each state folder, sorted by name: ``{"pending": [...], ...}``.

    Temp files, hidden files and ``.reason`` sidecars are not messages. A missing folder
    lists as empty.
    """
    listing: dict[str, list[Path]] = {}
    for state in STATES:
        folder = outbox / state
        try:
            entries = sorted(p for p in folder.iterdir() if _is_message(p))
        except FileNotFoundError:
            entries = []
        listing[state] = entries
    return listing


def clean_temp(outbox: Path, *, older_than: datetime | None = None) -> list[Path]:
    """Remove temp files a crashed writer left behind; returns what was removed.

    With ``older_than`` (an aware datetime, e.g. ``clock.now() - timedelta(hours=1)``) only
    temp files last modified before it are removed, so a writer in another process that is
    still running keeps its file. Without it, every temp file goes: call it so only when
    nothing else writes to the outbox (at start-up).
    """
    if older_than is not None and older_than.tzinfo is None:
        raise ValueError("clean_temp needs a timezone-aware older_than")
    cutoff = older_than.timestamp() if older_than is not None else None
    return _remove_older(
        outbox, (*STATES, PREVIEWS), lambda name: name.startswith(TEMP_PREFIX), cutoff
    )


def prune(outbox: Path, before: datetime) -> int:
    """Delete the sent messages and the previews last written before ``before`` (aware);
    pending and failed messages stay, whatever their age. The files deleted."""
    if before.tzinfo is None:
        raise ValueError("prune needs a timezone-aware cut-off")
    return len(
        _remove_older(
            outbox, (SENT, PREVIEWS), lambda name: not name.startswith("."), before.timestamp()
        )
    )


def _remove_older(
    outbox: Path, folders: Sequence[str], wanted: Callable[[str], bool], cutoff: float | None
) -> list[Path]:
    """Remove the files of these folders whose name is ``wanted`` and that were last modified
    before ``cutoff`` (a timestamp; None: whatever their age). A file that vanishes meanwhile
    (its writer finished or gave up) is skipped; any other failure is a DeliveryError."""
    removed: list[Path] = []
    for folder in folders:
        try:
            paths = [p for p in (outbox / folder).iterdir() if wanted(p.name)]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DeliveryError(f"cannot list {outbox / folder}: {exc}") from exc
        for path in paths:
            try:
                if not path.is_file() or (cutoff is not None and path.stat().st_mtime >= cutoff):
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise DeliveryError(f"cannot remove {path}: {exc}") from exc
            removed.append(path)
    return removed
