"""Dedupe quality on the shared benchmark corpus: our clustering vs its ground_truth.json.

The corpus generator (../shared/bench/corpus.py) writes N feeds and the clusters of items that
are one story in several feeds (tracking URLs, own URLs, "Update:" prefixes, " | Site"
suffixes, Title Case, " — report", swapped words, extended leads). This script polls every
feed once through the real pipeline (file: URLs, no server), then scores every pair of
stored items: same story in the truth vs same story id in our store.

    .venv/bin/python bench/dedupe_eval.py --n 500            # generates /tmp/dedupe-corpus/n500
    .venv/bin/python bench/dedupe_eval.py --corpus DIR --json out.json

Not a test: a measurement, printed (and optionally written as JSON).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aggregator.clock import FrozenClock
from aggregator.config import load_config
from aggregator.extract import canonical_link
from aggregator.pipeline import open_store, poll_feeds

HERE = Path(__file__).resolve().parent
CORPUS_PY = HERE.parent.parent / "shared" / "bench" / "corpus.py"
BASE_TIME = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # corpus.py's BASE_TIME


def ensure_corpus(n: int, seed: int, out: Path) -> Path:
    if not (out / "ground_truth.json").exists():
        subprocess.run(
            [sys.executable, str(CORPUS_PY), "--n", str(n), "--seed", str(seed), "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def write_config(corpus: Path, work: Path) -> Path:
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    lines = [
        "settings:",
        f"  data_dir: {work / 'data'}",
        f"  outbox: {work / 'outbox'}",
        "feeds:",
    ]
    for f in manifest["feeds"]:
        url = (corpus / "feeds" / f"{f['id']}.xml").as_uri()
        lines.append(f"  - {{url: {json.dumps(url)}, name: {json.dumps(f['id'])}}}")
    path = work / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate(corpus: Path, work: Path) -> dict[str, object]:
    config = load_config(write_config(corpus, work))
    store = open_store(config)
    started = time.perf_counter()
    reports = poll_feeds(config, store, FrozenClock(BASE_TIME), due_only=False)
    poll_seconds = time.perf_counter() - started
    stored = store.items()
    store.close()

    truth = json.loads((corpus / "ground_truth.json").read_text(encoding="utf-8"))
    # Stored items by (feed, guid), and by (feed, canonical link) for formats without GUIDs.
    by_guid: dict[tuple[str, str], int] = {}
    by_link: dict[tuple[str, str], int] = {}
    story_of: dict[int, int] = {}
    titles: dict[int, str] = {}
    for it in stored:
        feed = Path(it.feed_url).stem
        story_of[it.id], titles[it.id] = it.story_id, it.title
        if it.guid:
            by_guid[(feed, it.guid)] = it.id
        if it.link:
            by_link.setdefault((feed, it.link), it.id)
    by_truth: dict[str, list[int]] = {}
    variant: dict[int, list[str]] = {}
    missing = 0
    for cluster in truth["clusters"]:
        for it in cluster["items"]:
            found = by_guid.get((it["feed"], it["guid"])) or by_link.get(
                (it["feed"], canonical_link(it["link"]) or "")
            )
            if found is None:
                missing += 1
                continue
            by_truth.setdefault(cluster["story"], []).append(found)
            variant[found] = it["variant"]
    by_ours: dict[int, list[int]] = {}
    for item_id, story in story_of.items():
        by_ours.setdefault(story, []).append(item_id)
    said = {
        (min(p), max(p)) for members in by_ours.values() for p in itertools.combinations(members, 2)
    }
    real = {
        (min(p), max(p))
        for members in by_truth.values()
        for p in itertools.combinations(members, 2)
    }
    tp = len(said & real)
    fp_pairs = sorted(said - real)
    fn_pairs = sorted(real - said)
    missed_by_variant: Counter[str] = Counter()
    for a, b in fn_pairs:
        for v in {*variant.get(a, []), *variant.get(b, [])}:
            missed_by_variant[v] += 1
    return {
        "corpus": str(corpus),
        "feeds": len(reports),
        "items": len(stored),
        "poll_seconds": round(poll_seconds, 1),
        "true_clusters": len(by_truth),
        "true_pairs": len(real),
        "predicted_pairs": len(said),
        "tp": tp,
        "fp": len(fp_pairs),
        "fn": len(fn_pairs),
        "precision": round(tp / len(said), 4) if said else 1.0,
        "recall": round(tp / len(real), 4) if real else 1.0,
        "truth_items_not_stored": missing,
        "missed_pairs_by_variant": dict(missed_by_variant.most_common()),
        "false_merges": [[titles.get(a), titles.get(b)] for a, b in fp_pairs[:10]],
        "missed": [[titles.get(a), titles.get(b)] for a, b in fn_pairs[:10]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="a corpus.py output folder")
    parser.add_argument("--n", type=int, default=500, help="feeds, when generating")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    corpus = args.corpus or ensure_corpus(args.n, args.seed, Path(f"/tmp/dedupe-corpus/n{args.n}"))
    with tempfile.TemporaryDirectory(prefix="dedupe-eval-") as tmp:
        result = evaluate(corpus, Path(tmp))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
