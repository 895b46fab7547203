"""Headless Chromium (Debian's `chromium`) as a test instrument for rendered e-mail HTML.

The e-mail is loaded into same-origin iframes of fixed widths (headless Chromium will not make
a window narrower than 500 px), and a probe script writes what it measured into the DOM, which
``--dump-dom`` returns. No driver library needed.

Dark mode: ``DARK`` (``--force-dark-mode``) makes ``prefers-color-scheme: dark`` match, as
Apple Mail and Outlook.com honour it; ``FORCED_DARK`` turns on Blink's automatic darkening
of light pages, roughly what the Gmail and Outlook apps do to mail that does not opt in.
"""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

DARK = ("--force-dark-mode",)
FORCED_DARK = ("--blink-settings=forceDarkModeEnabled=true",)

PROBE = """<script>
window.addEventListener('load', function () {
  var out = {};
  document.querySelectorAll('iframe').forEach(function (f) {
    var d = f.contentDocument.documentElement;
    out[f.width] = {
      scrollWidth: Math.max(d.scrollWidth, f.contentDocument.body.scrollWidth),
      clientWidth: d.clientWidth,
      links: Array.prototype.map.call(f.contentDocument.links, function (a) {
        return a.getAttribute('href'); }),
      visibleText: f.contentDocument.body.innerText,
      colors: Array.prototype.map.call(
        f.contentDocument.querySelectorAll('.w, .hd h1, .st h3 a, .st p, .ft'),
        function (el) {
          var cs = f.contentWindow.getComputedStyle(el);
          var bg = el, bgc = 'rgba(0, 0, 0, 0)';
          while (bg && bg.nodeType === 1) {
            bgc = f.contentWindow.getComputedStyle(bg).backgroundColor;
            if (bgc !== 'rgba(0, 0, 0, 0)' && bgc !== 'transparent') break;
            bg = bg.parentNode;
          }
          return {el: el.tagName + '.' + el.className, color: cs.color, background: bgc};
        })
    };
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _page(email_html: str, widths: tuple[int, ...], height: int = 1600, probe: bool = True) -> str:
    frames = "".join(
        f'<iframe width="{w}" height="{height}" style="border:1px solid #999;vertical-align:top" '
        f'srcdoc="{htmllib.escape(email_html, quote=True)}"></iframe>'
        for w in widths
    )
    script = PROBE if probe else ""
    return f"<!DOCTYPE html><html><body style='margin:0'>{frames}{script}</body></html>"


def measure(
    email_html: str,
    tmp: Path,
    widths: tuple[int, ...] = (375, 600),
    flags: tuple[str, ...] = (),
) -> dict[str, dict]:
    """Per width: scrollWidth, clientWidth, the hrefs of all links, the visible text, and the
    computed text and background colours of the main parts (``colors``)."""
    assert CHROMIUM, "chromium is not installed"
    page = tmp / "probe.html"
    page.write_text(_page(email_html, widths), encoding="utf-8")
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            *flags,
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1100,1700",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"no probe output from chromium: {result.stderr[-2000:]}"
    return json.loads(htmllib.unescape(found.group(1)))


def screenshot(
    email_html: str,
    out: Path,
    widths: tuple[int, ...] = (375, 600),
    flags: tuple[str, ...] = (),
    height: int = 1600,
) -> Path:
    """A PNG of the e-mail at each width side by side (the top ``height`` pixels), for a
    person to look at."""
    assert CHROMIUM, "chromium is not installed"
    page = out.with_suffix(".page.html")
    page.write_text(_page(email_html, widths, height, probe=False), encoding="utf-8")
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            *flags,
            f"--user-data-dir={out.parent / 'profile-shot'}",
            f"--window-size={sum(widths) + 40},{height + 20}",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return out
