"""Time a parse worker's per-item work apart from extract: parse_feed, dedupe.features and
dedupe.band_keys_many (one call a feed, as the worker makes it), over the bench corpus.

    .venv/bin/python bench/worker_bench.py [--feeds N] [--repeat N] [--profile STAGE]
                                           [--dump out.json | --compare before.json]

Times come from the first --feeds files of /tmp/bench-corpus/n2000-s42-p8765 (bench/run.py
makes it), best of --repeat. --dump writes a digest of every output of those three stages
(each parsed entry and feed, with feedparser alone too; each item's features and band keys)
over those feeds and the shared corpus; --compare says which files differ from such a dump: 0
for a pure speed change. Run both with PYTHONHASHSEED=0: parse gives equal-length contents
of one entry in set order.

    export PYTHONHASHSEED=0
    git stash; .venv/bin/python bench/worker_bench.py --dump /tmp/before.json
    git stash pop; .venv/bin/python bench/worker_bench.py --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator import dedupe, parse
from aggregator.extract import extract_item

BENCH = Path("/tmp/bench-corpus/n2000-s42-p8765/feeds")
SHARED = Path("/work/shared/corpus/feeds")
NOW = datetime(2026, 11, 24, tzinfo=UTC)
HEADERS = {"content-type": "application/xml"}
STAGES = ("parse", "features", "band_keys")


def url_of(path: Path) -> str:
    return f"http://127.0.0.1:8765/feeds/{path.name}"


def items_of(feed: parse.ParsedFeed, url: str) -> list[tuple[str, str]]:
    found = (
        extract_item(e, feed_url=url, feed_name="X", feed_title=feed.title or "", now=NOW)
        for e in feed.entries
    )
    return [(i.title, i.lead) for i in found if i is not None]


def timing(files: list[Path], repeat: int, profile: str | None) -> None:
    bodies = [(p.read_bytes(), url_of(p)) for p in files]
    feeds = [parse.parse_feed(b, url=u, headers=HEADERS) for b, u in bodies]
    pairs = [items_of(f, u) for f, (_, u) in zip(feeds, bodies, strict=True)]
    feats = [[dedupe.features(t, lead) for t, lead in p] for p in pairs]
    n = sum(map(len, pairs))

    # Each feed's results dropped before the next, as in a worker: a run that kept them all
    # would time the garbage collector going through them too.
    def each_feed(work: Callable[[Any], object], feeds: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for feed in feeds:
                work(feed)

        return run

    runs = {
        "parse": each_feed(lambda bu: parse.parse_feed(bu[0], url=bu[1], headers=HEADERS), bodies),
        "features": each_feed(lambda p: [dedupe.features(t, lead) for t, lead in p], pairs),
        "band_keys": each_feed(dedupe.band_keys_many, feats),
    }
    print(f"{len(files)} feeds, {n} items (extracted); best of {repeat}:")
    for stage in STAGES:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            runs[stage]()
            best = min(best, time.perf_counter() - t)
        print(f"  {stage:10s} {best / n * 1000:.4f} ms/item")
    if profile:
        prof = cProfile.Profile()
        prof.runcall(runs[profile])
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def records(path: Path) -> Iterator[str]:
    """Every output of the three stages for one feed file, as text."""
    url = url_of(path)
    body = path.read_bytes()
    parsed: list[parse.ParsedFeed] = []
    for fast in (True, False):  # the fast path, then feedparser alone
        parse.FAST_PATH = fast
        try:
            parsed.append(parse.parse_feed(body, url=url, headers=HEADERS))
        except Exception as exc:  # an error is an output too
            yield f"{type(exc).__name__}: {exc}"
        finally:
            parse.FAST_PATH = True
    for feed in parsed:
        yield repr((feed.title, feed.link, feed.ttl_minutes, feed.warning))
        yield from map(repr, feed.entries)
    feats = [dedupe.features(t, lead) for t, lead in items_of(parsed[0], url)] if parsed else []
    for f in feats:
        sets = (f.title_numbers, f.lead_words, f.lead_numbers, f.lead_shingles, f.names)
        yield repr((f.title, f.title_words, f.title_bag, f.lead_length, *map(sorted, sets)))
    yield repr(dedupe.band_keys_many(feats))


def digest(files: list[Path]) -> dict[str, str]:
    out = {}
    for path in files:
        h = hashlib.sha256()
        for r in records(path):
            h.update(r.encode("utf-8", "surrogatepass") + b"\0")
        out[str(path)] = h.hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=400, help="bench feeds timed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=STAGES, help="cProfile one stage after timing")
    ap.add_argument("--dump", help="write a digest of every output, to compare after a change")
    ap.add_argument("--compare", help="a --dump made before a change: which files differ")
    args = ap.parse_args()
    if not (args.dump or args.compare):
        timing(sorted(BENCH.glob("*.xml"))[: args.feeds], args.repeat, args.profile)
        return
    shared = sorted(p for p in SHARED.rglob("*") if p.is_file()) if SHARED.exists() else []
    now = digest(shared + sorted(BENCH.glob("*.xml"))[: args.feeds])
    if args.dump:
        Path(args.dump).write_text(json.dumps(now, indent=0))
        print(f"{len(now)} files digested")
        return
    before = json.loads(Path(args.compare).read_text())
    differ = [p for p in now if before.get(p) != now[p]]
    for p in differ[:20]:
        print(f"  differs: {p}")
    print(f"{len(differ)} of {len(now)} files differ (0 for a pure speed change)")


if __name__ == "__main__":
    main()
