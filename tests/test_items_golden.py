"""Golden items: hand-written feeds of real-world shapes (tests/data/items/*.xml), each paired
with the items we expect from it (the .json next to it): headline, lead and link, and where
the case is about them, key, author, image, categories, source and published time.

    {"feed_url": ..., "feed_name": ..., "lead_chars": 400, "extra_tracking": [...],
     "items": [{"title": ..., "lead": ..., "link": ..., "title_generated": true, ...}]}

Each file runs through parse_feed + extract_item + disambiguate_keys, as pipeline does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.extract import DEFAULT_LEAD_CHARS, disambiguate_keys, extract_item
from aggregator.parse import parse_feed

ITEMS = Path(__file__).parent / "data" / "items"
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
CASES = sorted(p.stem for p in ITEMS.glob("*.json"))
ALWAYS = ("title", "lead", "link")
OPTIONAL = ("key", "author", "image_url", "source", "title_generated", "guid")


def extract_file(name: str) -> tuple[dict, list]:
    spec = json.loads((ITEMS / f"{name}.json").read_text(encoding="utf-8"))
    body = next(ITEMS.glob(f"{name}.*[!n]")).read_bytes()  # the feed file next to the .json
    parsed = parse_feed(body, url=spec["feed_url"], headers=spec.get("headers"))
    found = [
        item
        for entry in parsed.entries
        if (
            item := extract_item(
                entry,
                feed_url=spec["feed_url"],
                feed_name=spec.get("feed_name", ""),
                feed_title=parsed.title or "",
                now=NOW,
                lead_chars=spec.get("lead_chars", DEFAULT_LEAD_CHARS),
                extra_tracking=spec.get("extra_tracking", ()),
            )
        )
        is not None
    ]
    return spec, disambiguate_keys(found)


@pytest.mark.parametrize("name", CASES)
def test_golden_items(name):
    spec, items = extract_file(name)
    assert len(items) == len(spec["items"]), [i.title for i in items]
    for got, want in zip(items, spec["items"], strict=True):
        for field in ALWAYS:
            assert getattr(got, field) == want[field], f"{name}: {want['title']!r}: {field}"
        for field in OPTIONAL:
            if field in want:
                assert getattr(got, field) == want[field], f"{name}: {want['title']!r}: {field}"
        if "categories" in want:
            assert list(got.categories) == want["categories"]
        if "published" in want:
            expected = want["published"]
            assert (
                got.published_at.isoformat().replace("+00:00", "Z") if got.published_at else None
            ) == expected
        if not want.get("title_generated"):
            assert not got.title_generated, f"{name}: {want['title']!r}"


def test_golden_set_is_big_enough():
    total = sum(
        len(json.loads((ITEMS / f"{n}.json").read_text(encoding="utf-8"))["items"]) for n in CASES
    )
    assert len(CASES) >= 20
    assert total >= 40


def test_every_feed_file_has_expectations():
    feeds = {p.stem for p in ITEMS.iterdir() if p.suffix != ".json"}
    assert feeds == set(CASES)


def test_keys_are_unique_within_each_feed():
    for name in CASES:
        _, items = extract_file(name)
        keys = [i.key for i in items]
        assert len(keys) == len(set(keys)), name
