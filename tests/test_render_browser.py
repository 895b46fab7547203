"""The digest HTML in a real headless browser: no horizontal overflow, every link present."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import lxml.html
import pytest

from aggregator import render
from tests.browser import CHROMIUM, DARK, FORCED_DARK, measure, screenshot
from tests.digests import CYRILLIC_LEAD, LATIN_LEAD, DigestSite
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


# -- full editions through the pipeline -------------------------------------------------------


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two CSS ``rgb(...)`` / ``rgba(...)`` colours."""

    def luminance(css: str) -> float:
        r, g, b = (int(float(x)) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])

        def channel(c: int) -> float:
            c_ = c / 255
            return c_ / 12.92 if c_ <= 0.03928 else ((c_ + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module", params=["latin", "cyrillic"])
def full_edition(request, tmp_path_factory):
    """A full edition (the default caps, long headlines, leads and links) built by the
    pipeline; the Cyrillic one is trimmed by the size cap."""
    site = DigestSite.make(tmp_path_factory.mktemp(request.param), base_url="https://b.example")
    site.full_edition(LATIN_LEAD if request.param == "latin" else CYRILLIC_LEAD)
    [report] = site.build()
    msg = site.messages()["reader@example.org"]
    site.close()
    return SimpleNamespace(name=request.param, report=report, html=msg.html)


def test_full_pipeline_edition_fits_phone_and_desktop_with_all_links(full_edition, tmp_path):
    html = full_edition.html
    doc = lxml.html.document_fromstring(html)
    wanted = {a.get("href") for a in doc.iter("a")}
    assert len([h for h in doc.iter("h3")]) == full_edition.report.stories
    seen = measure(html, tmp_path)
    for width in ("375", "600"):
        page = seen[width]
        assert page["scrollWidth"] <= int(width), f"horizontal overflow at {width}px"
        assert wanted == set(page["links"]), wanted ^ set(page["links"])
        assert "Unsubscribe" in page["visibleText"]
        assert "You get this because reader@example.org" in page["visibleText"]
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(html, SHOTS / f"full-{full_edition.name}.png", height=1400)


def test_fits_a_phone_even_where_the_style_block_is_dropped(full_edition, tmp_path):
    """Some clients (Gmail apps with non-Google accounts, older webmail) drop <style>, so
    the @media rules never apply: the inline styles alone must keep the message fluid."""
    inline_only = re.sub(r"<style.*?</style>", "", full_edition.html, flags=re.DOTALL)
    assert "@media" not in inline_only
    seen = measure(inline_only, tmp_path)
    for width in ("375", "600"):
        assert seen[width]["scrollWidth"] <= int(width), f"horizontal overflow at {width}px"
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(inline_only, SHOTS / f"full-{full_edition.name}-no-style.png", height=900)


@pytest.mark.parametrize(("mode", "flags"), [("light", ()), ("dark", DARK)], ids=["light", "dark"])
def test_text_stays_readable_in_light_and_dark_mode(full_edition, tmp_path, mode, flags):
    if full_edition.name != "latin":
        pytest.skip("colours do not depend on the script")
    seen = measure(full_edition.html, tmp_path, widths=(375,), flags=flags)
    colors = seen["375"]["colors"]
    assert colors, "no coloured parts found"
    for part in colors:
        ratio = contrast(part["color"], part["background"])
        assert ratio >= 4.5, f"{mode}: {part} has contrast {ratio:.1f}"
    page_bg = next(p["background"] for p in colors if p["el"].startswith("TABLE"))
    dark_bg = contrast(page_bg, "rgb(0, 0, 0)") < 2
    assert dark_bg == (mode == "dark"), f"{mode}: the message background is {page_bg}"


@pytest.fixture(scope="module")
def awkward_edition(tmp_path_factory) -> str:
    """A short edition with what breaks layouts: an unbreakable headline, a bare long URL as
    the lead, Cyrillic, and a long recipient address in the footer."""
    site = DigestSite.make(
        tmp_path_factory.mktemp("awkward"),
        subscribers="  - email: a.very.long.address.for.a.subscriber@subdomain.example.org\n",
        base_url="https://brief.example.org",
    )
    site.add_story(
        "world", "Ukraine and Russia agree prisoner exchange", lead=LATIN_LEAD, sources=3
    )
    site.add_story("world", "Leaders meet for climate summit in Belém", lead=LATIN_LEAD[:180])
    site.add_story("business", "Рынки растут после решения центробанка", lead=CYRILLIC_LEAD)
    site.add_story(
        "tech",
        "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz-" * 2,
        lead="https://example.org/" + "x" * 120,
    )
    site.build()
    [msg] = site.messages().values()
    site.close()
    return msg.html


def test_long_words_and_urls_wrap_instead_of_widening_the_message(awkward_edition, tmp_path):
    seen = measure(awkward_edition, tmp_path)
    for width in ("375", "600"):
        assert seen[width]["scrollWidth"] <= int(width), f"horizontal overflow at {width}px"
        assert "Rindfleischetikettierung" in seen[width]["visibleText"]


def test_screenshots_for_a_person_to_look_at(awkward_edition):
    """With AGGREGATOR_SCREENSHOTS=DIR: the short edition whole, in light mode, dark mode and
    Blink's forced darkening (like the Gmail app), at 375 and 600 px."""
    if not SHOTS:
        pytest.skip("set AGGREGATOR_SCREENSHOTS=DIR to get screenshots")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for mode, flags in (("light", ()), ("dark", DARK), ("forced-dark", FORCED_DARK)):
        screenshot(awkward_edition, SHOTS / f"short-{mode}.png", flags=flags, height=1100)
