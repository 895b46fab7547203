"""Dedupe at scale: with 100,000 stored items, cluster 10,000 new ones (a benchmark, not a test).

    .venv/bin/python bench/dedupe_bench.py                      # 100k stored over 30 days
    .venv/bin/python bench/dedupe_bench.py --stored-days 3      # worst case: all in the window
    .venv/bin/python bench/dedupe_bench.py --json bench/results/dedupe.json

Builds a SQLite store of --stored items from --feeds feeds, first seen over the last
--stored-days days (a realistic history) with their LSH band keys (the store's dedupe index,
item_bands), then stores --new items from other polls through the real path:
pipeline.band_window (prunes the keys of items older than the window) and
store.upsert_items(..., stories=matcher) per feed, where each feed's new items are matched
against the window's items sharing a band key (one lookup per feed). About --dup-rate of the
new items are syndicated copies (other URL, restyled headline) of stored or other new items.
Prints the seconds of each phase, how many new items joined an existing story, the index size
(rows) and the process's peak memory.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.dedupe import BAND_SCHEME, band_keys_many, features
from aggregator.pipeline import band_window, open_store, story_matcher
from aggregator.records import Item

HERE = Path(__file__).resolve().parent
CORPUS_PY = HERE.parent.parent / "shared" / "bench" / "corpus.py"
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def _words(seed: int):  # the shared corpus generator's vocabulary, when it is there
    if CORPUS_PY.exists():
        spec = importlib.util.spec_from_file_location("corpus", CORPUS_PY)
        assert spec and spec.loader
        corpus = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(corpus)
        return corpus.Words(random.Random(seed))
    return None


class Texts:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _words(seed)
        self.vocab = [f"w{i}" for i in range(20000)]

    def title(self) -> str:
        if self.words is not None:
            return self.words.title(self.rng)
        n = self.rng.randint(5, 11)
        return " ".join(self.rng.choice(self.vocab) for _ in range(n)).capitalize()

    def lead(self) -> str:
        if self.words is not None:
            return " ".join(self.words.sentence(self.rng) for _ in range(self.rng.randint(1, 3)))
        return " ".join(self.rng.choice(self.vocab) for _ in range(40)) + "."


def make_item(key: str, title: str, lead: str, link: str, published: datetime) -> Item:
    digest = hashlib.sha256(f"{title}|{lead}|{link}".encode()).hexdigest()
    return Item(
        key=key,
        guid=key,
        link=link,
        title=title,
        title_generated=False,
        lead=lead,
        author=None,
        image_url=None,
        categories=(),
        published_at=published,
        content_hash=digest,
    )


def restyle(title: str, rng: random.Random) -> str:
    how = rng.choice(["update", "site", "case", "report", "same"])
    return {
        "update": f"Update: {title}",
        "site": f"{title} | Daily Paper",
        "case": title.title(),
        "report": f"{title} — report",
        "same": title,
    }[how]


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    feeds = [f"https://feed{i}.example/rss" for i in range(args.feeds)]
    cfg = work / "feeds.yaml"
    cfg.write_text(
        f"settings:\n  data_dir: {work / 'data'}\nfeeds:\n"
        + "".join(f"  - {{url: {u}}}\n" for u in feeds),
        encoding="utf-8",
    )
    config = load_config(cfg)
    store = open_store(config)
    store.sync_feeds([(u, u) for u in feeds], NOW)
    ids = {s.url: s.id for s in store.feed_states()}
    texts = Texts(args.seed)
    rng = random.Random(args.seed)

    # -- history: --stored items over --stored-days, written oldest first, 500 per write
    t = time.perf_counter()
    span = timedelta(days=args.stored_days)
    recent: list[tuple[str, str]] = []  # (title, lead) of stored items inside the window
    per_batch = 500
    last_id = 0
    for b in range(args.stored // per_batch):
        seen = NOW - span + span * (b + 1) / (args.stored // per_batch)
        feed = feeds[b % len(feeds)]
        batch = []
        for j in range(per_batch):
            title, lead = texts.title(), texts.lead()
            key = f"s{b}-{j}"
            batch.append((make_item(key, title, lead, f"https://x.example/{key}", seen), ""))
            if seen >= NOW - config.settings.dedupe.window:
                recent.append((title, lead))
        store.upsert_items(ids[feed], batch, seen)
        # Every item is banded when stored; the poller prunes what leaves the window.
        stored = store.recent_items(seen, after_id=last_id)
        keys = band_keys_many([features(r.title, r.lead) for r in stored])
        store.add_story_bands([(r.id, k) for r, k in zip(stored, keys, strict=True)])
        last_id = stored[-1].id
        store.prune_story_bands(seen - config.settings.dedupe.window)  # as each poll does
    build_s = time.perf_counter() - t
    band_rows_before = store.count_story_bands()

    # -- new: --new items from the other feeds; some are copies of recent stories
    new_feeds = feeds[len(feeds) // 2 :]
    pool = list(recent)
    batches: dict[str, list[tuple[Item, str]]] = {u: [] for u in new_feeds}
    copies = 0
    for n in range(args.new):
        if pool and rng.random() < args.dup_rate:
            title, lead = rng.choice(pool)
            title = restyle(title, rng)
            copies += 1
        else:
            title, lead = texts.title(), texts.lead()
            pool.append((title, lead))
        feed = new_feeds[n % len(new_feeds)]
        batches[feed].append((make_item(f"n{n}", title, lead, f"https://y.example/n{n}", NOW), ""))

    # Wall and CPU seconds: on a shared machine the CPU time is the steadier figure.
    started, cpu_started = time.perf_counter(), time.process_time()
    store.set_meta("dedupe_bands", BAND_SCHEME)  # banded as stored, above
    band_window(config, store, NOW)
    seeded_s, seeded_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    band_rows = store.count_story_bands()
    matcher = story_matcher(config)
    t, cpu = time.perf_counter(), time.process_time()
    for feed, batch in batches.items():
        store.upsert_items(ids[feed], batch, NOW, stories=matcher)
    cluster_s, cluster_cpu = time.perf_counter() - t, time.process_time() - cpu
    total_s, total_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stats = matcher.describe()
    band_rows_after = store.count_story_bands()
    store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "stored_items": args.stored,
        "stored_days": args.stored_days,
        "window_hours": config.settings.dedupe.window.total_seconds() / 3600,
        "new_items": args.new,
        "copies_among_new": copies,
        "joined_existing_story": stats["matches"],
        "by_rule": stats["by_rule"],
        "band_rows_before": band_rows_before,
        "band_rows_in_window": band_rows,
        "band_rows_after": band_rows_after,
        "items_with_candidates": stats["queries"],
        "candidates_verified": stats["candidates"],
        "seconds_build_history": round(build_s, 1),
        "seconds_prune_index": round(seeded_s, 2),
        "seconds_cluster_and_store_new": round(cluster_s, 2),
        "seconds_total": round(total_s, 2),
        "cpu_seconds_prune_index": round(seeded_cpu, 2),
        "cpu_seconds_cluster_and_store_new": round(cluster_cpu, 2),
        "cpu_seconds_total": round(total_cpu, 2),
        "peak_rss_mb": round(peak_mb),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--stored-days", type=float, default=30.0)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dedupe-bench-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
