"""Digest editions at scale: 10,000 subscribers over 20 topic sets (a benchmark, not a test).

    .venv/bin/python bench/digest_bench.py
    .venv/bin/python bench/digest_bench.py --subscribers 2000 --topic-sets 5
    .venv/bin/python bench/digest_bench.py --dir /tmp/x --json bench/results/digest.json

Writes a feeds.yaml with --subscribers subscribers spread round-robin over --topic-sets
distinct topic choices (the first set is "every topic"), fills a SQLite store with a full
day of stories (--per-topic per topic, each told by 4 feeds, 400-character leads), then
times one real ``pipeline.build_editions`` run: the stories chosen per group of subscribers,
rendered and inlined by premailer once per distinct edition, recorded in the store, then
personalised (To, Message-ID, unsubscribe links, the "why you get this" line), composed and
written atomically (fsync) into outbox/pending/ one file per subscriber. Prints the seconds
of each phase and the total; the goal is under 30 s for 10,000 subscribers and 20 sets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator import outbox, pipeline, render
from aggregator.clock import FrozenClock
from aggregator.config import load_config
from aggregator.records import Item
from aggregator.store import Store

CUTOFF = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
TOPICS = ["world", "business", "tech", "science", "health", "sport", "culture", "climate"]
FEEDS = [(f"https://feed{n}.example/rss", f"Feed Number {n}") for n in range(4)]
LEAD = (
    "The council approved the plan on Tuesday after a long debate, officials said, and work "
    "is due to start next spring. Critics said the cost had doubled since the first estimate "
    "and that residents had not been asked. The mayor said the savings would pay for it "
    "within ten years, and that a second phase would follow if the first went well. More "
    "detail was promised for the next meeting."
)[:400]


def topic_sets(n: int) -> list[tuple[str, ...]]:
    """``n`` distinct topic choices: every topic first, then pairs and triples."""
    sets: list[tuple[str, ...]] = [()]
    for size in (2, 3, 1, 4):
        sets += list(itertools.combinations(TOPICS, size))
    return sets[:n]


def write_config(folder: Path, subscribers: int, sets: list[tuple[str, ...]]) -> Path:
    lines = [
        "settings:",
        "  timezone: Europe/London",
        "  data_dir: data",
        "  outbox: outbox",
        '  from: "Morning Brief <brief@example.org>"',
        "  base_url: https://brief.example.org",
        "topics:",
        *(f"  {t}: {{title: {t.title()}}}" for t in TOPICS),
        "feeds:",
        *(f"  - url: {u}\n    name: {n}" for u, n in FEEDS),
        "digests:",
        '  daily: {schedule: "0 7 * * *", subject: "Morning Brief - {date:%A %d %B}"}',
        "subscribers:",
    ]
    for n in range(subscribers):
        chosen = sets[n % len(sets)]
        lines.append(f"  - email: reader{n:05d}@example.org")
        if chosen:
            lines.append(f"    topics: [{', '.join(chosen)}]")
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fill_store(store: Store, per_topic: int) -> int:
    store.sync_feeds(FEEDS, CUTOFF - timedelta(days=2))
    ids = {s.url: s.id for s in store.feed_states()}
    n = 0
    for t, topic in enumerate(TOPICS):
        for k in range(per_topic):
            n += 1
            at = CUTOFF - timedelta(hours=1, minutes=7 * k + t)
            link = f"https://www.example-news.example/2026/11/24/{topic}/story-{n}-about-a-thing"
            for url, _ in FEEDS:
                item = Item(
                    key=f"{n}-{url}",
                    guid=str(n),
                    link=link,
                    title=f"A reasonably long headline about {topic}, story {n}, and what it means",
                    title_generated=False,
                    lead=LEAD,
                    author=None,
                    image_url=None,
                    categories=(),
                    published_at=at,
                    content_hash=str(n),
                )
                store.upsert_items(ids[url], [(item, topic)], at)
    return n


class Timer:
    """Wraps functions to add up the seconds spent in each (by label)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(owner, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--topic-sets", type=int, default=20)
    parser.add_argument("--per-topic", type=int, default=10, help="stories per topic")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    folder = args.dir or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    sets = topic_sets(args.topic_sets)
    started = time.perf_counter()
    config = load_config(write_config(folder, args.subscribers, sets))
    load_s = time.perf_counter() - started
    store = pipeline.open_store(config)
    stories = fill_store(store, args.per_topic)

    timer = Timer()
    timer.wrap(render, "render_shared", "render + inline (premailer), per distinct edition")
    timer.wrap(render, "personalise", "personalise")
    timer.wrap(render, "compose", "compose MIME bytes")
    timer.wrap(outbox, "write_messages", "write .eml files (atomic; one sync per batch)")
    timer.wrap(outbox, "write_preview", "write previews")
    timer.wrap(Store, "story_candidates", "store: choose stories")
    timer.wrap(Store, "record_editions", "store: record editions")
    timer.wrap(Store, "mark_written", "store: mark written")
    clock = FrozenClock(CUTOFF)
    start = time.perf_counter()
    reports = pipeline.build_editions(config, store, clock, scheduled_for=CUTOFF)
    total = time.perf_counter() - start
    store.close()

    written = [r for r in reports if r.path is not None]
    sizes = sorted({r.stories for r in written})
    print(
        f"{len(written)} messages for {args.subscribers} subscribers over {len(sets)} topic sets "
        f"({stories} stories stored, {sizes[0]}-{sizes[-1]} per edition); config load {load_s:.2f}s"
    )
    for label, seconds in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {label:52} {seconds:7.2f}s  ({timer.calls[label]} calls)")
    print(
        f"  {'build_editions total':52} {total:7.2f}s  ({1000 * total / len(written):.2f} ms/msg)"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory {peak_mb:.0f} MB")
    if args.dir is None:
        shutil.rmtree(folder)  # ~0.5 GB of messages
    else:
        print(f"  outbox: {folder / 'outbox'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "subscribers": args.subscribers,
                    "topic_sets": len(sets),
                    "messages": len(written),
                    "total_s": round(total, 3),
                    "phases_s": {k: round(v, 3) for k, v in timer.seconds.items()},
                    "peak_mb": round(peak_mb),
                },
                indent=2,
            )
        )
    return 0 if total < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
