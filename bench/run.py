#!/usr/bin/env python3
"""Polling benchmark: how long `aggregator fetch` takes on N local feeds (not a test).

    .venv/bin/python bench/run.py --n 500 2000 [--latency-ms 50] [--out bench/results/x.md]

For each N: generate a deterministic corpus (bench/corpus.py), serve it from 127.0.0.1
(bench/server.py, in its own process: ETag, Last-Modified, 304s, gzip, optional latency),
then time three polls of a fresh data dir, each a separate `aggregator fetch` process:

    cold      every feed new: N x 200, parse and store everything
    warm      nothing changed: N x 304 (the per-feed overhead of a poll)
    changed   10% of feeds got two new items: 0.1N x 200 + 0.9N x 304

Reported: wall seconds, CPU seconds (user + system, the parse workers included) and peak
RSS (MB) from wait4(), items stored after the phase, and the server's 200/304 counts.
Stdlib only; the aggregator is the one installed next to this Python (or --aggregator).
To put these figures beside other aggregators on the same corpus, see ../shared/bench.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def http(port: int, path: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def measured(cmd: list[str], log: Path) -> tuple[float, float, float, int]:
    """Run `cmd`; (wall s, CPU s, peak RSS MB, exit code) of it and its children."""
    with open(log, "ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def write_config(data: Path, urls: list[str]) -> Path:
    lines = [
        "settings:",
        f"  data_dir: {json.dumps(str(data / 'data'))}",
        f"  outbox: {json.dumps(str(data / 'outbox'))}",
        "  timezone: UTC",
        "topics:",
        "  world: {title: World, keywords: [election, minister, government]}",
        "  business: {title: Business, keywords: [market, shares, bank]}",
        "feeds:",
    ]
    for n, url in enumerate(urls):
        lines += [f"  - url: {url}", f"    name: Feed {n}"]
    path = data / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored_items(data: Path) -> int:
    db = data / "data" / "aggregator.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from items").fetchone()[0])


def wait_for_server(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the bench server exited; see its log")
        try:
            http(port, "/_bench/stats")
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the bench server did not start")


@contextlib.contextmanager
def served_corpus(args: argparse.Namespace, n: int) -> Iterator[dict[str, Any]]:
    """Generate the corpus of N feeds (once; kept in --workdir) and serve it on --port for
    the block; yields its manifest (``urls``, ``items``, ``bytes``)."""
    work = Path(args.workdir)
    corpus_dir = work / f"corpus-n{n}-s{args.seed}-p{args.port}"
    if not (corpus_dir / "manifest.json").exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "corpus.py"),
                "--n",
                str(n),
                "--seed",
                str(args.seed),
                "--out",
                str(corpus_dir),
                "--base-url",
                f"http://127.0.0.1:{args.port}",
            ],
            check=True,
        )
    manifest: dict[str, Any] = json.loads((corpus_dir / "manifest.json").read_text("utf-8"))
    server_log = open(work / f"server-n{n}.log", "ab")  # noqa: SIM115 - lives with the server
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "server.py"),
            "--corpus",
            str(corpus_dir),
            "--n",
            str(n),
            "--seed",
            str(args.seed),
            "--port",
            str(args.port),
            "--latency-ms",
            str(getattr(args, "latency_ms", 0.0)),
        ],
        stdout=server_log,
        stderr=server_log,
    )
    try:
        wait_for_server(args.port, server)
        yield manifest
    finally:
        server.terminate()
        server.wait()
        server_log.close()


def run_n(args: argparse.Namespace, n: int, aggregator: str) -> list[dict[str, object]]:
    work = Path(args.workdir)
    log = work / f"n{n}.log"
    rows = []
    with served_corpus(args, n) as manifest:
        data = work / f"data-n{n}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        config = write_config(data, manifest["urls"])
        for phase in ("cold", "warm", "changed"):
            if phase == "changed":
                http(args.port, f"/_bench/advance?fraction={args.change_fraction}", "POST")
            http(args.port, "/_bench/reset-stats", "POST")
            wall, cpu, rss, code = measured([aggregator, "--config", str(config), "fetch"], log)
            stats = http(args.port, "/_bench/stats")
            rows.append(
                {
                    "n": n,
                    "latency_ms": args.latency_ms,
                    "phase": phase,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "peak_rss_mb": round(rss),
                    "items": stored_items(data),
                    "requests": stats["requests"],
                    "s200": stats["200"],
                    "s304": stats["304"],
                    "rc": code,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict[str, object]], corpus_note: str) -> str:
    out = [
        "| N | latency ms | phase | wall s | CPU s | peak RSS MB | items stored | 200 | 304 | rc |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['n']} | {r['latency_ms']:g} | {r['phase']} | {r['wall_s']} | {r['cpu_s']} "
            f"| {r['peak_rss_mb']} | {r['items']} | {r['s200']} | {r['s304']} | {r['rc']} |"
        )
    return "\n".join(out) + "\n\n" + corpus_note + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[500])
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument("--change-fraction", type=float, default=0.1)
    ap.add_argument("--workdir", default="/tmp/aggregator-bench")
    ap.add_argument("--aggregator", default=str(Path(sys.executable).parent / "aggregator"))
    ap.add_argument("--out", help="also write the Markdown table to this file")
    args = ap.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    notes = []
    for n in args.n:
        rows += run_n(args, n, args.aggregator)
        manifest = Path(args.workdir) / f"corpus-n{n}-s{args.seed}-p{args.port}" / "manifest.json"
        m = json.loads(manifest.read_text(encoding="utf-8"))
        notes.append(f"N={n}: {m['items']} items, {m['bytes'] / 1e6:.1f} MB")
    text = table(rows, f"Corpus (bench/corpus.py, seed {args.seed}): " + "; ".join(notes))
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
