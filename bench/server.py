"""The benchmark's feed server: asyncio, stdlib only, 127.0.0.1 only, everything in memory.

    python3 bench/server.py --corpus DIR --n 500 --seed 42 --port 8799 [--latency-ms 50]

GET /feeds/fNNNNN.xml answers with ETag and Last-Modified, 304 to If-None-Match /
If-Modified-Since, gzip when asked. POST /_bench/advance?fraction=0.1 gives that share of
feeds (chosen from the seed and the round) two new items, a new ETag and Last-Modified.
GET /_bench/stats: request counters since the last POST /_bench/reset-stats.

A bare HTTP/1.1 server with keep-alive on asyncio streams: a request is a dict lookup and
one write, so the server is never what the benchmark measures (a 304 costs it ~50 us).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import sys
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus


class Feeds:
    def __init__(self, directory: str, n: int, seed: int) -> None:
        self.meta = {str(f["id"]): f for f in corpus.build(n, seed)}
        self.seed = seed
        self.round = 0
        self.bodies: dict[str, dict[str, object]] = {}
        for fid in self.meta:
            with open(os.path.join(directory, "feeds", f"{fid}.xml"), "rb") as fh:
                self._set(fid, fh.read(), format_datetime(corpus.BASE_TIME, usegmt=True))
        self.stats = {"requests": 0, "200": 0, "304": 0, "404": 0}

    def _set(self, fid: str, body: bytes, last_modified: str) -> None:
        self.bodies[fid] = {
            "body": body,
            "gz": None,
            "etag": f'"{hashlib.sha1(body).hexdigest()[:16]}"',
            "lm": last_modified,
        }

    def advance(self, fraction: float) -> dict[str, int]:
        self.round += 1
        ids = sorted(self.meta)
        changed = random.Random(f"{self.seed}:advance:{self.round}").sample(
            ids, max(1, round(len(ids) * fraction))
        )
        lm = format_datetime(corpus.BASE_TIME + timedelta(hours=self.round), usegmt=True)
        for fid in changed:
            self._set(fid, corpus.advance(self.meta[fid], self.round), lm)
        return {"round": self.round, "changed_feeds": len(changed), "new_items": 2 * len(changed)}


async def serve(feeds: Feeds, port: int, latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if int(headers.get("content-length", "0") or 0):
                    await reader.readexactly(int(headers["content-length"]))
                status, extra, body = await respond(method, target, headers)
                out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra, "", ""]
                writer.write("\r\n".join(out).encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def respond(
        method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, list[str], bytes]:
        path = urlsplit(target).path
        if path.startswith("/_bench/"):
            op = path.removeprefix("/_bench/")
            if op == "advance" and method == "POST":
                query = parse_qs(urlsplit(target).query)
                result: object = feeds.advance(float(query.get("fraction", ["0.1"])[0]))
            elif op == "reset-stats" and method == "POST":
                feeds.stats = dict.fromkeys(feeds.stats, 0)
                result = {"ok": True}
            else:
                result = {**feeds.stats, "round": feeds.round}
            return 200, ["Content-Type: application/json"], json.dumps(result).encode()
        feeds.stats["requests"] += 1
        if latency:
            await asyncio.sleep(latency)
        fid = path.removeprefix("/feeds/").removesuffix(".xml")
        f = feeds.bodies.get(fid)
        if f is None:
            feeds.stats["404"] += 1
            return 404, [], b"no such feed"
        extra = [f"ETag: {f['etag']}", f"Last-Modified: {f['lm']}"]
        inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
        fresh = False
        if inm is not None:
            fresh = f["etag"] in [t.strip() for t in inm.split(",")]
        elif ims is not None:
            try:
                fresh = parsedate_to_datetime(ims) >= parsedate_to_datetime(str(f["lm"]))
            except (TypeError, ValueError):
                fresh = False
        if fresh:
            feeds.stats["304"] += 1
            return 304, extra, b""
        body = f["body"]
        assert isinstance(body, bytes)
        if "gzip" in headers.get("accept-encoding", ""):
            if f["gz"] is None:
                f["gz"] = gzip.compress(body, 6, mtime=0)
            body = f["gz"]  # type: ignore[assignment]
            extra.append("Content-Encoding: gzip")
        feeds.stats["200"] += 1
        return 200, [*extra, "Content-Type: application/rss+xml"], body  # type: ignore[return-value]

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"serving {len(feeds.bodies)} feeds on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    args = ap.parse_args()
    feeds = Feeds(args.corpus, args.n, args.seed)
    asyncio.run(serve(feeds, args.port, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
