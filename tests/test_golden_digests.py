"""Golden digests: fixed feeds (tests/data/digests/feeds/) polled through the pipeline at a
frozen time, each subscriber's .eml compared with tests/data/digests/<name>.eml after the
volatile headers are normalised.

Regenerate after an intended change, then read the diff before committing it:

    AGGREGATOR_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_golden_digests.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import outbox, pipeline, render
from aggregator.clock import FrozenClock
from aggregator.config import load_config
from tests.digests import parse_eml

GOLDEN = Path(__file__).parent / "data" / "digests"
REGENERATE = os.environ.get("AGGREGATOR_REGEN_GOLDEN") == "1"
POLLED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
FIRES = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 07:00 in London
SUBSCRIBERS = {  # golden file stem -> subscriber
    "reader": "reader@example.org",
    "business-only": "markets+news@example.org",
}


def config_text(feeds: Path) -> str:
    return f"""settings:
  timezone: Europe/London
  data_dir: data
  outbox: outbox
  from: "Morning Brief <brief@example.org>"
  base_url: https://brief.example.org
topics:
  world: {{title: World, keywords: [ukraine, sanctions, summit, prisoners]}}
  business: {{title: Business & Markets, keywords: [inflation, markets, "central bank", рынки]}}
feeds:
  - url: {(feeds / "world.xml").as_uri()}
    name: World Desk
    priority: 1
  - url: {(feeds / "wire.xml").as_uri()}
    name: Global Wire
  - url: {(feeds / "markt.xml").as_uri()}
    name: Markt & Meinung
digests:
  daily: {{schedule: "0 7 * * *", subject: "Morning Brief – {{date:%A %d %B}}"}}
subscribers:
  - email: {SUBSCRIBERS["reader"]}
  - email: {SUBSCRIBERS["business-only"]}
    topics: [business]
"""


_VOLATILE = [
    (re.compile(rb"^Date: .*$", re.MULTILINE), b"Date: <normalised>"),
    (re.compile(rb'boundary="[^"]+"'), b'boundary="NORMALISED"'),
    (re.compile(rb"^--=_[0-9a-f]+", re.MULTILINE), b"--NORMALISED"),
]


def normalise(data: bytes) -> bytes:
    """Volatile headers out: Date, and the MIME boundary (deterministic today, but not what
    these files are about)."""
    for pattern, replacement in _VOLATILE:
        data = pattern.sub(replacement, data)
    return data


# A fixed signing secret, so signed unsubscribe links are the same in every run.
GOLDEN_ENV = {"AGGREGATOR_SECRET": "golden-digests-fixed-signing-secret-0123456789"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict[str, bytes]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in GOLDEN_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AGGREGATOR_SECRET_PREVIOUS", raising=False)
        yield _build(tmp_path_factory)


def _build(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("golden")
    (tmp / "feeds.yaml").write_text(config_text(GOLDEN / "feeds"), encoding="utf-8")
    config = load_config(tmp / "feeds.yaml")
    clock = FrozenClock(POLLED)
    store = pipeline.open_store(config)
    try:
        pipeline.poll_feeds(config, store, clock, due_only=False)
        clock.set(FIRES)
        reports = pipeline.build_editions(config, store, clock, scheduled_for=FIRES)
    finally:
        store.close()
    assert all(r.path is not None for r in reports), reports
    out = {}
    for stem, address in SUBSCRIBERS.items():
        name = outbox.message_name("2026-11-24T0700-daily", address)
        out[stem] = (tmp / "outbox" / "pending" / name).read_bytes()
    return out


@pytest.mark.parametrize("stem", sorted(SUBSCRIBERS))
def test_digest_matches_its_golden_file(built, stem):
    golden = GOLDEN / f"{stem}.eml"
    got = normalise(built[stem])
    if REGENERATE or not golden.exists():
        golden.write_bytes(got)
        if not REGENERATE:
            pytest.fail(f"{golden} did not exist; written now: read it, then commit it")
    assert got == golden.read_bytes(), (
        f"{stem}.eml differs from the golden file; if the change is intended, regenerate "
        "with AGGREGATOR_REGEN_GOLDEN=1 and read the diff"
    )


def test_golden_digests_read_as_intended(built):
    """What the golden files are meant to show, said in words (so a regeneration that
    breaks one of these is caught even when someone accepts the diff)."""
    reader = parse_eml(built["reader"])
    html = reader.get_body(("html",)).get_content()
    text = reader.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert reader["Subject"] == "Morning Brief – Tuesday 24 November"
    assert html.index(">World<") < html.index(">Business &amp; Markets<")
    # the story two feeds carry: World Desk (priority 1) tells it; Global Wire links the very
    # same page, so it is credited without a link that would only send the reader back there
    assert "World Desk · 04:10" in text
    assert "Also covered by:\n- Global Wire\n" in text
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
    # extract read the feed's escaped markup as markup and dropped the script with what it
    # held; the & is escaped
    assert ">Sanctions widen &amp; deepen<" in html and "alert(1)" not in html
    business = parse_eml(built["business-only"])
    assert business["To"] == SUBSCRIBERS["business-only"]
    body = business.get_body(("html",)).get_content()
    assert "Ukraine" not in body and "Рынки растут" in body and "überraschend" in body
    for msg in (reader, business):
        assert render.html_size(msg) < render.MAX_HTML_BYTES
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
