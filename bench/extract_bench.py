"""Time extract_item over every entry of the corpus feeds (and /tmp/bench-corpus if present).

    .venv/bin/python bench/extract_bench.py [--profile] [--dump out.json] [--repeat N]

Entries are parsed once (parse time is not measured), then extract_item runs over all of them.
--dump writes (headline, lead, link, key, image_url, categories, published_at,
title_generated) of every item, to compare two versions of extract.py.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.extract import extract_item
from aggregator.parse import parse_feed

ROOTS = [Path("/work/shared/corpus/feeds"), Path("/tmp/bench-corpus")]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def load() -> list[tuple[str, str, object]]:
    """(feed url, feed title, RawEntry) for every entry of every parseable feed file."""
    out: list[tuple[str, str, object]] = []
    for root in ROOTS:
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix == ".json":
                continue
            url = f"https://example.org/{path.relative_to(root)}"
            try:
                feed = parse_feed(path.read_bytes(), url=url)
            except Exception:
                continue
            out.extend((url, feed.title or "", e) for e in feed.entries)
    return out


def run(entries: list[tuple[str, str, object]]) -> list[object]:
    return [
        extract_item(e, feed_url=url, feed_name="", feed_title=title, now=NOW)  # type: ignore[arg-type]
        for url, title, e in entries
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--dump")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    entries = load()
    print(f"{len(entries)} entries")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run(entries)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    best = float("inf")
    items: list[object] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        items = run(entries)
        best = min(best, time.perf_counter() - t)
    ms = best * 1000
    print(
        f"extract_item: {ms:.0f} ms total, {ms / len(entries):.3f} ms per item"
        f" (best of {args.repeat})"
    )
    if args.dump:
        rows = [
            None
            if i is None
            else [
                i.title,  # type: ignore[attr-defined]
                i.lead,  # type: ignore[attr-defined]
                i.link,  # type: ignore[attr-defined]
                i.key,  # type: ignore[attr-defined]
                i.image_url,  # type: ignore[attr-defined]
                list(i.categories),  # type: ignore[attr-defined]
                i.published_at.isoformat() if i.published_at else None,  # type: ignore[attr-defined]
                i.title_generated,  # type: ignore[attr-defined]
                i.author,  # type: ignore[attr-defined]
                i.content_hash,  # type: ignore[attr-defined]
            ]
            for i in items
        ]
        Path(args.dump).write_text(json.dumps(rows, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()
