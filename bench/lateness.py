#!/usr/bin/env python3
"""How late the daemon polls a feed after its due time (not a test).

    .venv/bin/python bench/lateness.py [--n 500] [--spread 120]

Serves the bench corpus of N feeds (bench/run.py's corpus and server), fills a fresh store
with one `aggregator fetch`, then moves every feed's next due time to a random moment within
the next `--spread` seconds (seeded) and runs `aggregator run` until all of them were due plus
a minute. Lateness of a feed = its first poll at or after its due time minus that due time,
read from the store's `polls` table. The issue's target: the poller is never the reason a
feed is polled late, so lateness should stay within the daemon's minimum gap between polls
(daemon.POLL_MIN_GAP, 5 s) plus the poll's own duration.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import served_corpus, write_config  # bench/ is not a package: run.py beside it

LEAD_SECONDS = 20  # the first feed is due this long after the daemon starts


def spread_due_times(db: Path, spread: float, seed: int) -> None:
    """Every feed due at a random moment in [now + LEAD_SECONDS, + spread], in the store's
    own format (naive UTC text); the due times are kept in a `bench_due` table."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(db) as conn:
        conn.execute("drop table if exists bench_due")
        conn.execute("create table bench_due (feed_id integer primary key, due text)")
        for (feed_id,) in conn.execute("select id from feeds").fetchall():
            due = now + timedelta(seconds=LEAD_SECONDS + rng.uniform(0, spread))
            text = due.isoformat(" ")
            conn.execute("update feeds set next_due_at = ? where id = ?", (text, feed_id))
            conn.execute("insert into bench_due values (?, ?)", (feed_id, text))


def lateness(db: Path) -> list[float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            """select (julianday(min(p.at)) - julianday(d.due)) * 86400 from bench_due d
               join polls p on p.feed_id = d.feed_id and p.at >= d.due group by d.feed_id"""
        ).fetchall()
    return sorted(float(r[0]) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--spread", type=float, default=120.0, help="seconds the due times span")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--port", type=int, default=8798)
    ap.add_argument("--workdir", default="/tmp/aggregator-bench")
    ap.add_argument("--aggregator", default=str(Path(sys.executable).parent / "aggregator"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"lateness-n{args.n}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    with served_corpus(args, args.n) as manifest:
        config = write_config(data, manifest["urls"])
        log = open(data / "daemon.log", "wb")  # noqa: SIM115 - closed below
        subprocess.run([args.aggregator, "--config", str(config), "fetch"], stdout=log, check=True)
        db = data / "data" / "aggregator.sqlite3"
        spread_due_times(db, args.spread, args.seed)
        cmd = [args.aggregator, "--config", str(config), "--log-level", "info", "run"]
        daemon = subprocess.Popen(cmd, stdout=log, stderr=log)
        time.sleep(LEAD_SECONDS + args.spread + 60)  # a benchmark of real time, not a test
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
        log.close()
    late = lateness(db)
    result = {
        "n": args.n,
        "spread_s": args.spread,
        "polled": len(late),
        "median_s": round(statistics.median(late), 1) if late else None,
        "p95_s": round(late[int(len(late) * 0.95)], 1) if late else None,
        "max_s": round(late[-1], 1) if late else None,
        "daemon_exit": code,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
