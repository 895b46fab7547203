"""OPML in and out: the feed list other readers export, and ours for them.

    build_opml(config, names=...)  feeds.yaml -> OPML 2.0 bytes; one folder outline per topic
                                   (with category="/topic" on each feed), the rest at the top;
                                   each feed's text is its name as shown (`names`, by URL)
    parse_opml(data)               OPML bytes -> OpmlFeed records, each with its folders and
                                   category (feeds nested in a feed too, and outlines there
                                   that are no feed); raises OpmlError when it is no OPML
    plan_import(config, feeds, source=...)
                                   which feeds to add (with the topic the innermost folder
                                   naming one gives), which to skip and why (pure)
    add_feeds(path, additions)     append them to feeds.yaml, keeping the editor's comments,
                                   order and indentation (ruamel round-trip); the result is
                                   validated with load_config before it atomically replaces
                                   the file

The editor's file is only ever appended to: nothing they wrote is reordered or rewritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import lxml.etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .config import Config, feed_url_key, load_config
from .errors import AggregatorError, ConfigError
from .records import feed_display_name
from .text import fold_accents


class OpmlError(AggregatorError, ValueError):
    """The file is not OPML we can read, or feeds.yaml cannot take the import."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed outline, or one that looks meant as a feed but has no xmlUrl (so that the
    import can name it). Made by parse_opml."""

    url: str  # xmlUrl, as written; "" when the outline has none
    name: str | None  # title, else text
    # Where the file files the feed, most specific first: the enclosing folders' texts,
    # innermost first, then the parts of its category attribute's first path, last first.
    categories: tuple[str, ...] = ()
    html_url: str | None = None  # htmlUrl: the site
    line: int = 0  # the outline's line in the OPML file; 0 when unknown

    @property
    def label(self) -> str:
        """How the import names it: the URL, else the outline's text and line."""
        if self.url:
            return self.url
        named = f'outline "{self.name}"' if self.name else "an outline"
        return f"{named} (line {self.line})" if self.line else named


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What an import would do. Made by plan_import (pure)."""

    add: tuple[tuple[OpmlFeed, str | None], ...]  # (feed, topic key or None), in file order
    skipped: tuple[tuple[OpmlFeed, str], ...]  # (feed, why)


# -- export ----------------------------------------------------------------------------------


def build_opml(
    config: Config,
    *,
    now: datetime | None = None,
    title: str | None = None,
    names: Mapping[str, str] | None = None,
) -> bytes:
    """The configured feeds as OPML 2.0: a folder outline per topic, in config order.

    `names`: each feed's name as shown, by URL (pipeline.feed_names: an unnamed feed's own
    title once fetched); a feed missing there gets its `name:`, else its host."""
    root = lxml.etree.Element("opml", version="2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = title or f"Feeds of {config.path.name}"
    if now is not None:
        lxml.etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = lxml.etree.SubElement(root, "body")
    folders: dict[str, lxml.etree._Element] = {}
    titles = {t.key: t.title for t in config.topics}
    for feed in config.feeds:
        parent = body
        if feed.topic is not None:
            parent = folders.get(feed.topic)  # type: ignore[assignment]
            if parent is None:
                parent = folders[feed.topic] = lxml.etree.SubElement(
                    body, "outline", text=titles.get(feed.topic, feed.topic)
                )
        shown = (names or {}).get(feed.url) or feed_display_name(feed.name, None, feed.url)
        outline = lxml.etree.SubElement(
            parent, "outline", type="rss", text=shown, title=shown, xmlUrl=feed.url
        )
        if feed.topic is not None:
            outline.set("category", f"/{feed.topic}")
    return bytes(
        lxml.etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )


# -- import ----------------------------------------------------------------------------------


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an xmlUrl, in document order, and every one without that is not
    plainly a folder: nested in a feed, or with a type, htmlUrl or url. Feeds nested in a feed
    sit in its folders. No DTDs, entities or network."""
    parser = lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise OpmlError(f"not OPML: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"not OPML: the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("not OPML: no <body>")
    found: list[OpmlFeed] = []

    def walk(element: lxml.etree._Element, folders: tuple[str, ...], in_feed: bool) -> None:
        for outline in element.iterchildren("outline"):
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            text = (outline.get("title") or outline.get("text") or "").strip() or None
            nested = next(outline.iterchildren("outline"), None) is not None
            line = _line(outline)
            if url:
                first = (outline.get("category") or "").split(",")[0]
                parts = tuple(p.strip() for p in reversed(first.split("/")) if p.strip())
                html = (outline.get("htmlUrl") or "").strip() or None
                found.append(OpmlFeed(url, text, folders + parts, html, line))
                # Some readers file feeds under a feed; they are feeds all the same.
                walk(outline, folders, in_feed=True)
            elif nested:
                walk(outline, (text, *folders) if text else folders, in_feed)
            elif in_feed or any(outline.get(a) for a in ("type", "htmlUrl", "url")):
                # Not a feed we can add, but the editor may think it one: name it.
                found.append(OpmlFeed("", text, folders, None, line))

    walk(body, (), in_feed=False)
    return found


def _line(element: lxml.etree._Element) -> int:
    """The element's line in the file, 0 when unknown."""
    line: object = element.sourceline  # lxml-stubs has no type for it
    return line if isinstance(line, int) else 0


def plan_import(
    config: Config, feeds: Sequence[OpmlFeed], *, source: str = "the OPML file"
) -> ImportPlan:
    """Which OPML feeds are new to `config` and safe to add; the others with a reason.

    A feed gets the topic its innermost folder naming one gives (by key, title or alias; see
    _name_key), else the one its category attribute names; otherwise no topic hint. A URL
    the OPML lists again is added once; `source` names the file in the reason its repeat is
    skipped.
    """
    present = {feed_url_key(f.url) for f in config.feeds}
    # Kept apart from `present`: the editor must learn whether feeds.yaml or the OPML file
    # already had the URL.
    listed: set[str] = set()
    topics = _topic_names(config)
    add: list[tuple[OpmlFeed, str | None]] = []
    skipped: list[tuple[OpmlFeed, str]] = []
    for feed in feeds:
        parts = urlsplit(feed.url)
        if not feed.url:
            skipped.append((feed, "no xmlUrl, so no feed to add"))
        elif parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            skipped.append((feed, "not an http(s) URL"))
        elif any(c.isspace() for c in feed.url):
            skipped.append((feed, "the URL contains spaces"))
        elif feed_url_key(feed.url) in present:
            skipped.append((feed, "already in the file"))
        elif feed_url_key(feed.url) in listed:
            skipped.append((feed, f"listed twice in {source}"))
        else:
            listed.add(feed_url_key(feed.url))
            named = (topics.get(_name_key(c)) for c in feed.categories)
            add.append((feed, next((t for t in named if t is not None), None)))
    return ImportPlan(tuple(add), tuple(skipped))


def _topic_names(config: Config) -> dict[str, str]:
    """Folder name (as _name_key has it) -> topic key. A key wins over a title, a title over
    an alias, and among those of one kind the topic written first: feeds.yaml may give two
    topics the same alias, and the editor's own key is the surest name."""
    topics = config.topics
    ranked = [(t.key, t.key) for t in topics] + [(t.title, t.key) for t in topics]
    ranked += [(alias, t.key) for t in topics for alias in t.aliases]
    names: dict[str, str] = {}
    for name, key in ranked:
        if _name_key(name):
            names.setdefault(_name_key(name), key)
    return names


# Decoration around a folder's name ("Technology /", "- World -", "Health:"), never inside it:
# "C++" and "C#" keep their ends.
_NAME_EDGES = " \t\r\n/\\:;,.|*-_\u00b7\u2022"
_NAME_JOINS = re.compile(r"[\s_-]+")  # "World-News", "world_news", "World  News": one name


def _name_key(name: str) -> str:
    """A folder, topic or alias name reduced to what makes it the same name: case, accents
    (as categorize compares aliases), the decoration at its ends, and how its words are
    joined. Nothing looser: a folder that only resembles a topic ("Tech news" and `tech`) is
    no match, as a wrong topic would sort the feed's stories wrongly, and no topic does not."""
    return _NAME_JOINS.sub(" ", fold_accents(name).strip(_NAME_EDGES)).strip()


def add_feeds(path: Path, additions: Sequence[tuple[OpmlFeed, str | None]]) -> Config:
    """Append feeds to the `feeds:` list of the file at `path`, keeping every byte the editor
    wrote: the new entries are inserted as text after the list's last entry, indented like
    its first one (ruamel's round-trip tree says where those are). The result must load with
    load_config and hold exactly the old feeds plus the new ones before it atomically
    replaces the file.

    Returns the new config. Raises OpmlError (the file is left alone) otherwise.
    """
    before = load_config(path)
    if not additions:
        return before
    text = path.read_text(encoding="utf-8")
    document = YAML(typ="rt").load(text)
    if not isinstance(document, CommentedMap) or "feeds" not in document:
        raise OpmlError(f"{path}: no 'feeds' list to add to")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    feeds = document["feeds"]
    keys = list(document)
    following = keys[keys.index("feeds") + 1 :]
    end = document.lc.key(following[0])[0] if following else len(lines)  # 0-based line
    if isinstance(feeds, CommentedSeq) and feeds and not feeds.fa.flow_style():
        item_line, key_col = feeds.lc.item(0)
        dash_col = lines[item_line].rindex("-", 0, key_col)
        at = end
        while at > 0 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
            at -= 1
    elif not feeds:  # `feeds:` with nothing, or `feeds: []`
        line = document.lc.key("feeds")[0]
        lines[line] = lines[line][: lines[line].index(":", document.lc.key("feeds")[1]) + 1] + "\n"
        dash_col, key_col, at = 2, 4, line + 1
    else:
        raise OpmlError(f"{path}: 'feeds' is written inline; write it as a block list first")
    new = [_entry_text(feed, topic, dash_col, key_col) for feed, topic in additions]
    lines[at:at] = new
    after = _replace_checked(path, "".join(lines), expected=[f.url for f in before.feeds])
    return after


def _entry_text(feed: OpmlFeed, topic: str | None, dash_col: int, key_col: int) -> str:
    pairs = [("url", feed.url), ("name", feed.name), ("topic", topic)]
    out: list[str] = []
    for key, value in pairs:
        if value is None:
            continue
        lead = " " * dash_col + "-" + " " * (key_col - dash_col - 1) if not out else " " * key_col
        out.append(f"{lead}{key}: {_scalar(value)}\n")
    return "".join(out)


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when that reads back the same, else double-quoted."""
    try:
        plain_ok = YAML(typ="safe").load(f"k: {value}\n") == {"k": value}
    except Exception:  # any YAML error means: quote it
        plain_ok = False
    if plain_ok and "#" not in value and "\n" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _replace_checked(path: Path, text: str, *, expected: Sequence[str]) -> Config:
    """Write `text` beside `path`, load it as a config, check its feeds start with `expected`
    (the feeds before the import, in order), then move it over `path`."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            config = load_config(temp)
        except ConfigError as exc:
            raise OpmlError(f"the imported file would not load:\n{exc}") from None
        if [f.url for f in config.feeds][: len(expected)] != list(expected):
            raise OpmlError("the import would change the existing feeds; file left alone")
        os.chmod(temp, os.stat(path).st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return dataclasses.replace(config, path=path)
