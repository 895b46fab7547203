"""Time extract_item over every entry of the corpus feeds (and /tmp/bench-corpus if present).

    .venv/bin/python bench/extract_bench.py [--profile] [--dump out.json] [--repeat N]
                                            [--compare before.json [--show N]]

Entries are parsed once (parse time is not measured), then extract_item runs over all of them.
--dump writes (headline, lead, link, key, image_url, categories, published_at,
title_generated, author, content_hash) of every item, to compare two versions of extract.py.
--compare reads such a dump made before a change (on this machine: same entries, same order)
and says how many leads and headlines changed, per feed file, with each changed lead before
and after (--show: at most N of them; default 40), and how many entries differ in any field
(0 for a pure refactor):

    git stash; .venv/bin/python bench/extract_bench.py --repeat 1 --dump /tmp/before.json
    git stash pop; .venv/bin/python bench/extract_bench.py --repeat 1 --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from collections import Counter
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
    ap.add_argument("--compare", help="a --dump made before a change: what changed since")
    ap.add_argument("--show", type=int, default=40, help="changed leads printed (--compare)")
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
    if args.dump:
        Path(args.dump).write_text(json.dumps(rows, ensure_ascii=False, indent=0))
    if args.compare:
        compare(json.loads(Path(args.compare).read_text()), rows, entries, args.show)


def compare(
    before: list[object], after: list[object], entries: list[tuple[str, str, object]], show: int
) -> None:
    """What changed between two dumps of the same entries: leads and headlines, per file."""
    if len(before) != len(after):
        sys.exit(f"{len(before)} entries in the old dump, {len(after)} now: not the same corpus")
    leads: Counter[str] = Counter()
    heads: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    shown = 0
    differ = 0  # entries with any field changed (link, key, author ...; or now kept/dropped)
    for (url, _, _), old, new in zip(entries, before, after, strict=True):
        root = url.removeprefix("https://example.org/").split("/", 1)[0]
        totals[root] += 1
        differ += old != new
        if old == new or old is None or new is None:
            continue
        name = url.removeprefix("https://example.org/")
        if old[0] != new[0]:  # type: ignore[index]
            heads[name] += 1
        if old[1] != new[1]:  # type: ignore[index]
            leads[name] += 1
            if shown < show:
                shown += 1
                print(f"\n{name}\n  - {old[1]!r}\n  + {new[1]!r}")  # type: ignore[index]
    print(f"\n{sum(leads.values())} of {len(after)} leads changed, {sum(heads.values())} headlines")
    print(f"{differ} of {len(after)} entries differ in some field (0 for a pure refactor)")
    for root, n in sorted(totals.items()):
        changed = sum(v for k, v in leads.items() if k.split("/", 1)[0] == root)
        print(f"  {root}: {changed} of {n} leads")
    for name, n in leads.most_common():
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
