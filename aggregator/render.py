"""Edition -> HTML and text -> one MIME message. Never fetches, never touches the database.

    make_environment(template_dir)        jinja2: the editor's folder first, then the shipped one
    render_html(env, edition, ...)        digest.html.j2 (autoescaped), digest.css inlined
    render_text(env, edition, ...)        digest.txt.j2 (plain text, leads wrapped at 72 columns)
    build_message(edition=..., ...)       multipart/alternative (text, then HTML), list headers
    message_bytes(msg)                    the canonical CRLF serialisation written to outbox/

Templates see the context built by ``_context`` (documented at the top of each shipped
template) and one filter, ``safe_href``: every link from a feed goes through it, and only
http(s) URLs come out; anything else (``javascript:``, ``data:``, relative, malformed) becomes
``None`` and the template leaves the text unlinked. The HTML template is autoescaped, so no
feed text reaches the HTML unescaped.

Headers: Python's default folding turns a long, unbreakable List-Unsubscribe URL into RFC 2047
encoded words, which mail clients do not decode inside ``<...>``. ``POLICY`` folds like
``email.policy.SMTP`` (CRLF; 76 columns, so quoted-printable body lines meet RFC 2045) but
writes the URL-carrying headers verbatim on one line (up to RFC 5322's 998 octets).
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
import textwrap
from datetime import UTC, date, datetime, tzinfo
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
import premailer

from aggregator.records import Edition, StoryCandidate

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
CSS_TEMPLATE = "digest.css"
TEXT_WIDTH = 72  # plain-text part: leads and headlines wrapped here
PREHEADER_HEADLINES = 3  # how many first headlines make the default preheader
PREHEADER_CHARS = 150  # and at most this many characters of them
MAX_HEADER_LINE = 998  # RFC 5322 2.1.1: octets per line, CRLF excluded

_PACKAGE_DIR = Path(__file__).resolve().parent
_WHEEL_TEMPLATES = _PACKAGE_DIR / "default_templates"  # force-included by pyproject.toml
_SOURCE_TEMPLATES = _PACKAGE_DIR.parent / "templates"  # source / editable checkout

# Anything that has no business in a URL we link to: controls, whitespace, markup delimiters.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f<>\"'`\\]")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_NOT_ATOM = re.compile(r"[^A-Za-z0-9._-]+")
# Headers whose values hold URIs or msg-ids: written on one line, never as encoded words.
_VERBATIM_HEADERS = frozenset(
    {"list-unsubscribe", "list-unsubscribe-post", "list-id", "message-id"}
)


# -- jinja2 environment ----------------------------------------------------------------------


def shipped_template_dir() -> Path:
    """The templates that ship with the package (wheel install first, then source checkout)."""
    for candidate in (_WHEEL_TEMPLATES, _SOURCE_TEMPLATES):
        if (candidate / HTML_TEMPLATE).is_file():
            return candidate
    raise FileNotFoundError(
        f"shipped templates not found in {_WHEEL_TEMPLATES} or {_SOURCE_TEMPLATES}"
    )


def make_environment(template_dir: Path | None) -> jinja2.Environment:
    """A jinja2 environment: the editor's ``template_dir`` (if any) overrides shipped files.

    Autoescaping is on for HTML/XML templates (``*.html``, ``*.html.j2``, ...) and off for
    text and CSS; undefined names are errors (StrictUndefined), so a typo in an editor's
    template fails loudly instead of rendering an empty string.
    """
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not template_dir.is_dir():
            raise FileNotFoundError(f"template folder not found: {template_dir}")
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(jinja2.FileSystemLoader(shipped_template_dir()))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            disabled_extensions=("txt", "txt.j2", "css"),
            default_for_string=True,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["safe_href"] = safe_href
    env.filters["wrap"] = wrap
    return env


# -- filters and small pure helpers ----------------------------------------------------------


def safe_href(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL with a host; otherwise None."""
    if not url:
        return None
    url = url.strip()
    if _UNSAFE_URL_CHARS.search(url):
        return None
    scheme, _, rest = url.partition(":")
    if scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    return url if host else None


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap plain text at ``width`` columns, one paragraph per input line; URLs are not split."""
    paragraphs = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(
        textwrap.fill(p, width=width, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs
        if p
    )


def _zone(timezone: str | tzinfo) -> tzinfo:
    return ZoneInfo(timezone) if isinstance(timezone, str) else timezone


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def story_when(story: StoryCandidate, cutoff: datetime) -> datetime:
    """The time shown for a story: its published time, unless missing or after the cutoff
    (a future-dated item), then when we first saw it."""
    published = story.published_at
    if published is not None and _aware(published) <= _aware(cutoff):
        return _aware(published)
    return _aware(story.first_seen_at)


def format_story_time(when: datetime, tz: tzinfo, edition_day: date) -> str:
    """``07:42`` on the edition's (local) day, ``23 Nov 21:10`` on any other day."""
    local = _aware(when).astimezone(tz)
    if local.date() == edition_day:
        return f"{local:%H:%M}"
    return f"{local.day} {local:%b %H:%M}"


def format_edition_date(cutoff: datetime, tz: tzinfo) -> str:
    """``Tuesday 24 November 2026``: the edition's local date."""
    local = _aware(cutoff).astimezone(tz)
    return f"{local:%A} {local.day} {local:%B %Y}"


def default_preheader(edition: Edition) -> str:
    """The first few headlines, joined: what inbox previews show under the subject."""
    titles = [s.title.strip() for sec in edition.sections for s in sec.stories][
        :PREHEADER_HEADLINES
    ]
    text = " · ".join(t for t in titles if t)
    if len(text) > PREHEADER_CHARS:
        text = text[: PREHEADER_CHARS - 1].rstrip() + "…"
    return text


def mailto_uri(address: str) -> str:
    """``unsubscribe@example.org`` or ``mailto:...`` -> ``mailto:...`` (ASCII, one line)."""
    address = address.strip()
    uri = address if address.lower().startswith("mailto:") else f"mailto:{address}"
    if not uri.isascii() or _UNSAFE_URL_CHARS.search(uri) or "@" not in uri:
        raise ValueError(f"not a usable unsubscribe address: {address!r}")
    return uri


def _unsubscribe_url(url: str | None) -> str | None:
    if url is None:
        return None
    checked = safe_href(url)
    if checked is None or not checked.isascii():
        raise ValueError(f"unsubscribe URL must be an ASCII http(s) URL: {url!r}")
    return checked


# -- rendering -------------------------------------------------------------------------------


def _context(
    edition: Edition,
    *,
    digest_title: str,
    timezone: str | tzinfo,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str,
    why_text: str,
) -> dict[str, Any]:
    tz = _zone(timezone)
    edition_day = _aware(edition.cutoff).astimezone(tz).date()
    mailto = mailto_uri(unsubscribe_mailto)
    url = _unsubscribe_url(unsubscribe_url)

    def story_time(story: StoryCandidate) -> str:
        return format_story_time(story_when(story, edition.cutoff), tz, edition_day)

    return {
        "edition": edition,
        "sections": [sec for sec in edition.sections if sec.stories],
        "digest_title": digest_title,
        "edition_date": format_edition_date(edition.cutoff, tz),
        "unsubscribe_url": url,
        "unsubscribe_mailto": mailto,
        "unsubscribe_href": url or mailto,  # the visible footer link
        "why_text": why_text,
        "story_time": story_time,
    }


def render_html(
    env: jinja2.Environment,
    edition: Edition,
    *,
    digest_title: str,
    timezone: str | tzinfo,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str,
    why_text: str,
    preheader: str | None = None,
) -> str:
    """The HTML part: the template rendered, then digest.css inlined by premailer.

    ``preheader`` defaults to the first headlines (``default_preheader``).
    """
    context = _context(
        edition,
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        why_text=why_text,
    )
    context["preheader"] = default_preheader(edition) if preheader is None else preheader
    html = env.get_template(HTML_TEMPLATE).render(context)
    return inline_css(html, load_css(env))


def render_text(
    env: jinja2.Environment,
    edition: Edition,
    *,
    digest_title: str,
    timezone: str | tzinfo,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str,
    why_text: str,
) -> str:
    """The plain-text part, mirroring the HTML: sections, headline, lead, link, source · time."""
    context = _context(
        edition,
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        why_text=why_text,
    )
    return env.get_template(TEXT_TEMPLATE).render(context)


def load_css(env: jinja2.Environment) -> str:
    """The text of digest.css (the editor's copy if they have one), not rendered by jinja."""
    if env.loader is None:
        raise ValueError("the jinja2 environment has no loader")
    source, _, _ = env.loader.get_source(env, CSS_TEMPLATE)
    return source


def inline_css(html: str, css: str) -> str:
    """Inline ``css`` into style attributes; @media and :root rules stay in a <style>.

    premailer runs offline (no stylesheet links followed, no external files, no URL
    rewriting) and quietly (cssutils logs only critical problems; validation off, so
    e-mail-only properties like ``mso-hide`` do not produce warnings).
    """
    inliner = premailer.Premailer(
        css_text=css,
        remove_classes=False,  # the @media rules select by class
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        keep_style_tags=False,  # leftover (@media) rules are kept anyway, with !important
        strip_important=True,  # inline styles never !important: dark mode must override them
        exclude_pseudoclasses=True,
    )
    out: str = inliner.transform(html, pretty_print=True)
    return out


# -- the MIME message ------------------------------------------------------------------------


class _DigestPolicy(EmailPolicy):
    """``email.policy.SMTP``, except that URL-carrying headers are never refolded."""

    def _verbatim(self, name: str, value: str) -> str | None:
        if name.lower() not in _VERBATIM_HEADERS:
            return None
        value = _UNFOLD.sub("", str(value)).strip()
        if not value.isascii():
            return None
        line = f"{name}: {value}"
        if len(line) <= MAX_HEADER_LINE:
            return line + self.linesep
        # A list header (several <URI>s) may fold at the whitespace between items.
        items = value.split(", ")
        lines = [f"{name}: {items[0]}", *(f" {item}" for item in items[1:])]
        if any(len(x) + 1 > MAX_HEADER_LINE for x in lines):
            raise ValueError(f"{name} header value is too long to send: {len(value)} chars")
        return ("," + self.linesep).join(lines) + self.linesep

    def fold(self, name: str, value: str) -> str:
        folded = self._verbatim(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._verbatim(name, value)
        if folded is not None:
            return folded.encode("ascii")
        return super().fold_binary(name, value)


# CRLF like email.policy.SMTP; 76 columns because quoted-printable bodies are wrapped at the
# policy's line length and RFC 2045 caps encoded lines at 76 (headers only need <= 78).
POLICY = _DigestPolicy(linesep="\r\n", max_line_length=76)


def sender_domain(sender: str) -> str:
    """The domain of ``Name <local@domain>``, IDNA-encoded; ``localhost`` if there is none."""
    local, at, domain = parseaddr(sender)[1].rpartition("@")
    domain = domain.strip().rstrip(".")
    if not (local and at and domain):
        return "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"
    return domain.lower() if domain and not _NOT_ATOM.search(domain) else "localhost"


def _atom(text: str) -> str:
    return re.sub(r"\.{2,}", ".", _NOT_ATOM.sub("-", text)).strip(".-") or "x"


def message_id(edition_key: str, recipient: str, sender: str) -> str:
    """A Message-ID fixed by (edition, recipient): a re-run produces the same ID."""
    digest = hashlib.sha256(f"{edition_key}\n{recipient.strip().lower()}".encode()).hexdigest()[:24]
    return f"<{digest}.{_atom(edition_key)[:64]}@{sender_domain(sender)}>"


def list_id_for(digest_key: str, sender: str) -> str:
    """A List-Id value (RFC 2919) for one digest: ``<digest.domain-of-sender>``."""
    return f"<{_atom(digest_key).lower()}.{sender_domain(sender)}>"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_message(
    *,
    edition: Edition,
    html: str,
    text: str,
    sender: str,
    list_id: str,
    unsubscribe_mailto: str,
    unsubscribe_url: str | None,
    date: datetime,
) -> EmailMessage:
    """One digest message for ``edition.recipient``: multipart/alternative, text then HTML,
    UTF-8, quoted-printable (base64 only when that is smaller: mostly non-Latin text).

    ``list_id`` is ``<id>`` or a bare ``id`` (wrapped in angle brackets); ``date`` must be
    timezone-aware. List-Unsubscribe carries the mailto URI and, when given, the http(s)
    URL; List-Unsubscribe-Post (RFC 8058 one-click) is added only for an https URL.
    """
    if date.tzinfo is None:
        raise ValueError("build_message needs a timezone-aware date")
    mailto = mailto_uri(unsubscribe_mailto)
    url = _unsubscribe_url(unsubscribe_url)
    list_id = _one_line(list_id)
    if not list_id.endswith(">"):
        list_id = f"<{list_id.strip('<>')}>"

    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = _one_line(edition.subject)
    msg["From"] = _one_line(sender)
    msg["To"] = _one_line(edition.recipient)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(edition.edition_key, edition.recipient, sender)
    msg["List-Id"] = list_id
    msg["List-Unsubscribe"] = f"<{mailto}>, <{url}>" if url else f"<{mailto}>"
    if url and url.lower().startswith("https://"):
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "bulk"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg.set_content(text, subtype="plain", charset="utf-8", cte=body_encoding(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=body_encoding(html))
    return msg


def body_encoding(body: str) -> str:
    """``quoted-printable`` (readable, small for Latin-script text) unless ``base64`` is
    smaller, as it is for mostly non-Latin text (each UTF-8 byte costs 3 in QP)."""
    data = body.encode("utf-8")
    qp = len(binascii.b2a_qp(data)) * 77 // 76  # soft line breaks, roughly
    b64 = (len(data) + 2) // 3 * 4 * 78 // 76  # 76 columns + CRLF
    return "base64" if b64 < qp else "quoted-printable"


def message_bytes(msg: EmailMessage) -> bytes:
    """The canonical serialisation (CRLF line ends, headers folded by ``POLICY``)."""
    return msg.as_bytes(policy=POLICY)


def html_size(msg: EmailMessage) -> int:
    """Octets of the encoded HTML body (what Gmail's ~100 KB clipping is measured against)."""
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload()
            assert isinstance(payload, str)
            return len(payload.encode("ascii", "surrogateescape"))
    raise ValueError("the message has no text/html part")
