"""Time the in-memory dedupe index (aggregator/bandindex.py) as a cold poll of 2,000 feeds uses
it: 71,000 items of 28 keys added a feed (36 items) at a time, then 2,000 lookups of a feed's
1,000 keys, a fifth of them held.

    .venv/bin/python bench/bandindex_bench.py
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.bandindex import BandIndex

ITEMS, KEYS, PER_FEED, LOOKUPS = 71_000, 28, 36, 2_000


def main() -> None:
    rng = np.random.default_rng(1)
    keys = rng.integers(-(2**63), 2**63 - 1, ITEMS * KEYS, dtype=np.int64)
    rows = [(i + 1, keys[i * KEYS : (i + 1) * KEYS].tobytes(), None, 0) for i in range(ITEMS)]
    index = BandIndex()
    started = time.perf_counter()
    for start in range(0, ITEMS, PER_FEED):
        index.add(rows[start : start + PER_FEED])
    added = time.perf_counter() - started
    asked = [
        np.concatenate((rng.choice(keys, 200), rng.integers(-(2**63), 2**63 - 1, 800))).tolist()
        for _ in range(LOOKUPS)
    ]
    started = time.perf_counter()
    for query in asked:
        index.lookup(query)
    looked = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"{len(index):,} keys in {len(index._runs)} runs: added in {added:.2f} s, "
        f"{LOOKUPS:,} lookups in {looked:.2f} s; peak RSS {peak} MB"
    )


if __name__ == "__main__":
    main()
