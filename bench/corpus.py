"""A small, deterministic feed corpus for bench/run.py (stdlib only).

    python3 bench/corpus.py --n 500 --out /tmp/agg-bench/n500 --base-url http://127.0.0.1:8799

Writes DIR/feeds/fNNNNN.xml, DIR/feeds.txt (URLs) and DIR/manifest.json. The same seed gives
the same bytes. The mix follows what an editor's list looks like: about 55% RSS 2.0, 30% Atom,
15% RSS 1.0 (RDF); 10-60 items a feed; full-content, summary-only and title-only feeds;
about 8% in ISO-8859-1. About 6% of item slots are one story syndicated to 2-5 feeds, with a
different GUID in each, a changed title ("Update: ...", " | Site", Title Case) and tracking
parameters on the link. Bodies average roughly 90 KB, as real full-content feeds do.

`advance(doc, ...)` puts new items at the top of a feed (the server's "10% changed" round).
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

BASE_TIME = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
SYLLABLES = tuple(
    [
        "ka",
        "ro",
        "mi",
        "ten",
        "sol",
        "var",
        "pe",
        "lun",
        "dra",
        "qui",
        "no",
        "sta",
        "bel",
        "for",
        "ix",
        "mar",
        "tu",
        "len",
        "ga",
        "vis",
    ]
)
WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "on",
    "for",
    "with",
    "said",
    "officials",
    "government",
    "market",
    "report",
    "city",
    "council",
    "minister",
    "economy",
    "election",
    "court",
    "police",
    "science",
    "study",
    "research",
    "team",
    "season",
    "match",
    "company",
    "shares",
    "energy",
    "climate",
    "health",
    "school",
    "hospital",
    "water",
    "rail",
    "bank",
    "price",
    "week",
    "year",
    "new",
    "first",
    "after",
    "over",
    "more",
    "than",
    "would",
    "could",
    "about",
    "against",
    "during",
    "people",
    "public",
    "local",
]
ACCENTED = ["café", "société", "élève", "naïve", "garçon", "über", "mañana", "Zürich"]


def _word(rng: random.Random, latin1: bool) -> str:
    if latin1 and rng.random() < 0.05:
        return rng.choice(ACCENTED)
    if rng.random() < 0.25:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return rng.choice(WORDS)


def _sentence(rng: random.Random, latin1: bool, lo: int = 8, hi: int = 22) -> str:
    words = [_word(rng, latin1) for _ in range(rng.randint(lo, hi))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def _paragraphs(rng: random.Random, latin1: bool, count: int) -> str:
    out = []
    for _ in range(count):
        text = " ".join(_sentence(rng, latin1) for _ in range(rng.randint(3, 7)))
        if rng.random() < 0.3:
            text += f' <a href="https://ref.example/{rng.randint(1, 10**6)}">more</a>'
        out.append(f"<p>{escape(text)}</p>")
    if rng.random() < 0.4:
        out.insert(
            1, f'<figure><img src="https://img.example/{rng.randint(1, 10**6)}.jpg"/></figure>'
        )
    return "\n".join(out)


def _title(rng: random.Random, latin1: bool) -> str:
    return " ".join(_word(rng, latin1) for _ in range(rng.randint(5, 11))).capitalize()


def _variant(title: str, how: int, site: str) -> str:
    return [title, f"Update: {title}", f"{title} | {site}", title.title(), f"{title} - report"][
        how % 5
    ]


def _tracked(url: str, rng: random.Random, n: int) -> str:
    if rng.random() < 0.5:
        return url
    return f"{url}?utm_source=rss&utm_medium=feed&utm_campaign=f{n}"


def build(n: int, seed: int) -> list[dict[str, object]]:
    """The feeds' metadata and items (not yet rendered)."""
    rng = random.Random(seed)
    shared = [
        {
            "title": _title(rng, False),
            "link": f"https://wire.example/story/{i}",
            "html": _paragraphs(rng, False, rng.randint(2, 5)),
        }
        for i in range(max(1, n // 4))
    ]
    feeds = []
    for i in range(n):
        fr = random.Random(f"{seed}:{i}")
        kind = fr.choices(["rss", "atom", "rdf"], [55, 30, 15])[0]
        style = fr.choices(["full", "summary", "title_only"], [60, 30, 10])[0]
        latin1 = fr.random() < 0.08
        site = f"site{i}.example"
        items = []
        for j in range(fr.randint(10, 60)):
            age = timedelta(hours=j * fr.uniform(0.5, 6))
            if fr.random() < 0.06:
                story = fr.choice(shared)
                title = _variant(str(story["title"]), fr.randint(0, 4), site)
                link = _tracked(str(story["link"]), fr, i)
                html = str(story["html"])
            else:
                title = _title(fr, latin1)
                link = f"https://{site}/{j}/{fr.randint(1, 10**9)}"
                html = _paragraphs(fr, latin1, fr.randint(3, 9))
            items.append(
                {
                    "guid": f"urn:{site}:{j}:{fr.randint(1, 10**9)}",
                    "title": title,
                    "link": link,
                    "html": html if style == "full" else html.split("</p>")[0] + "</p>",
                    "style": style,
                    "when": BASE_TIME - age,
                }
            )
        feeds.append(
            {
                "id": f"f{i:05d}",
                "kind": kind,
                "latin1": latin1,
                "title": f"{_title(fr, False)} ({site})",
                "site": site,
                "items": items,
            }
        )
    return feeds


def render(feed: dict[str, object]) -> bytes:
    kind, latin1, site = feed["kind"], feed["latin1"], feed["site"]
    encoding = "iso-8859-1" if latin1 else "utf-8"
    items = feed["items"]
    assert isinstance(items, list)
    parts = [f'<?xml version="1.0" encoding="{encoding}"?>']
    title = escape(str(feed["title"]))
    if kind == "atom":
        parts.append(f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>')
        parts.append(f'<id>urn:{site}</id><link href="https://{site}/"/>')
        parts.append(f"<updated>{BASE_TIME.isoformat()}</updated>")
        for it in items:
            body = "" if it["style"] == "title_only" else escape(it["html"])
            parts.append(
                f"<entry><title>{escape(it['title'])}</title><id>{it['guid']}</id>"
                f'<link rel="alternate" href="{escape(it["link"])}"/>'
                f"<updated>{it['when'].isoformat()}</updated>"
                f'<content type="html">{body}</content></entry>'
            )
        parts.append("</feed>")
    elif kind == "rdf":
        parts.append(
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        )
        parts.append(
            f'<channel rdf:about="https://{site}/"><title>{title}</title>'
            f"<link>https://{site}/</link><description>{title}</description></channel>"
        )
        for it in items:
            body = "" if it["style"] == "title_only" else escape(it["html"])
            parts.append(
                f'<item rdf:about="{escape(it["link"])}"><title>{escape(it["title"])}</title>'
                f"<link>{escape(it['link'])}</link><description>{body}</description>"
                f"<dc:date>{it['when'].isoformat()}</dc:date></item>"
            )
        parts.append("</rdf:RDF>")
    else:
        parts.append(
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>{title}</title><link>https://{site}/</link>"
        )
        for it in items:
            html = it["html"]
            summary = "" if it["style"] == "title_only" else escape(html.split("</p>")[0])
            full = (
                f"<content:encoded>{escape(html)}</content:encoded>"
                if it["style"] == "full"
                else ""
            )
            parts.append(
                f"<item><title>{escape(it['title'])}</title><link>{escape(it['link'])}</link>"
                f'<guid isPermaLink="false">{it["guid"]}</guid>'
                f"<pubDate>{format_datetime(it['when'], usegmt=True)}</pubDate>"
                f"<description>{summary}</description>{full}</item>"
            )
        parts.append("</channel></rss>")
    return "\n".join(parts).encode(encoding, errors="xmlcharrefreplace")


def advance(feed: dict[str, object], round_no: int, count: int = 2) -> bytes:
    """The feed with `count` new items at the top (the oldest as many dropped)."""
    items = feed["items"]
    assert isinstance(items, list)
    rng = random.Random(f"{feed['id']}:round:{round_no}")
    new = [
        {
            "guid": f"urn:{feed['site']}:r{round_no}:{k}",
            "title": _title(rng, False),
            "link": f"https://{feed['site']}/r{round_no}/{k}",
            "html": _paragraphs(rng, False, 3),
            "style": items[0]["style"],
            "when": BASE_TIME + timedelta(hours=round_no, minutes=k),
        }
        for k in range(count)
    ]
    feed["items"] = new + items[: len(items) - count]
    return render(feed)


def write(out: str, n: int, seed: int, base_url: str) -> dict[str, object]:
    os.makedirs(os.path.join(out, "feeds"), exist_ok=True)
    feeds = build(n, seed)
    total_bytes = total_items = 0
    urls = []
    for feed in feeds:
        body = render(feed)
        with open(os.path.join(out, "feeds", f"{feed['id']}.xml"), "wb") as fh:
            fh.write(body)
        total_bytes += len(body)
        total_items += len(feed["items"])  # type: ignore[arg-type]
        urls.append(f"{base_url}/feeds/{feed['id']}.xml")
    with open(os.path.join(out, "feeds.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(urls) + "\n")
    manifest = {"n": n, "seed": seed, "items": total_items, "bytes": total_bytes, "urls": urls}
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    ap.add_argument("--base-url", default="http://127.0.0.1:8799")
    args = ap.parse_args()
    m = write(args.out, args.n, args.seed, args.base_url)
    print(f"{m['n']} feeds, {m['items']} items, {int(m['bytes']) / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
