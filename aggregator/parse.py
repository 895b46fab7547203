"""Parse: a feed body (bytes + response headers) into our own records. The only feedparser caller.

A JSON Feed (1.0, 1.1) is read with the json module: its first byte is "{". For XML, a fast
path comes first: a plainly well-formed UTF-8 RSS 2.0 / Atom 1.0 document whose
elements are all on a short list goes through fastfeedparser (and lxml), mapped to exactly the
records feedparser would give; anything else, or any surprise, goes to feedparser. Set
AGGREGATOR_PARSE_FEEDPARSER_ONLY=1 (or parse.FAST_PATH = False) to use feedparser alone.

    parse_feed(body, url=final URL, headers=response headers)
      "{" first (after a BOM, white space):
        a JSON Feed                -> ParsedFeed of RawEntry (values of the wrong type noted)
        other JSON                 -> NotAFeedError
        broken JSON                -> ParseError if it names jsonfeed.org/version, else
                                      NotAFeedError
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
datetimes, and only a short text of any well-formedness problem survives. A date feedparser
cannot read is read once more with its Portuguese, Spanish, French, German or Italian day and
month names put into English ("Seg, 24 Set 2018 19:42:40 -0300").
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import xml.sax
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import fastfeedparser  # type: ignore[import-untyped]
import feedparser
import lxml.etree
import lxml.html

from .errors import NotAFeedError, ParseError
from .records import ParsedFeed, RawEntry
from .text import fold_accents

FEED_LINK_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
MAX_WARNING_CHARS = 200

_HTML_START = re.compile(rb"<(!doctype\s+html|html[\s>])", re.I)  # searched near the start


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse one feed document.

    `url` is where the body came from after redirects (FetchResult.final_url): the base for
    relative links, unless the response's Content-Location says otherwise. `headers` are the
    response headers (any case); Content-Type's charset is honoured.

    Raises NotAFeedError for an HTML page (or any document that is no feed, JSON that is no
    JSON Feed), ParseError for a feed too broken to yield a single entry (JSON that is not
    valid and names itself a JSON Feed). A feed that is merely sloppy XML, or a JSON Feed with
    values of the wrong type, still gives its entries, with the problem in ParsedFeed.warning.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    base = url
    if headers.get("content-location"):
        base = urljoin(url, headers["content-location"].strip())
    if not body.strip():
        raise ParseError("empty document", url=url)
    if _JSON_START.match(body):
        return _json_feed(body, base, url=url)
    if FAST_PATH:
        fast = _fast_parse(body, base, headers)
        if fast is not None:
            return fast

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


def newest_entries(entries: tuple[RawEntry, ...], limit: int) -> tuple[RawEntry, ...]:
    """At most ``limit`` of ``entries``: the newest by their date (published, else updated,
    else dc:date), undated ones after every dated one, earlier in the document first among
    equals; in document order. Feeds list newest first or last, so position alone says
    nothing."""
    if len(entries) <= limit:
        return entries

    def rank(i: int) -> tuple[bool, float, int]:
        e = entries[i]
        when = e.published or e.updated or e.dc_date
        return (when is None, -when.timestamp() if when else 0.0, i)

    kept = sorted(sorted(range(len(entries)), key=rank)[:limit])
    return tuple(entries[i] for i in kept)


def discover_feed_links(html: bytes, base_url: str) -> list[str]:
    """The feeds an HTML page advertises with <link rel="alternate" type="application/rss+xml
    (or atom+xml, rdf+xml, feed+json)" href=...>, resolved against the page's <base> and
    `base_url`, in page order, without repeats.

    type="application/json" is what JSON Feed 1.0 told sites to write, and also what
    WordPress writes for its REST API on every page (/wp-json/wp/v2/posts/123): such a link
    counts when its title or its path says "feed"."""
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
        if not ("alternate" in rel and href):
            continue
        if kind in FEED_LINK_TYPES or (
            kind == "application/json" and _names_a_feed(link.get("title") or "", href)
        ):
            resolved = urljoin(base, href)
            if resolved not in found:
                found.append(resolved)
    return found


def _names_a_feed(title: str, href: str) -> bool:
    try:
        path = urlsplit(href).path
    except ValueError:
        return False
    return "feed" in title.lower() or "feed" in path.lower()


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


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"


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
    return _shorten(text)


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
        published=_date(get(e, "published_parsed"), get(e, "published")),
        updated=_date(get(e, "updated_parsed"), get(e, "updated")),
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
    """The distinct contents, longest first; of equal length, in document order (a set's
    order changes with each process's string hashing, and the lead is made from the first)."""
    values = dict.fromkeys(str(c.get("value") or "").strip() for c in contents)
    values.pop("", None)
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
    if _PLAIN_URL.fullmatch(text):
        return text  # what urljoin gives back for it, whatever the base, without its ~4 us
    try:
        return urljoin(base, text)
    except ValueError:  # e.g. a malformed IPv6 host: keep what the feed said
        return text


# An absolute http(s) URL that urljoin returns as it is: another scheme than the base's is
# returned untouched, and the same scheme is split and put together again, which changes
# nothing when no part is empty after its "?", "#" or ";" (no ";" in the path at all), the
# host has no IPv6 brackets and there is no white space (tabs and newlines are dropped).
_PLAIN_URL = re.compile(r"https?://[^/?#\[\]\s]+(?:/[^?#;\s]*)?(?:\?[^#\s]+)?(?:#\S+)?")


def _utc(value: object) -> datetime | None:
    """feedparser's *_parsed struct_time (already UTC) as an aware datetime; None if invalid."""
    if not isinstance(value, tuple) or len(value) < 6:  # time.struct_time is a tuple
        return None
    year, month, day, hour, minute, second = (int(v) for v in value[:6])
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _date(parsed: object, raw: object) -> datetime | None:
    """The date feedparser read (``parsed``: its *_parsed), else the feed's own text of it
    (``raw``) read again with day and month names of another language (_localized_date)."""
    return _utc(parsed) or (_localized_date(raw) if isinstance(raw, str) else None)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Day and month names of Portuguese, Spanish, French, German and Italian feeds, folded (lower
# case, no accents, no final "."): RFC 822 dates written in the feed's language ("Seg, 24 Set
# 2018 19:42:40 -0300", UOL) and long dates ("25 de novembro de 2026") that feedparser cannot
# read, so their items had no time and counted as new. The day's name says nothing the date
# does not: it is dropped, as are the small words between the parts ("de", "às", "um").
_LOCAL_WEEKDAYS = _word_set(
    """seg ter qua qui sex sab dom segunda terca quarta quinta sexta sabado domingo
    segunda-feira terca-feira quarta-feira quinta-feira sexta-feira
    lun mar mie jue vie lunes martes miercoles jueves viernes
    mer jeu ven sam dim lundi mardi mercredi jeudi vendredi samedi dimanche
    mo di mi do fr sa so montag dienstag mittwoch donnerstag freitag samstag sonntag
    gio lunedi martedi mercoledi giovedi venerdi sabato domenica"""
)
_LOCAL_MONTHS = {
    name: english
    for english, names in {
        "Jan": "jan janeiro ene enero janv janvier januar janner gen gennaio",
        "Feb": "fev fevereiro feb febrero fevr fevrier februar febbraio",
        "Mar": "mar marco marzo mars marz mrz",
        "Apr": "abr abril avr avril apr april aprile",
        "May": "mai maio may mayo mag maggio",
        "Jun": "jun junho junio juin juni giu giugno",
        "Jul": "jul julho julio juil juillet juli lug luglio",
        "Aug": "ago agosto aout aug august",
        "Sep": "set setembro sep sept septiembre setiembre septembre september settembre",
        "Oct": "out outubro oct octubre octobre okt oktober ott ottobre",
        "Nov": "nov novembro noviembre novembre november",
        "Dec": "dez dezembro dic diciembre dec decembre dezember dicembre",
    }.items()
    for name in names.split()
}
_DATE_FILLERS = _word_set("de del do da di a as las le um uhr alle ore")
_DATE_WORD = re.compile(r"[^\W\d_]+(?:-feira)?\.?")


def _localized_date(text: str) -> datetime | None:
    """A date whose day or month names are Portuguese, Spanish, French, German or Italian,
    read as the English date it says; None when it names no such month or still is no date.
    Only asked about dates feedparser could not read."""
    english = _english_date(text)
    if english is None:
        return None
    return _utc(feedparser.datetimes._parse_date(english))


def _english_date(text: str) -> str | None:
    """``text`` with its day names and filler words gone and its month names in English
    ("Seg, 24 Set 2018 19h42" -> "24 Sep 2018 19:42"); None when no month is named."""
    digit = re.search(r"\d", text)
    first_digit = digit.start() if digit else len(text)
    words = [(m, _fold_date_word(m.group())) for m in _DATE_WORD.finditer(text)]
    # "Mar, 24 Mar 2026": a name before the day is the weekday ("mar": martes, mardi)
    # when a month follows it; on its own it is the month.
    month_later = any(w in _LOCAL_MONTHS and m.start() > first_digit for m, w in words)
    out: list[str] = []
    end = 0
    named_month = False
    for m, word in words:
        weekday = word in _LOCAL_WEEKDAYS and m.start() < first_digit
        if weekday and (month_later or word not in _LOCAL_MONTHS):
            english = ""
        elif word in _LOCAL_MONTHS:
            english = _LOCAL_MONTHS[word]
            named_month = True
        elif word in _DATE_FILLERS:
            english = ""
        else:
            continue
        out.append(text[end : m.start()])
        out.append(f" {english} ")
        end = m.end()
    if not named_month:
        return None
    english = "".join(out) + text[end:]
    english = re.sub(r"\b(\d{1,2})h(\d{2})\b", r"\1:\2", english)  # "19h42"
    english = re.sub(r"\b(\d{1,2})\.(?=\s)", r"\1", english)  # "24. Dez"
    return " ".join(english.replace(",", " ").split())


def _fold_date_word(word: str) -> str:
    return fold_accents(word.rstrip("."))


def _ttl(value: object) -> int | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    minutes = int(text)
    return minutes if 0 < minutes <= 525_600 else None  # at most a year


# -- JSON Feed ---------------------------------------------------------------------------------
#
# JSON Feed 1.0 and 1.1 (https://www.jsonfeed.org/version/1.1/), read with the json module:
# feedparser 6 does not know the format. A body is taken for JSON when its first byte (after a
# BOM and white space) is "{", which no XML document has, so RSS and Atom pay one anchored
# regex match for it; what the server calls the body (application/feed+json,
# application/json, text/plain...) does not matter, as for XML. Entries come out as RawEntry,
# as the XML paths make them, so that extract, dedupe and store cannot tell the difference.
# Values of the wrong type never stop the document: numbers given for text are read as text
# (ids are numbers in some feeds: the spec says to read them as strings), anything else is
# ignored and named in the warning, and an item that is no object is skipped and counted.

JSON_FEED_VERSION = "https://jsonfeed.org/version/"
_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*\{")  # anchored: match(), never search()
# Says a document means to be a JSON Feed, even one too broken to read ("\/" is JSON for "/").
_JSON_FEED_CLAIM = re.compile(r"jsonfeed\.org\\?/version")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}


def _json_feed(body: bytes, base: str, *, url: str) -> ParsedFeed:
    """A body that starts with "{": a JSON Feed, or the reason it is none."""
    problems: list[str] = []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = body.decode("utf-8-sig", errors="replace")
        problems.append(f"not UTF-8 at byte {exc.start}: undecodable bytes replaced")
    try:
        doc = json.loads(text)
    except RecursionError as exc:  # the C scanner recurses once per level of nesting
        raise _json_error(text, "nested too deeply to read", url) from exc
    except json.JSONDecodeError as exc:
        raise _json_error(text, f"{exc.msg} at line {exc.lineno}, column {exc.colno}", url) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise _json_error(text, str(exc), url) from exc
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version.strip().lower().startswith(JSON_FEED_VERSION):
        raise NotAFeedError(
            f'not a feed (JSON, but not a JSON Feed: no "version": "{JSON_FEED_VERSION}…")',
            url=url,
        )
    fields = _JsonFields()
    title = fields.text(doc, "title", "")
    base = _json_base(doc, base, fields)
    authors = _json_authors(doc, fields, "")
    items = fields.get(doc, "items", list, "") or []
    entries = tuple(
        _json_entry(item, base, authors, fields) for item in items if isinstance(item, dict)
    )
    skipped = len(items) - len(entries)
    if skipped:
        what = "items is not a JSON object" if skipped == 1 else "items are not JSON objects"
        problems.append(f"{skipped} of {len(items)} {what}: skipped")
    if fields.wrong:
        problems.append("values of the wrong type ignored: " + ", ".join(fields.wrong))
    return ParsedFeed(
        title=title,
        link=fields.url(doc, "home_page_url", base, ""),
        ttl_minutes=None,
        entries=entries,
        warning=_shorten("; ".join(problems)) if problems else None,
    )


def _json_error(text: str, problem: str, url: str) -> ParseError:
    """Invalid JSON: a broken feed when it says it is a JSON Feed, else no feed at all."""
    if _JSON_FEED_CLAIM.search(text):
        return ParseError(f"broken feed: invalid JSON: {_shorten(problem)}", url=url)
    return NotAFeedError(f"not a feed (invalid JSON: {_shorten(problem)})", url=url)


class _JsonFields:
    """Reads typed values out of a JSON object, noting each field that held the wrong type
    (by its path, items folded into one: "items[].url (a number)") for the warning."""

    def __init__(self) -> None:
        self.wrong: dict[str, None] = {}  # an ordered set of "path (type)"
        self._paths: set[str] = set()

    def get(self, obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        value = obj.get(key)
        if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
            return value
        self.note(where + key, value)
        return None

    def note(self, path: str, value: object) -> None:
        if path not in self._paths:
            self._paths.add(path)
            self.wrong[f"{path} ({_JSON_TYPES.get(type(value), 'a number')})"] = None

    def text(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # ids are numbers in some feeds: the spec says to read them so
        return _text(self.get(obj, key, str, where))

    def url(self, obj: Mapping[str, Any], key: str, base: str, where: str) -> str | None:
        return _url(base, self.get(obj, key, str, where))


def _json_base(doc: Mapping[str, Any], fetched: str, fields: _JsonFields) -> str:
    """What relative URLs are resolved against: the feed's own feed_url (as xml:base is read
    in XML), else the URL it was fetched from; home_page_url when neither is http(s) (a feed
    read from a file: URL)."""
    own = fields.url(doc, "feed_url", fetched, "")
    home = fields.url(doc, "home_page_url", fetched, "")
    for candidate in (own, fetched, home):
        if candidate and _HTTP_URL.match(candidate):
            return candidate
    return fetched


_HTTP_URL = re.compile(r"https?://[^/?#\s]", re.I)


def _json_entry(
    item: Mapping[str, Any], base: str, feed_authors: str | None, fields: _JsonFields
) -> RawEntry:
    where = "items[]."
    content_html = fields.text(item, "content_html", where)
    content_text = fields.text(item, "content_text", where)
    contents = [content_html, _plain_text_as_html(content_text) if content_text else None]
    links = [fields.url(item, key, base, where) for key in ("url", "external_url")]
    return RawEntry(
        guid=fields.text(item, "id", where),
        # url is the item's own page; external_url (a linkblog's) the page it is about,
        # taken only when there is no usable url, as a link that is not http(s) is none.
        link=next((u for u in links if u and _HTTP_URL.match(u)), links[0]),
        orig_link=None,
        title=fields.text(item, "title", where),
        content_html=tuple(dict.fromkeys(c for c in contents if c)),  # HTML, then the text
        # Plain text by the spec, yet generators put excerpts of HTML there too; extract reads
        # either (a literal "<b>" in it is read as a tag, as in an RSS description).
        summary_html=fields.text(item, "summary", where),
        author=_json_authors(item, fields, where) or feed_authors,
        published=_json_date(fields.get(item, "date_published", str, where)),
        updated=_json_date(fields.get(item, "date_modified", str, where)),
        dc_date=None,
        categories=_categories(
            {"term": tag} for tag in _json_list(item, "tags", str, fields, where)
        ),
        image_url=_json_image(item, base, fields, where),
        source_title=None,
    )


def _json_list(
    obj: Mapping[str, Any], key: str, kind: type, fields: _JsonFields, where: str
) -> list[Any]:
    """The elements of the array `key` that are of `kind` (the others noted as wrong)."""
    out = []
    for value in fields.get(obj, key, list, where) or []:
        if isinstance(value, kind) and not isinstance(value, bool):
            out.append(value)
        elif value is not None:
            fields.note(f"{where}{key}[]", value)
    return out


def _json_authors(obj: Mapping[str, Any], fields: _JsonFields, where: str) -> str | None:
    """The names of `authors` (1.1), else of `author` (1.0), joined; readers are to prefer
    `authors` when a feed gives both."""
    names = [
        fields.text(author, "name", f"{where}authors[].")
        for author in _json_list(obj, "authors", dict, fields, where)
    ]
    if not any(names):
        single = fields.get(obj, "author", dict, where)
        names = [fields.text(single, "name", f"{where}author.")] if single else []
    return ", ".join(dict.fromkeys(n for n in names if n)) or None


def _json_image(item: Mapping[str, Any], base: str, fields: _JsonFields, where: str) -> str | None:
    """image, then banner_image, then the first attachment that is an image."""
    for key in ("image", "banner_image"):
        image = fields.url(item, key, base, where)
        if image:
            return image
    for attachment in _json_list(item, "attachments", dict, fields, where):
        kind = fields.text(attachment, "mime_type", f"{where}attachments[].") or ""
        if kind.lower().startswith("image/"):
            image = fields.url(attachment, "url", base, f"{where}attachments[].")
            if image:
                return image
    return None


_ISO_DATE_START = re.compile(r"\d{4}-\d\d")


def _json_date(value: str | None) -> datetime | None:
    """An RFC 3339 date as aware UTC (no offset: UTC, as feedparser reads such dates in XML);
    else the date as feedparser reads RSS and Atom dates, since some generators write RFC 822
    ones ("Fri, 31 May 2019 12:17:58 -0700"); None when it is no date."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.upper())  # RFC 3339 allows "t" and "z" too
    except ValueError:
        if _ISO_DATE_START.match(text):
            return None  # "2026-13-45": feedparser would make 2027-01-01 of it
        return _date(feedparser.datetimes._parse_date(text), text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).replace(microsecond=0)
    except (OverflowError, ValueError):  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        return None


def _plain_text_as_html(text: str) -> str:
    """content_text (plain text) in a form extract reads as lines of text, never as markup.

    extract takes markup escaped once ("&lt;b&gt;") for markup a feed escaped by mistake and
    parses it, so text escaped once would still lose "a <b> tag" written as words. Escaped
    twice it has no markup after that one decoding: extract splits it into lines and decodes
    the entities, which gives the text back.
    """
    return html.escape(html.escape(text, quote=False), quote=False)


# -- the fast path: fastfeedparser -------------------------------------------------------------
#
# fastfeedparser is ~50x faster than feedparser but not a drop-in: it repairs broken XML,
# copies <description> into content, dates entries from <guid>, folds dc:date and <updated>
# into `published`, and drops the raw date text. So it is only asked about documents that are
# plainly well-formed UTF-8 (or declared Latin-1) RSS 2.0 / Atom 1.0 whose every element is on
# a short list whose mapping is known to match feedparser's; RSS 1.0 (RDF), a handful of
# elements, is read from the lxml tree alone. Anything else (media:*, itunes:*, enclosures,
# FeedBurner, xml:base, DOCTYPEs, other encodings...) goes to feedparser. A test holds the
# records equal to feedparser's on every fixture; on the 2,000-feed bench corpus and
# shared/corpus too (0 differences when last run).

FAST_PATH = os.environ.get("AGGREGATOR_PARSE_FEEDPARSER_ONLY", "") not in ("1", "true", "yes")

_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_SY = "{http://purl.org/rss/1.0/modules/syndication/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_RSS1 = "{http://purl.org/rss/1.0/}"
_RDF_ROOT_OK = frozenset({_RSS1 + "channel", _RSS1 + "item"})
_RDF_CHANNEL_OK = frozenset(
    {_RSS1 + n for n in ("title", "link", "description", "items")} | {_DC + "date"}
)
_RDF_ITEM_OK = frozenset(
    {_RSS1 + n for n in ("title", "link", "description")}
    | {_DC + n for n in ("date", "creator", "subject")}
    | {_CONTENT + "encoded"}
)
_RSS_CHANNEL_OK = frozenset(
    {
        "title",
        "link",
        "description",
        "language",
        "ttl",
        "lastBuildDate",
        "pubDate",
        "generator",
        "copyright",
        "managingEditor",
        "webMaster",
        "docs",
        "category",
        "item",
        "image",  # the channel's logo
        _SY + "updatePeriod",
        _SY + "updateFrequency",
        _SY + "updateBase",
        _ATOM + "link",  # rel=self and hub; an alternate one is refused below
    }
)
_RSS_ITEM_OK = frozenset(
    {
        "title",
        "link",
        "description",
        "guid",
        "pubDate",
        "category",
        "comments",
        "author",
        "{http://wellformedweb.org/CommentAPI/}commentRss",
        "{http://purl.org/rss/1.0/modules/slash/}comments",
        _CONTENT + "encoded",
        _DC + "creator",
    }
)
_ATOM_FEED_OK = frozenset(
    _ATOM + n
    for n in (
        "title",
        "link",
        "id",
        "updated",
        "subtitle",
        "generator",
        "entry",
        "author",
        "rights",
        "icon",
        "logo",
    )
)
_ATOM_ENTRY_OK = frozenset(
    _ATOM + n
    for n in (
        "id",
        "title",
        "link",
        "updated",
        "published",
        "author",
        "content",
        "summary",
        "category",
    )
) | {"{http://purl.org/syndication/thread/1.0}total"}
# Markup the fast path does not map as feedparser does. Looked for in the lower-cased body
# with `in`: one case-insensitive regex over a 100 KB body cost more than parsing it.
_FAST_REFUSE = (b"<!doctype", b"<!entity", b"xml:base", b"<?xml-stylesheet")
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # C1 controls: feedparser reads them as cp1252
_XML_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([^\"']+)", re.I)
_LATIN_1 = frozenset({"iso-8859-1", "latin-1", "latin1", "iso8859-1", "iso-latin-1"})
# Bytes 0x80-0x9f, looked for by deleting them (a regex over a 100 KB body took ten times as long)
_C1_BYTES = bytes(range(0x80, 0xA0))


class _NotFast(Exception):
    """The document is not one the fast path maps exactly: use feedparser."""


def _fast_parse(body: bytes, base: str, headers: Mapping[str, str]) -> ParsedFeed | None:
    """The feed through fastfeedparser, or None when feedparser must do it."""
    try:
        return _fast(body, base, headers)
    except _NotFast:
        return None
    except Exception:  # any surprise in the fast parser means: the slow one
        return None


def _fast(body: bytes, base: str, headers: Mapping[str, str]) -> ParsedFeed:
    charset = (_charset(headers.get("content-type", "")) or "").lower().replace("_", "-")
    m = _XML_DECL_ENCODING.match(body)
    declared = m.group(1).lower().decode("ascii", "replace") if m else ""
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise _NotFast
    lowered = body.lower()
    if any(marker in lowered for marker in _FAST_REFUSE) or _C1_UTF8.search(body):
        raise _NotFast
    if declared in _LATIN_1 and charset in ("", declared):
        # Declared Latin-1 and nothing says otherwise. Bytes 0x80-0x9f are C1 controls in
        # Latin-1 and cp1252 letters to feedparser: those documents are feedparser's.
        if len(body.translate(None, _C1_BYTES)) != len(body):
            raise _NotFast
        assert m is not None
        body = body[: m.start(1)] + b"utf-8" + body[m.end(1) :].decode("latin-1").encode("utf-8")
    elif charset not in ("", "utf-8", "utf8") or declared not in ("", "utf-8", "utf8"):
        raise _NotFast
    body.decode("utf-8")  # UnicodeDecodeError: not plainly UTF-8
    # a parser per call: lxml parsers are not to be shared between threads
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True)
    root = lxml.etree.fromstring(body, parser)  # XMLSyntaxError: not well-formed
    if root.tag == _RDF + "RDF":
        return _fast_rdf(root, base)
    if root.tag == "rss" and root.get("version") == "2.0":
        channels = [c for c in root if c.tag == "channel"]
        if len(channels) != 1 or len(root) != 1:
            raise _NotFast
        items = [c for c in channels[0] if c.tag == "item"]
        _check_children(channels[0], _RSS_CHANNEL_OK)
        for item in items:
            _check_children(item, _RSS_ITEM_OK)
        rss = True
        channel = channels[0]
        if any(
            c.tag == _ATOM + "link" and c.get("rel", "alternate") == "alternate" for c in channel
        ):
            raise _NotFast
    elif root.tag == _ATOM + "feed":
        items = [c for c in root if c.tag == _ATOM + "entry"]
        _check_children(root, _ATOM_FEED_OK)
        for item in items:
            _check_children(item, _ATOM_ENTRY_OK)
        rss = False
        channel = None
        if not any(
            c.tag == _ATOM + "link" and c.get("rel", "alternate") == "alternate" for c in root
        ):
            raise _NotFast  # feedparser takes the feed's id for its link
    else:
        raise _NotFast
    if not items:
        raise _NotFast  # empty feeds and their messages: feedparser's business

    result = fastfeedparser.parse(body, include_media=False, include_enclosures=False)
    feed = result["feed"]
    entries = result["entries"]
    if len(entries) != len(items):
        raise _NotFast
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_url(base, _fast_link(feed.get("links") or [], feed.get("link"))),
        ttl_minutes=_ttl(channel.findtext("ttl")) if channel is not None else None,
        entries=tuple(
            _fast_entry(e, item, base, rss=rss) for e, item in zip(entries, items, strict=True)
        ),
        warning=None,
    )


def _fast_rdf(root: lxml.etree._Element, base: str) -> ParsedFeed:
    """RSS 1.0 (RDF) read from the tree alone: few elements, each mapped as feedparser maps
    it (rdf:about is the guid, dc:date the updated date read by feedparser's own date parser,
    dc:creator the author, dc:subject the categories)."""
    channels = [c for c in root if c.tag == _RSS1 + "channel"]
    items = [c for c in root if c.tag == _RSS1 + "item"]
    if len(channels) != 1 or not items:
        raise _NotFast
    _check_children(root, _RDF_ROOT_OK)
    channel = channels[0]
    _check_children(channel, _RDF_CHANNEL_OK)
    return ParsedFeed(
        title=_leaf(channel.find(_RSS1 + "title")),
        link=_url(base, _leaf(channel.find(_RSS1 + "link"))),
        ttl_minutes=None,
        entries=tuple(_fast_rdf_item(item, base) for item in items),
        warning=None,
    )


def _fast_rdf_item(item: lxml.etree._Element, base: str) -> RawEntry:
    _check_children(item, _RDF_ITEM_OK)
    if set(item.attrib) != {_RDF + "about"}:
        raise _NotFast
    one: dict[str, lxml.etree._Element] = {}
    subjects: list[str] = []
    for child in item:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _DC + "subject":
            subjects.append(_leaf(child) or "")
        elif child.tag in one:
            raise _NotFast  # a repeated element: which one wins is feedparser's business
        else:
            one[child.tag] = child
    link = _leaf(one.get(_RSS1 + "link"))
    if not link:
        raise _NotFast
    author = _leaf(one.get(_DC + "creator"))
    if author and ("@" in author or "(" in author):
        raise _NotFast  # feedparser splits "name (email)" its own way
    date = _leaf(one.get(_DC + "date"))
    content = _leaf(one.get(_CONTENT + "encoded"))
    summary = _leaf(one.get(_RSS1 + "description"))
    if summary is None:  # feedparser gives the content as the summary too
        summary = content
    _refuse_escaped(link)
    return RawEntry(
        guid=_text(item.get(_RDF + "about")),
        link=_url(base, link),
        orig_link=None,
        title=_leaf(one.get(_RSS1 + "title")),
        content_html=_contents([{"value": content}] if content else []),
        summary_html=summary,
        author=author,
        published=None,
        updated=_date(feedparser.datetimes._parse_date(date), date) if date else None,
        dc_date=None,
        categories=_categories({"term": s} for s in subjects),
        image_url=None,
        source_title=None,
    )


def _check_children(element: lxml.etree._Element, allowed: frozenset[str]) -> None:
    for child in element:
        if not isinstance(child.tag, str):
            if isinstance(child, lxml.etree._Comment):
                continue
            raise _NotFast  # processing instructions, entities
        if child.tag not in allowed or child.get("type") == "xhtml":
            raise _NotFast


def _fast_link(links: Iterable[Mapping[str, Any]], link: object) -> str | None:
    return _alternate_link({"links": list(links), "link": link})


def _fast_entry(
    e: Mapping[str, Any], item: lxml.etree._Element, base: str, *, rss: bool
) -> RawEntry:
    """One entry: text fields read from the tree as feedparser gives them (fastfeedparser
    synthesizes guids and descriptions), dates, author and categories from fastfeedparser."""
    children = {c.tag: c for c in reversed(item) if isinstance(c.tag, str)}  # the first wins
    if rss:
        guid = children.get("guid")
        if guid is None or "link" not in children:
            raise _NotFast  # feedparser's guid-is-link rules
        if (guid.get("isPermaLink") or "true").lower() != "false" and not _ABSOLUTE.match(
            guid.text or ""
        ):
            raise _NotFast  # feedparser resolves such a guid as a URL
        content = [_leaf(children.get(_CONTENT + "encoded"))]
        summary = _leaf(children.get("description"))
        title = _leaf(children.get("title"))
        link = _leaf(children.get("link"))
        published = _fast_date(e.get("published"), "pubDate" in children)
        updated = None
    else:
        guid = children.get(_ATOM + "id")
        if guid is None:
            raise _NotFast
        content = [_leaf(children.get(_ATOM + "content"))]
        summary = _leaf(children.get(_ATOM + "summary"))
        title = _leaf(children.get(_ATOM + "title"))
        link = _fast_link(e.get("links") or [], e.get("link"))
        if not link:
            raise _NotFast  # feedparser takes the id for a link
        published = _fast_date(e.get("published"), _ATOM + "published" in children)
        updated = _fast_date(e.get("updated"), _ATOM + "updated" in children)
    if summary is None:  # feedparser gives the content as the summary too
        summary = content[0]
    _refuse_escaped(link)
    return RawEntry(
        guid=_leaf(guid),
        link=_url(base, link),
        orig_link=None,
        title=title,
        content_html=_contents({"value": c} for c in content if c),
        summary_html=summary,
        author=_author(dict(e)),
        published=published,
        updated=updated,
        dc_date=None,
        categories=_categories(e.get("tags") or []),
        image_url=None,
        source_title=None,
    )


def _refuse_escaped(link: str | None) -> None:
    if link and "&" in link and html.unescape(link) != link:
        raise _NotFast  # feedparser unescapes an escaped link once more


def _leaf(element: lxml.etree._Element | None) -> str | None:
    """The text of an element with no children (markup in it: feedparser's business)."""
    if element is None:
        return None
    if len(element):
        raise _NotFast
    return _text(element.text)


_ABSOLUTE = re.compile(r"\s*https?://", re.I)


def _fast_date(value: object, present: bool) -> datetime | None:
    if not present:
        return None
    if not isinstance(value, str):
        raise _NotFast  # a date fastfeedparser could not read: feedparser's rules decide
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise _NotFast
    return parsed.astimezone(UTC).replace(microsecond=0)
