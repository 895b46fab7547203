"""The digest HTML in a real headless browser: no horizontal overflow, every link present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator import render
from tests.browser import CHROMIUM, measure, screenshot
from tests.test_render import capped_edition, make_message, sample_edition

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)"),
]

SHOTS = (
    Path(os.environ.get("AGGREGATOR_SCREENSHOTS", ""))
    if os.environ.get("AGGREGATOR_SCREENSHOTS")
    else None
)


@pytest.fixture(scope="module")
def env():
    return render.make_environment(None)


def html_of(env, ed) -> str:
    msg = make_message(env, ed)
    return msg.get_body(("html",)).get_content()


@pytest.mark.parametrize("make", [sample_edition, capped_edition], ids=["sample", "capped"])
def test_digest_fits_phone_and_desktop_widths_with_all_links(env, tmp_path, make):
    ed = make()
    html = html_of(env, ed)
    seen = measure(html, tmp_path)
    wanted = {s.link for sec in ed.sections for s in sec.stories if render.safe_href(s.link)}
    for width in ("375", "600"):
        page = seen[width]
        assert page["scrollWidth"] <= int(width), f"horizontal overflow at {width}px: {page}"
        assert wanted <= set(page["links"]), wanted - set(page["links"])
        assert all(h.startswith(("http://", "https://", "mailto:")) for h in page["links"])
        for sec in ed.sections:
            assert sec.title.upper() in page["visibleText"].upper()
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(html, SHOTS / f"digest-{make.__name__}.png")
