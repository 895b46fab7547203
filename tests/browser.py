"""Headless Chromium (Debian's `chromium`) as a test instrument for rendered e-mail HTML.

The e-mail is loaded into same-origin iframes of fixed widths (headless Chromium will not make
a window narrower than 500 px), and a probe script writes what it measured into the DOM, which
``--dump-dom`` returns. No driver library needed.
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
      visibleText: f.contentDocument.body.innerText
    };
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _page(email_html: str, widths: tuple[int, ...]) -> str:
    frames = "".join(
        f'<iframe width="{w}" height="1600" style="border:1px solid #999;vertical-align:top" '
        f'srcdoc="{htmllib.escape(email_html, quote=True)}"></iframe>'
        for w in widths
    )
    return f"<!DOCTYPE html><html><body style='margin:0'>{frames}{PROBE}</body></html>"


def measure(email_html: str, tmp: Path, widths: tuple[int, ...] = (375, 600)) -> dict[str, dict]:
    """Per width: scrollWidth, clientWidth, the hrefs of all links, and the visible text."""
    assert CHROMIUM, "chromium is not installed"
    page = tmp / "probe.html"
    page.write_text(_page(email_html, widths), encoding="utf-8")
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
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


def screenshot(email_html: str, out: Path, widths: tuple[int, ...] = (375, 600)) -> Path:
    """A PNG of the e-mail at each width side by side, for a person to look at."""
    assert CHROMIUM, "chromium is not installed"
    page = out.with_suffix(".page.html")
    page.write_text(_page(email_html, widths), encoding="utf-8")
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={out.parent / 'profile-shot'}",
            f"--window-size={sum(widths) + 40},1600",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return out
