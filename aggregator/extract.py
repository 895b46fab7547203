"""RawEntry -> Item: headline, lead paragraph, canonical link, time and identity. Pure: no I/O.

This is where a story's lead paragraph is made (``lead_paragraph``).
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from .records import Item, RawEntry

DEFAULT_LEAD_CHARS = 400

# Query parameters that only track the reader; editors can extend the list (settings).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "cmpid",
        "ocid",
        "sr_share",
        "smid",
        "at_medium",
        "at_campaign",
        "ito",
        "taid",
        "guccounter",
        "spm",
        "share",
        "cid",
        "s_cid",
        "rss",
        "feature",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "__twitter", "oly_", "vero_")

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,2000}>")
_SENTENCE_END = re.compile(
    r"(?<=[.!?…。！？])[\"'”’»)\]]*\s+(?=[\"'“‘«(\[]?[A-Z0-9À-ÖØ-ÞА-ЯΑ-Ω\u0590-\u06ff\u3040-\u9fff])"
)
_HAS_SENTENCE_PUNCT = re.compile(r"[.!?…。！？:;]")

# Whole lines that are page furniture, not story text (matched case-insensitively).
_FURNITURE = re.compile(
    r"""^(?:
        connect\ with\ us | follow\ us.* | share(?:\ this)?(?:\ (?:article|story|post))?
        | share\ on\ \w+ | advertisement | sponsored(?:\ content)? | published | updated | on
        | by | related(?:\ (?:articles|stories|posts))? | read\ more | continue\ reading
        | click\ here.* | subscribe.* | sign\ up.* | listen(?:\ to\ (?:this\ )?(?:article|story))?
        | watch | image | photo | video | comments? | tweet | email | print | save
        | skip\ to\ (?:main\ )?content | menu | home | news
    )[\s.:!]*$""",
    re.IGNORECASE | re.VERBOSE,
)
_BYLINE = re.compile(
    r"^(?:by\s+[\w.'’ -]{2,60}|(?:published|updated|posted|last\s+updated)\b.{0,60}"
    r"|\d{1,2}\s+\w+\s+\d{4}(?:,?\s+\d{1,2}[:.]\d{2}.*)?|\w+\s+\d{1,2},\s+\d{4}.{0,20}"
    r"|\d+\s+(?:minutes?|hours?|days?)\s+ago|\d+\s+min(?:ute)?s?\s+read)$",
    re.IGNORECASE,
)
_CREDIT = re.compile(
    r"^(?:(?:photo|image|picture|illustration|video|credit|source)\s*(?:credit)?\s*[:/©(]"
    r"|©|\(c\)\s|getty images|ap photo|reuters/|afp via|shutterstock)",
    re.IGNORECASE,
)
# Trailers: anything from here on is not the story.
_TRAILER = re.compile(
    r"""(?:
        \bthe\ post\ .{1,300}?\ appeared\ first\ on\ .{1,200}$
        | \bthis\ (?:article|post|entry)\ (?:was\ )?(?:originally\ )?
          (?:published|appeared)\ (?:on|at|in)\b.*$
        | \b(?:continue\ reading|read\ more|read\ the\ (?:full|rest)\b|keep\ reading)\b.*$
        | \[\s*(?:…|\.\.\.|&hellip;|read\ more|more)\s*\]\s*$
        | \b(?:sign\ up|subscribe)\ (?:to|for)\ (?:our|the)\ .{0,40}newsletter.*$
        | \bshare\ (?:this|on)\ (?:facebook|twitter|x|linkedin|whatsapp|email)\b.*$
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "figcaption",
        "td",
        "section",
        "article",
        "header",
        "footer",
        "pre",
        "dd",
        "dt",
        "tr",
        "ul",
        "ol",
        "table",
        "figure",
        "aside",
        "nav",
        "br",
        "hr",
    }
)
_SKIP_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "iframe",
        "object",
        "embed",
        "svg",
        "figcaption",
        "figure",
        "nav",
        "aside",
        "form",
        "button",
        "select",
        "template",
        "head",
        "title",
    }
)


# -- text primitives ---------------------------------------------------------------------------


def plain_text(fragment: str | None) -> str:
    """Markup stripped, entities decoded (twice-escaped too), whitespace collapsed."""
    if not fragment:
        return ""
    text = fragment
    for _ in range(3):  # feeds that escape twice ("&amp;amp;", "&lt;b&gt;") need more than one pass
        unescaped = html.unescape(_TAG.sub(" ", text)) if "<" in text else html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = _TAG.sub(" ", text)
    return _WS.sub(" ", text.replace("\u00a0", " ")).strip()


def _blocks(fragment: str) -> list[str]:
    """The HTML's text as block-level paragraphs, in document order, furniture tags skipped."""
    if "<" not in fragment:
        text = html.unescape(fragment)
        if "<" in text:  # escaped markup: decode once more and parse it
            return _blocks(text)
        return [p for p in (plain_text(x) for x in re.split(r"\n\s*\n", text)) if p]
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return [plain_text(fragment)]
    out: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = _WS.sub(" ", "".join(current).replace("\u00a0", " ")).strip()
        if text:
            out.append(text)
        current.clear()

    def walk(el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _SKIP_TAGS:
            if el.tail:
                current.append(el.tail)
            return
        block = tag in _BLOCK_TAGS
        if block:
            flush()
        if el.text and tag:
            current.append(el.text)
        for child in el:
            walk(child)
        if block:
            flush()
        if el.tail:
            current.append(el.tail)

    walk(root)
    flush()
    # Entities escaped twice survive one parse as literal text.
    return [plain_text(b) if "&" in b or "<" in b else b for b in out]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return re.sub(
        r"[\W_]+", " ", "".join(c for c in decomposed if not unicodedata.combining(c))
    ).strip()


def _is_furniture(block: str, headline: str) -> bool:
    stripped = block.strip(" -–—|·•*>")
    if not stripped:
        return True
    if _FURNITURE.match(stripped) or _BYLINE.match(stripped) or _CREDIT.match(stripped):
        return True
    if headline and _fold(stripped) == _fold(headline):
        return True
    words = stripped.split()
    # Short lines with no sentence punctuation: labels, buttons, captions without a verb.
    return len(words) <= 6 and not _HAS_SENTENCE_PUNCT.search(stripped) and not _is_cjk(stripped)


def _is_cjk(text: str) -> bool:
    return any("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in text)


def _strip_trailer(text: str) -> str:
    # Trailers stack ("... […] The post X appeared first on Y."): peel until none is left.
    while True:
        stripped = _TRAILER.sub("", text).rstrip(" -–—|:")
        if stripped == text:
            return text
        text = stripped


def cut_at_sentence(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a sentence boundary; "…" only when cut."""
    if len(text) <= limit:
        return text
    sentences = _SENTENCE_END.split(text)
    kept = ""
    for sentence in sentences:
        candidate = f"{kept} {sentence}".strip()
        if len(candidate) > limit:
            break
        kept = candidate
    if not kept:  # one long sentence: cut at a word boundary
        kept = text[:limit].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return kept if kept == text else kept + " …" if kept.endswith((".", "!", "?")) else kept + "…"


def lead_paragraph(
    sources: Iterable[str | None], *, headline: str = "", limit: int = DEFAULT_LEAD_CHARS
) -> str:
    """The first real paragraph of the story, as plain text, from the richest source.

    Furniture before the story (labels, bylines, captions, the headline again) is skipped;
    trailers after it ("Continue reading", "The post X appeared first on Y") are dropped.
    """
    for source in sources:
        if not source or not source.strip():
            continue
        for block in _blocks(source):
            text = _strip_trailer(block)
            if _is_furniture(text, headline):
                continue
            return cut_at_sentence(text, limit)
    return ""


# -- headline ----------------------------------------------------------------------------------


def headline(raw_title: str | None, *, feed_name: str = "", feed_title: str = "") -> str:
    """Plain-text headline with a trailing " - Site" / " | Site" dropped when it names the feed."""
    title = plain_text(raw_title)
    names = {_fold(n) for n in (feed_name, feed_title) if n}
    for sep in (" | ", " - ", " – ", " — ", " :: ", " · "):
        if sep in title:
            head, _, tail = title.rpartition(sep)
            folded = _fold(tail)
            if head and folded and any(folded == n or folded in n or n in folded for n in names):
                title = head.strip()
                break
    return title


def headline_from_text(text: str, limit: int = 120) -> str:
    """A headline for an untitled item: its first sentence, shortened at a word boundary."""
    first = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:-–— ") + "…"


# -- links -------------------------------------------------------------------------------------


def canonical_link(
    link: str | None, *, base: str | None = None, extra_tracking: Iterable[str] = ()
) -> str | None:
    """Absolute http(s) URL, trackers removed, host lower-cased, default port and fragment gone."""
    if not link:
        return None
    link = plain_text(link) if ("&" in link or "<" in link) else link.strip()
    if not link:
        return None
    absolute = urljoin(base, link) if base else link
    try:
        parts = urlsplit(absolute)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    extra = {p.lower() for p in extra_tracking}
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(k.lower(), extra)
    ]
    userinfo = ""
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "") + "@"
    return urlunsplit(
        (scheme, userinfo + host, parts.path or "/", urlencode(query, doseq=True), "")
    )


def _is_tracking(key: str, extra: set[str]) -> bool:
    return key in TRACKING_PARAMS or key in extra or key.startswith(TRACKING_PREFIXES)


def safe_http_url(url: str | None) -> str | None:
    """The URL if it is absolute http(s), else None (javascript:, data:, file: ... refused)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


# -- identity and the whole item ---------------------------------------------------------------


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def extract_item(
    entry: RawEntry,
    *,
    feed_url: str,
    feed_name: str = "",
    feed_title: str = "",
    now: datetime,
    lead_chars: int = DEFAULT_LEAD_CHARS,
    extra_tracking: Iterable[str] = (),
) -> Item | None:
    """One entry made into an Item, or None when it has neither title nor text nor link."""
    link = canonical_link(entry.orig_link, base=feed_url, extra_tracking=extra_tracking)
    link = link or canonical_link(entry.link, base=feed_url, extra_tracking=extra_tracking)
    title = headline(entry.title, feed_name=feed_name, feed_title=feed_title)
    sources = [*entry.content_html, entry.summary_html]
    lead = lead_paragraph(sources, headline=title, limit=lead_chars)
    generated = False
    if not title:
        if not lead:
            lead = lead_paragraph(sources, limit=lead_chars)
        title = headline_from_text(lead)
        generated = bool(title)
    if not title and not link:
        return None
    if lead and _fold(lead) == _fold(title):
        lead = ""  # a summary that only repeats the headline is no lead
    published = entry.published or entry.updated or entry.dc_date
    if published is not None and published > now:
        published = now
    guid = entry.guid.strip() if entry.guid and entry.guid.strip() else None
    key = guid or link or "hash:" + _sha(title, lead)
    return Item(
        key=key,
        guid=guid,
        link=link,
        title=title,
        title_generated=generated,
        lead=lead,
        author=plain_text(entry.author) or None,
        image_url=safe_http_url(urljoin(feed_url, entry.image_url) if entry.image_url else None),
        categories=tuple(dict.fromkeys(c for c in (plain_text(x) for x in entry.categories) if c)),
        published_at=published,
        content_hash=_sha(title, lead, link or "", plain_text(entry.author)),
    )


def disambiguate_keys(found: Sequence[Item]) -> list[Item]:
    """Keys made unique within one fetch: a GUID repeated for different stories gets a suffix."""
    seen: dict[str, int] = {}
    hashes: set[tuple[str, str]] = set()
    out: list[Item] = []
    for item in found:
        if (item.key, item.content_hash) in hashes:
            continue  # the same entry listed twice
        hashes.add((item.key, item.content_hash))
        n = seen.get(item.key, 0)
        seen[item.key] = n + 1
        if n:
            suffix = _sha(item.link or "", item.title)[:12]
            item = replace(item, key=f"{item.key}#{suffix}")
        out.append(item)
    return out
