"""The dedupe index in memory: which stored items carry a band key (dedupe.band_keys), and when
each of them was published and first seen.

The store keeps each item's keys as one packed row (store.item_bands) and answers lookups from
this index, which it reads once and then keeps up to date. A B-tree over ~28 random keys an
item, as SQLite kept it before, cost more to write than everything else a cold poll stores.

The keys are a few sorted runs of (key, item id) pairs in numpy arrays, merged as they grow
(each run at least twice the size of the next one, up to RUN_KEYS): adding a feed's items
sorts only them, and a lookup is a binary search per run. 2 million keys take 16 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from .clock import Micros, micros

Ints: TypeAlias = npt.NDArray[np.int64]
Prints: TypeAlias = npt.NDArray[np.uint32]  # keys' fingerprints: their low 32 bits
Ids: TypeAlias = npt.NDArray[np.signedinteger[Any]]  # int32 or int64

# (item id, packed keys, published, first seen): an item as the index learns it, its times
# in microseconds since the epoch (``micros``)
Row: TypeAlias = tuple[int, bytes, int | None, int]

RUN_KEYS = 1 << 18  # the keys of a run merges stop at (2 MB of them)

_STORED = np.dtype("<i8")  # a key is a signed 64-bit integer, little-endian where stored


def pack(keys: Iterable[int]) -> bytes:
    """Band keys as the store keeps them (item_bands.band_keys)."""
    return np.fromiter(keys, dtype=np.int64).astype(_STORED, copy=False).tobytes()


def unpack(packed: bytes) -> Ints:
    return np.frombuffer(packed, dtype=_STORED).astype(np.int64)


# Times as whole microseconds since the epoch (clock.micros): exact, as the store compares them.
_NONE = np.iinfo(np.int64).min  # no time given


def micros_many(stamps: Sequence[datetime | None] | Sequence[str | None]) -> Ints:
    """``micros`` of many times; None (not given) is NaT. Naive ISO text, as SQLite keeps it
    ("2026-11-25 08:25:08.084640"), is read in bulk, in C: the two times of 71,000 items
    took 0.12 s as datetimes. Other backends give datetimes."""
    if all(stamp is None or isinstance(stamp, str) for stamp in stamps):
        # NaT, what numpy makes of None, is int64's minimum: _NONE.
        return np.array(stamps, dtype="datetime64[us]").astype(np.int64)
    return np.array([_NONE if s is None else micros(cast(datetime, s)) for s in stamps], np.int64)


class BandIndex:
    """Band key -> the ids of the items that have it; item id -> when it was published and
    first seen. Items are added in id order (the store adds new items, which have the
    largest ids)."""

    def __init__(self) -> None:
        # (sorted keys, their item ids): ids in 32 bits while they fit, a quarter of the memory
        self._runs: list[tuple[Prints, Ids]] = []
        # Per item, in id order, the first _size of each array: grown by doubling.
        self._ids: Ints = np.empty(0, np.int64)
        self._published: Ints = np.empty(0, np.int64)  # micros, _NONE: not given
        self._seen: Ints = np.empty(0, np.int64)
        self._size = 0

    @property
    def high(self) -> int:
        """The largest item id added (0: none): the store reads only the rows after it."""
        return int(self._ids[self._size - 1]) if self._size else 0

    def __len__(self) -> int:
        """The keys held."""
        return sum(len(keys) for keys, _ in self._runs)

    def add(self, rows: Iterable[Row]) -> None:
        ids: list[int] = []
        blobs: list[bytes] = []
        published: list[int] = []
        seen: list[int] = []
        for item_id, packed, published_at, first_seen_at in rows:
            ids.append(item_id)
            blobs.append(packed)
            published.append(_NONE if published_at is None else published_at)
            seen.append(first_seen_at)
        self.add_columns(ids, blobs, np.asarray(published, np.int64), np.asarray(seen, np.int64))

    def add_columns(
        self, ids: Sequence[int], blobs: Sequence[bytes], published: Ints, seen: Ints
    ) -> None:
        """``add`` by column, times as ``micros``; a publication time not given is NaT (as
        ``micros_many`` makes it)."""
        if not ids:
            return
        counts = [len(packed) // _STORED.itemsize for packed in blobs]
        self._append_items(np.asarray(ids, np.int64), published, seen)
        keys = _fingerprints(unpack(b"".join(blobs)))
        owners = np.repeat(_narrow(np.asarray(ids, np.int64)), counts)
        order = np.argsort(keys)
        self._runs.append((keys[order], owners[order]))
        # Merged while the last run is at least half the one before: the runs stay few, and
        # each key is merged O(log n) times in all. Not beyond RUN_KEYS: a merge holds both
        # runs and their sum at once, and a lookup's cost per run is a few microseconds.
        while (
            len(self._runs) > 1
            and 2 * len(self._runs[-1][0]) >= len(self._runs[-2][0])
            and len(self._runs[-1][0]) + len(self._runs[-2][0]) <= RUN_KEYS
        ):
            later = self._runs.pop()
            self._runs.append(_merge(self._runs.pop(), later))

    def _append_items(self, ids: Ints, published: Ints, seen: Ints) -> None:
        if self._size and ids.min() <= self.high:
            raise ValueError("items are added to the band index in id order")
        end = self._size + len(ids)
        if end > len(self._ids):
            room = max(end, 2 * len(self._ids), 1024)
            self._ids = np.resize(self._ids, room)
            self._published = np.resize(self._published, room)
            self._seen = np.resize(self._seen, room)
        self._ids[self._size : end] = ids
        self._published[self._size : end] = published
        self._seen[self._size : end] = seen
        self._size = end

    def lookup(self, keys: Iterable[int]) -> dict[int, list[int]]:
        """The item ids of each of these keys that any item has, in no particular order.

        Keys are told apart by their low 32 bits: with 2 million keys held, about one
        lookup in 2,000 also finds an item that has another key, a candidate the verifier
        turns down (dedupe.verify). Full keys would take 8 MB more at that size."""
        asked = np.unique(np.fromiter(keys, dtype=np.int64))
        prints = _fingerprints(asked)
        wanted = np.unique(prints)
        by_print: dict[int, list[int]] = {}
        for run_keys, run_ids in self._runs:
            if not len(run_keys):
                continue
            # One search for every key; the end of the equal keys only for those found (a
            # few in ten), as the searches were a third of a cold poll's lookups.
            starts = np.searchsorted(run_keys, wanted, side="left")
            hit = np.flatnonzero(run_keys[np.minimum(starts, len(run_keys) - 1)] == wanted)
            ends = np.searchsorted(run_keys, wanted[hit], side="right")
            for i, end in zip(hit.tolist(), ends.tolist(), strict=True):
                by_print.setdefault(int(wanted[i]), []).extend(run_ids[starts[i] : end].tolist())
        return {
            key: by_print[fingerprint]
            for key, fingerprint in zip(asked.tolist(), prints.tolist(), strict=True)
            if fingerprint in by_print
        }

    def times(self, ids: Sequence[int], since: Micros) -> dict[int, tuple[Micros | None, Micros]]:
        """When each of these items was published (None: not given) and first seen, of those
        first seen at or after ``since``; times in microseconds (clock.micros)."""
        if not ids or not self._size:
            return {}
        held = self._ids[: self._size]
        wanted = np.asarray(ids, np.int64)
        at = np.minimum(np.searchsorted(held, wanted), self._size - 1)
        keep = (held[at] == wanted) & (self._seen[at] >= since)
        return {
            item_id: (None if published == _NONE else published, first_seen)
            for item_id, published, first_seen in zip(
                wanted[keep].tolist(),
                self._published[at[keep]].tolist(),
                self._seen[at[keep]].tolist(),
                strict=True,
            )
        }

    def drop_below(self, first_id: int) -> None:
        """Forget the items with ids under ``first_id`` (they left the window)."""
        kept: list[tuple[Prints, Ids]] = []
        for run_keys, run_ids in self._runs:
            stay = run_ids >= first_id
            if stay.all():
                kept.append((run_keys, run_ids))
            elif stay.any():
                kept.append((run_keys[stay], run_ids[stay]))
        self._runs = kept
        cut = int(np.searchsorted(self._ids[: self._size], first_id))
        if cut:
            end = self._size
            self._ids = self._ids[cut:end].copy()
            self._published = self._published[cut:end].copy()
            self._seen = self._seen[cut:end].copy()
            self._size = end - cut


def _fingerprints(keys: Ints) -> Prints:
    return keys.astype(np.uint32)  # the low 32 bits: the keys are well mixed (dedupe)


def _narrow(ids: Ints) -> Ids:
    return ids.astype(np.int32) if len(ids) and ids.max() <= np.iinfo(np.int32).max else ids


def _merge(run: tuple[Prints, Ids], other: tuple[Prints, Ids]) -> tuple[Prints, Ids]:
    """Two sorted runs as one. Each of ``other``'s keys goes where a binary search in
    ``run`` puts it, and ``run`` fills the rest in order: no sort, and no index array the size
    of both (the peak memory of a poll is this merge's)."""
    (keys, ids), (more_keys, more_ids) = run, other
    size = len(keys) + len(more_keys)
    at = np.searchsorted(keys, more_keys, side="right")
    at += np.arange(len(more_keys))
    merged_keys = np.empty(size, np.uint32)
    merged_ids = np.empty(size, np.result_type(ids, more_ids))
    merged_keys[at] = more_keys
    merged_ids[at] = more_ids
    rest = np.ones(size, bool)
    rest[at] = False
    merged_keys[rest] = keys
    merged_ids[rest] = ids
    return merged_keys, merged_ids
