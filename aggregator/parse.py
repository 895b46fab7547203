"""Parse: a feed body (bytes + response headers) into our own records. The only feedparser caller.

    parse_feed(body, url=final URL, headers=response headers)
      feedparser.parse(...)          RSS 0.9x/1.0/2.0, Atom; no sanitizing, no relative-URI pass
      entries?      -> ParsedFeed of RawEntry (bozo noted as a warning)
      no entries:
        an HTML page             -> NotAFeedError with the feed links it advertises
        a valid, empty feed      -> ParsedFeed with no entries
        broken XML               -> ParseError with feedparser's message

feedparser's HTML sanitizer and relative-URI rewriting are switched off: extract turns the
HTML into plain text later, and those two passes re-parse every content value. Entry links
(what we do keep as URLs) are still resolved, against xml:base and the feed's URL.

Nothing feedparser made leaves this module: entries become RawEntry, dates become aware UTC
datetimes, and only a short text of any well-formedness problem survives.
"""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html

from .errors import NotAFeedError, ParseError
from .records import ParsedFeed, RawEntry

FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
MAX_WARNING_CHARS = 200

_HTML_START = re.compile(rb"<(!doctype\s+html|html[\s>])", re.I)  # searched near the start


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse one feed document.

    `url` is where the body came from after redirects (FetchResult.final_url): the base for
    relative links, unless the response's Content-Location says otherwise. `headers` are the
    response headers (any case); Content-Type's charset is honoured.

    Raises NotAFeedError for an HTML page (or any document that is no feed), ParseError for a
    feed too broken to yield a single entry. A feed that is merely sloppy XML still gives its
    entries, with the problem in ParsedFeed.warning.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    base = url
    if headers.get("content-location"):
        base = urljoin(url, headers["content-location"].strip())
    if not body.strip():
        raise ParseError("empty document", url=url)

    result = feedparser.parse(
        io.BytesIO(body),  # a file object: feedparser never treats it as a path or URL
        response_headers=_feedparser_headers(headers, base),
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    feed: dict[str, Any] = result["feed"]
    version: str = result.get("version") or ""
    problem = _problem(result)
    rss = version.startswith("rss")
    entries = tuple(_entry(e, base, rss=rss) for e in result["entries"])

    if not entries and not version:  # no feed root element was recognised
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("text/html", "application/xhtml+xml") or _HTML_START.search(
            body, 0, 4096
        ):
            raise NotAFeedError(
                "an HTML page, not a feed", url=url, feed_links=discover_feed_links(body, base)
            )
        detail = problem or "no RSS, RDF or Atom root element"
        raise NotAFeedError(f"not a feed ({detail})", url=url)
    if not entries and problem:
        raise ParseError(f"broken feed: {problem}", url=url)

    return ParsedFeed(
        title=_text(dict.get(feed, "title")),
        link=_url(base, _alternate_link(feed)),
        ttl_minutes=_ttl(dict.get(feed, "ttl")),
        entries=entries,
        warning=problem,
    )


def discover_feed_links(html: bytes, base_url: str) -> list[str]:
    """The feeds an HTML page advertises with <link rel="alternate" type="application/rss+xml
    (or atom+xml, rdf+xml)" href=...>, resolved against the page's <base> and `base_url`, in
    page order, without repeats."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # empty, or nothing lxml could use
        return []
    base = base_url
    for element in doc.iter("base"):
        if element.get("href"):
            base = urljoin(base_url, (element.get("href") or "").strip())
            break
    found: list[str] = []
    for link in doc.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_LINK_TYPES and href:
            resolved = urljoin(base, href)
            if resolved not in found:
                found.append(resolved)
    return found


# -- feedparser in -------------------------------------------------------------------------


def _feedparser_headers(headers: Mapping[str, str], base: str) -> dict[str, str]:
    """The response headers feedparser should see.

    The media type is given as application/xml whatever the server said, keeping only its
    charset: the document is sniffed as XML anyway, and feedparser would otherwise assume
    us-ascii for text/* without a charset (RFC 3023, since replaced by RFC 7303) and flag
    every feed served as text/html or text/plain as a problem.
    """
    out = {"content-location": base, "content-type": "application/xml"}
    charset = _charset(headers.get("content-type", ""))
    if charset:
        out["content-type"] += f"; charset={charset}"
    if headers.get("content-language"):
        out["content-language"] = headers["content-language"]
    return out


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            value = value.strip().strip("\"'")
            return value or None
    return None


def _problem(result: Mapping[str, Any]) -> str | None:
    """feedparser's complaint about the document, short, or None."""
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXParseException):
        text = f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    else:
        text = str(exc).strip() if exc is not None else ""
        text = text or (type(exc).__name__ if exc is not None else "malformed document")
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"


# -- entries -------------------------------------------------------------------------------


def _entry(e: dict[str, Any], base: str, *, rss: bool = False) -> RawEntry:
    # dict.get throughout: FeedParserDict's own lookups warn (DeprecationWarning) when asked
    # for `updated` that is missing, and they cost more.
    get = dict.get
    links: list[Mapping[str, Any]] = get(e, "links") or []
    contents: list[Mapping[str, Any]] = get(e, "content") or []
    summary = _text(get(e, "summary"))
    if rss:
        # In RSS, feedparser files a second description-like element (media:description:
        # an image's alt text; itunes:summary) as text/plain "content". It is no content:
        # content:encoded is HTML. It only stands in when there is no description at all.
        plain = [c for c in contents if c.get("type") == "text/plain"]
        contents = [c for c in contents if c.get("type") != "text/plain"]
        if summary is None and plain:
            summary = _text(plain[0].get("value"))
    return RawEntry(
        guid=_text(get(e, "id")),
        link=_url(base, _alternate_link(e)),
        orig_link=_url(base, get(e, "feedburner_origlink")),
        title=_text(get(e, "title")),
        content_html=_contents(contents),
        summary_html=summary,
        author=_author(e),
        published=_utc(get(e, "published_parsed")),
        updated=_utc(get(e, "updated_parsed")),
        # feedparser folds <dc:date> into `updated` (and dcterms:issued into `published`),
        # so a distinct dc:date never reaches us: it is read through `updated`.
        dc_date=None,
        categories=_categories(get(e, "tags") or []),
        image_url=_url(base, _image(e, links)),
        source_title=_text((get(e, "source") or {}).get("title")),
    )


def _author(e: dict[str, Any]) -> str | None:
    """The author's name (author_detail, from "jane@example.org (Jane Doe)" too), else as given."""
    raw = _text(dict.get(e, "author"))
    m = _EMAIL_AND_NAME.match(raw or "")
    if m:  # feedparser's own split stumbles on long top-level domains
        return m.group(1).strip()
    detail = dict.get(e, "author_detail") or {}
    return _text(detail.get("name")) or raw


def _alternate_link(d: dict[str, Any]) -> str | None:
    """The rel=alternate link (feedparser defaults rel to alternate), HTML first; else `link`."""
    alternates = [
        link
        for link in dict.get(d, "links") or []
        if link.get("rel", "alternate") == "alternate" and link.get("href")
    ]
    for link in alternates:
        if (link.get("type") or "text/html") in ("text/html", "application/xhtml+xml"):
            return str(link["href"])
    if alternates:
        return str(alternates[0]["href"])
    return _text(dict.get(d, "link"))


def _contents(contents: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    values = {str(c.get("value") or "").strip() for c in contents}
    values.discard("")
    return tuple(sorted(values, key=len, reverse=True))


def _categories(tags: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in tags:
        name = _text(tag.get("label")) or _text(tag.get("term"))
        if name:
            seen.setdefault(name, None)
    return tuple(seen)


def _image(e: dict[str, Any], links: Iterable[Mapping[str, Any]]) -> str | None:
    """media:thumbnail, then media:content that is an image, then an image enclosure, then
    the entry's itunes:image (podcasts)."""
    for thumb in dict.get(e, "media_thumbnail") or []:
        if thumb.get("url"):
            return str(thumb["url"])
    images = [
        media
        for media in dict.get(e, "media_content") or []
        if media.get("url")
        and (
            media.get("medium") == "image"
            or str(media.get("type") or "").startswith("image/")
            or (
                not media.get("type")
                and not media.get("medium")
                and _IMAGE_PATH.search(str(media["url"]).split("?", 1)[0])
            )
        )
    ]
    if images:  # the widest of the sizes offered
        return str(max(images, key=lambda m: _int(m.get("width")))["url"])
    for link in links:
        if (
            link.get("rel") == "enclosure"
            and str(link.get("type") or "").startswith("image/")
            and link.get("href")
        ):
            return str(link["href"])
    image = dict.get(e, "image")
    if isinstance(image, Mapping) and image.get("href"):
        return str(image["href"])
    return None


_EMAIL_AND_NAME = re.compile(r"^[^\s@()]+@[^\s@()]+\s*\((.+)\)$")
_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$", re.IGNORECASE)


def _int(value: object) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else 0


# -- values --------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _url(base: str, value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return urljoin(base, text)
    except ValueError:  # e.g. a malformed IPv6 host: keep what the feed said
        return text


def _utc(value: object) -> datetime | None:
    """feedparser's *_parsed struct_time (already UTC) as an aware datetime; None if invalid."""
    if not isinstance(value, tuple) or len(value) < 6:  # time.struct_time is a tuple
        return None
    year, month, day, hour, minute, second = (int(v) for v in value[:6])
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _ttl(value: object) -> int | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    minutes = int(text)
    return minutes if 0 < minutes <= 525_600 else None  # at most a year
