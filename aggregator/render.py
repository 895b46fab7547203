"""Edition -> HTML and text -> one MIME message. Never fetches, never touches the database.

    make_environment(template_dir)        jinja2: the editor's folder first, then the shipped one
    render_shared(env, edition, ...)      both parts rendered and inlined ONCE for everyone who
                                          gets the same sections; recipient-specific bits (the
                                          recipient, the "why you get this" line, the
                                          unsubscribe URL) are unguessable placeholders
    personalise(shared, ...)              fills them in, escaped for HTML (cheap: str.replace)
    render_html / render_text(env, edition, ...)   the two steps for one recipient
    compose(edition_key=..., ...)         the message bytes: multipart/alternative (text, then
                                          HTML), list headers; bodies encoded by binascii
    build_message(...) / message_bytes(msg)        the same as an EmailMessage, and back

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
import functools
import hashlib
import logging
import re
import secrets
import textwrap
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
import markupsafe
import premailer

from aggregator.extract import canonical_link
from aggregator.records import Edition, Section, StoryCandidate

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
CSS_TEMPLATE = "digest.css"
TEXT_WIDTH = 72  # plain-text part: leads and headlines wrapped here
PREHEADER_HEADLINES = 3  # how many first headlines make the default preheader
PREHEADER_CHARS = 150  # and at most this many characters of them
MAX_HEADER_LINE = 998  # RFC 5322 2.1.1: octets per line, CRLF excluded
MAX_HTML_BYTES = 90_000  # encoded HTML part; Gmail clips at ~102 KB and the footer goes first

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


def covered_by(story: StoryCandidate) -> tuple[tuple[str, str], ...]:
    """``story.also`` as "Also covered by" shows it. Every other source keeps its credit (that
    several publishers carry a story says something), but one whose link is the page the
    headline already links (another feed's copy of the same article), or a page listed
    before, is named without a link: it would only send the reader where they have been. A
    source already credited (the story's own, or one with two items in the story) is not
    repeated; sources are told apart by feed, not name (StoryCandidate.source_keys), so two
    feeds shown under one name are both credited when each has a page of its own to link;
    without one, a name already shown (the story's source, or a credit before) is not
    repeated: "Blog · 07:10 Also covered by Blog" would tell the reader nothing."""
    return tuple((name, link) for _, name, link in _covered_by(story))


def _covered_by(story: StoryCandidate) -> list[tuple[str, str, str]]:
    """covered_by, with each entry's feed: (feed URL, name, link or "")."""
    pages = {_page(story.link)} if story.link else set()
    own, *others = story.source_keys()
    credited = {own}
    names = {_name_key(story.source)}
    shown = []
    for key, (name, link) in zip(others, story.also, strict=True):
        if key in credited:
            continue
        credited.add(key)
        page = _page(link) if link else ""
        if page and page not in pages:
            pages.add(page)
            shown.append((key[0], name, link))
        elif _name_key(name) not in names:
            shown.append((key[0], name, ""))
        # else: a name already shown, without a page of its own to offer ("Blog · 07:10
        # Also covered by Blog": the site's RSS and Atom feeds, or two of its section feeds)
        # would tell the reader nothing
        names.add(_name_key(name))
    return shown


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


# Strong right-to-left characters (Hebrew, Arabic, Urdu, Persian, Syriac, Thaana, N'Ko...).
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]|[\U00010800-\U00010fff]")
_LRM = "\u200e"


def _bidi_safe(name: str) -> str:
    """A source name (or a headline of the preheader) as a left-to-right line shows it: one
    with right-to-left text ends with a LEFT-TO-RIGHT MARK, so that what follows it (" · 11
    Jan 2018", ", Other Source", " · next headline") stays in order after it instead of being
    drawn into its run ("BBC News 11 · اردو Jan 2018"). Invisible, and understood by every
    mail client (Unicode 1.1)."""
    return name + _LRM if _RTL.search(name) else name


def _with_covered_by(story: StoryCandidate) -> StoryCandidate:
    shown = _covered_by(story)
    return replace(
        story,
        source=_bidi_safe(story.source),
        also=tuple((_bidi_safe(name), link) for _, name, link in shown),
        also_feeds=tuple(feed for feed, _, _ in shown) if story.also_feeds else (),
    )


def _page(link: str) -> str:
    # Fragments kept: a linkblog's #anchors on one page are different posts.
    return canonical_link(link, keep_fragment=True) or link.strip()


OLD_STORY_DAYS = 180  # older than this, a story's time shows its year instead of the hour


def format_story_time(when: datetime, tz: tzinfo, edition_day: date) -> str:
    """``07:42`` on the edition's (local) day, ``23 Nov 21:10`` on another day of the last
    ~6 months, ``23 Jul 2023`` before that (an old story must not pass for this year's)."""
    local = _aware(when).astimezone(tz)
    if local.date() == edition_day:
        return f"{local:%H:%M}"
    if abs((edition_day - local.date()).days) > OLD_STORY_DAYS:
        return f"{local.day} {local:%b %Y}"
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
    text = " · ".join(_bidi_safe(t) for t in titles if t)  # RTL ones: kept in their order
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


@dataclass(frozen=True, slots=True)
class SharedRender:
    """One edition's two parts, rendered and inlined once for every recipient of the same
    sections. The recipient-specific values are placeholders that ``personalise`` fills in."""

    html: str  # digest.html.j2 rendered, digest.css inlined
    text: str  # digest.txt.j2 rendered
    recipient_token: str  # stands for the recipient's address
    why_token: str  # stands for the "why you get this" line
    url_token: str  # stands for the recipient's unsubscribe URL (or the mailto URI)
    unsubscribe_mailto: str  # the digest's mailto URI, the fallback for the URL


def _tokens() -> tuple[str, str, str]:
    # Letters and digits only: nothing escapes or inlines them, and a feed cannot guess them
    # (a headline holding a placeholder would otherwise be filled in with a recipient's data).
    nonce = secrets.token_hex(12)
    return f"AGGrcpt{nonce}X", f"AGGwhy{nonce}X", f"AGGunsub{nonce}X"


def _check_placeholders(rendered: str, tokens: tuple[str, ...]) -> None:
    """Every placeholder must come out of the templates as it went in, or ``personalise``
    could not fill it in (an editor's template that filters one, e.g. ``why_text | upper``)."""
    nonce = tokens[0][len("AGGrcpt") : -1]
    whole = sum(rendered.count(t) for t in tokens)
    if rendered.lower().count(nonce) != whole:
        raise ValueError(
            "a template changed a per-recipient value (edition.recipient, why_text or "
            "unsubscribe_url/unsubscribe_href) with a filter; use it as it is"
        )


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
    # Trimmed here, after ranking (which counts every source) and for every template.
    edition = replace(
        edition,
        sections=tuple(
            Section(sec.topic, sec.title, tuple(_with_covered_by(s) for s in sec.stories))
            for sec in edition.sections
        ),
    )

    def story_time(story: StoryCandidate) -> str:
        return format_story_time(story_when(story, edition.cutoff), tz, edition_day)

    return {
        "edition": edition,
        "sections": [sec for sec in edition.sections if sec.stories],
        "digest_title": digest_title,
        "edition_date": format_edition_date(edition.cutoff, tz),
        "unsubscribe_url": unsubscribe_url,
        "unsubscribe_mailto": unsubscribe_mailto,
        "unsubscribe_href": unsubscribe_url or unsubscribe_mailto,  # the visible footer link
        "why_text": why_text,
        "story_time": story_time,
    }


def render_shared(
    env: jinja2.Environment,
    edition: Edition,
    *,
    digest_title: str,
    timezone: str | tzinfo,
    unsubscribe_mailto: str,
    with_url: bool,
    preheader: str | None = None,
    parts: tuple[str, ...] = ("html", "text"),
) -> SharedRender:
    """Render (and inline) ``edition`` once for everyone who gets these sections.

    ``edition.recipient`` is not used: the templates see a placeholder for it, for the
    "why you get this" line and, when ``with_url`` (the digest has an unsubscribe URL), for
    the URL. ``preheader`` defaults to the first headlines (``default_preheader``).
    ``parts`` leaves out the text (or HTML) part when only one is wanted.
    """
    recipient_token, why_token, url_token = _tokens()
    mailto = mailto_uri(unsubscribe_mailto)
    context = _context(
        replace(edition, recipient=recipient_token),
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_url=url_token if with_url else None,
        unsubscribe_mailto=mailto,
        why_text=why_token,
    )
    html = text = ""
    if "html" in parts:
        context["preheader"] = default_preheader(edition) if preheader is None else preheader
        html = inline_css(env.get_template(HTML_TEMPLATE).render(context), load_css(env))
    if "text" in parts:
        text = env.get_template(TEXT_TEMPLATE).render(context)
    _check_placeholders(html + text, (recipient_token, why_token, url_token))
    return SharedRender(
        html=html,
        text=text,
        recipient_token=recipient_token,
        why_token=why_token,
        url_token=url_token,
        unsubscribe_mailto=mailto,
    )


def personalise(
    shared: SharedRender, *, recipient: str, why_text: str, unsubscribe_url: str | None
) -> tuple[str, str]:
    """(html, text) for one recipient: the placeholders filled in, HTML-escaped in the HTML.

    In the text part the "why" line is wrapped at ``TEXT_WIDTH`` like the rest of the text.
    Without an unsubscribe URL the URL placeholder becomes the mailto URI.
    """
    url = _unsubscribe_url(unsubscribe_url) or shared.unsubscribe_mailto
    html_values = {
        shared.recipient_token: str(markupsafe.escape(recipient)),
        shared.why_token: str(markupsafe.escape(why_text)),
        shared.url_token: str(markupsafe.escape(url)),
    }
    text_values = {
        shared.recipient_token: recipient,
        shared.why_token: wrap(why_text),
        shared.url_token: url,
    }
    html, text = shared.html, shared.text
    for token, value in html_values.items():
        html = html.replace(token, value)
    for token, value in text_values.items():
        text = text.replace(token, value)
    return html, text


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
    """The HTML part for ``edition.recipient``: the template rendered, digest.css inlined."""
    return _render_part(
        env,
        edition,
        "html",
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        why_text=why_text,
        preheader=preheader,
    )


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
    return _render_part(
        env,
        edition,
        "text",
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        why_text=why_text,
        preheader=None,
    )


def _render_part(
    env: jinja2.Environment,
    edition: Edition,
    part: Literal["html", "text"],
    *,
    digest_title: str,
    timezone: str | tzinfo,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str,
    why_text: str,
    preheader: str | None,
) -> str:
    """One part rendered for one recipient: the shared render, then personalised."""
    shared = render_shared(
        env,
        edition,
        digest_title=digest_title,
        timezone=timezone,
        unsubscribe_mailto=unsubscribe_mailto,
        with_url=_unsubscribe_url(unsubscribe_url) is not None,
        preheader=preheader,
        parts=(part,),
    )
    html, text = personalise(
        shared, recipient=edition.recipient, why_text=why_text, unsubscribe_url=unsubscribe_url
    )
    return html if part == "html" else text


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
        # CSS widths stay CSS: the 600 px table is width:100%; max-width:600px (fluid on
        # phones even where media queries are dropped) and keeps its width="600" attribute
        disable_basic_attributes=["width"],
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


@functools.lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> bytes:
    """``Name: value`` folded by ``POLICY`` (RFC 2047 for non-ASCII text; URL-carrying
    headers verbatim); cached, since most headers are the same in every message of a run."""
    line = POLICY._verbatim(name, value)
    if line is None:
        line = POLICY.header_factory(name, value).fold(policy=POLICY)
    return line.encode("ascii")


_QP_LINES: dict[bytes, bytes] = {}  # line -> its quoted-printable form, shared by a run
_QP_LINES_MAX = 200_000  # entries kept before the memo starts over


def _quoted_printable(data: bytes) -> bytes:
    """Quoted-printable with '\n' line ends and lines of at most 76 columns, one line at a
    time: the messages of one run share almost every line, so a memo encodes each once
    (personalising 10,000 messages costs a fraction of encoding them whole). Line by line
    is also more correct: ``b2a_qp`` over a whole text can leave a 77-column line where an
    encoded trailing tab or space meets the limit."""
    if len(_QP_LINES) > _QP_LINES_MAX:
        _QP_LINES.clear()
    out = []
    for line in data.split(b"\n"):
        encoded = _QP_LINES.get(line)
        if encoded is None:
            encoded = _QP_LINES[line] = binascii.b2a_qp(line, istext=True)
        out.append(encoded)
    return b"\n".join(out)


def _encoded_body(body: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body with CRLF line ends): quoted-printable
    (readable, small for Latin-script text) unless base64 is smaller, as it is for mostly
    non-Latin text (each UTF-8 byte costs 3 in QP). binascii does the work, in C."""
    data = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    qp = _quoted_printable(data)
    b64_chars = (len(data) + 2) // 3 * 4
    if b64_chars + (b64_chars + 75) // 76 >= len(qp) + qp.count(b"\n"):
        return "quoted-printable", qp.replace(b"\n", b"\r\n").removesuffix(b"\r\n") + b"\r\n"
    # base64 encodes the canonical form (RFC 2045 6.8): text lines end in CRLF
    b64 = binascii.b2a_base64(data.replace(b"\n", b"\r\n"), newline=False)
    return "base64", b"".join(b64[i : i + 76] + b"\r\n" for i in range(0, len(b64), 76))


def body_encoding(body: str) -> str:
    """The Content-Transfer-Encoding ``compose`` picks for ``body``."""
    return _encoded_body(body)[0]


def compose(
    *,
    edition_key: str,
    subject: str,
    recipient: str,
    html: str,
    text: str,
    sender: str,
    list_id: str,
    unsubscribe_mailto: str,
    unsubscribe_url: str | None,
    date: datetime,
) -> bytes:
    """One digest message for ``recipient``, as the bytes written to the outbox:
    multipart/alternative, text then HTML, UTF-8, each body quoted-printable or base64
    (whichever is smaller), CRLF line ends, headers folded by ``POLICY``.

    ``list_id`` is ``<id>`` or a bare ``id`` (wrapped in angle brackets); ``date`` must be
    timezone-aware. List-Unsubscribe carries the mailto URI and, when given, the http(s)
    URL; List-Unsubscribe-Post (RFC 8058 one-click) is added only for an https URL. The
    MIME boundary comes from the Message-ID, so the same edition for the same recipient is
    the same bytes (rebuilding after a crash writes what the first attempt would have).
    """
    if date.tzinfo is None:
        raise ValueError("compose needs a timezone-aware date")
    mailto = mailto_uri(unsubscribe_mailto)
    url = _unsubscribe_url(unsubscribe_url)
    list_id = _one_line(list_id)
    if not list_id.endswith(">"):
        list_id = f"<{list_id.strip('<>')}>"
    mid = message_id(edition_key, recipient, sender)
    headers = [
        ("Subject", _one_line(subject)),
        ("From", _one_line(sender)),
        ("To", _one_line(recipient)),
        ("Date", format_datetime(date)),
        ("Message-ID", mid),
        ("List-Id", list_id),
        ("List-Unsubscribe", f"<{mailto}>, <{url}>" if url else f"<{mailto}>"),
    ]
    if url and url.lower().startswith("https://"):
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    headers += [
        ("Auto-Submitted", "auto-generated"),
        ("Precedence", "bulk"),
        ("X-Auto-Response-Suppress", "OOF, AutoReply"),
    ]
    # "=_" never occurs in a quoted-printable or base64 body, so the boundary cannot either.
    boundary = "=_" + hashlib.sha256(mid.encode()).hexdigest()[:32]
    out = [_folded(name, value) for name, value in headers]
    out.append(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n"
        + f' boundary="{boundary}"\r\n\r\n'.encode()
    )
    for subtype, body in (("plain", text), ("html", html)):
        cte, encoded = _encoded_body(body)
        out.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode()
        )
        out.append(encoded)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


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
    """``compose`` for ``edition.recipient``, parsed back into an EmailMessage
    (``message_bytes`` of it gives the same bytes)."""
    data = compose(
        edition_key=edition.edition_key,
        subject=edition.subject,
        recipient=edition.recipient,
        html=html,
        text=text,
        sender=sender,
        list_id=list_id,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
        date=date,
    )
    msg = BytesParser(policy=POLICY).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


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


def encoded_size(html: str) -> int:
    """Octets the HTML part will take in the message (its encoded body), without composing."""
    return len(_encoded_body(html)[1]) - 2  # the last CRLF belongs to the boundary line
