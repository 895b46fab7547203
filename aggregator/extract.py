"""RawEntry -> Item: headline, lead paragraph, canonical link, time and identity. Pure: no I/O.

    extract_item(entry, feed_url, feed_name, feed_title, now)
      link      origLink, else link; resolved, http(s) only, trackers/fragment/default port gone
                (the fragment stays where entries of one feed are anchors on one page)
      headline  plain text; " - Site" / " | Site" dropped when it names the feed or source;
                none given -> the first sentence of the text (title_generated)
      lead      lead_paragraph(content..., summary): first real paragraph, furniture and
                trailers skipped, cut at a sentence near lead_chars; "" for title-only feeds
      image     the feed's (media:thumbnail, enclosure, itunes:image), else the first <img>
      published published, else updated (dc:date); a future date is clamped to now
      key       GUID, else canonical link, else "hash:" + sha256(headline, lead)
    anchored_entries(entries, inputs)  which entries are posts on one shared page (#anchors)
    unchanged_entries(...)     which entries a re-poll need not extract again: the same
                               RawEntry, the same inputs and the same code as a stored item
    disambiguate_keys(items)  a GUID repeated within one fetch for another story gets a suffix
    one_item_per_link(items)  copies of one entry in one fetch (same link, and same headline
                              or neither with a GUID) are one item: which copy

This is where a story's lead paragraph is made (``lead_paragraph``). Text is walked block by
block (lxml); each block is judged on its own: page furniture before the story (labels,
bylines, datelines, captions and credits, share lines, the headline again) is skipped and
trailers after it ("Continue reading", "The post X appeared first on Y", "[…]") are cut.
"""

from __future__ import annotations

import functools
import hashlib
import html
import operator
import re
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import SplitResult, unquote_plus, urljoin, urlsplit, urlunsplit

from lxml import etree

from .records import Item, RawEntry
from .text import fold_words

DEFAULT_LEAD_CHARS = 400
MAX_HEADLINE_CHARS = 250  # a "title" longer than this is a body pasted into <title>
GENERATED_HEADLINE_CHARS = 120

# Query parameters that only track the reader; editors extend the list (settings.tracking_params).
# Deliberately absent: generic names a site may use for the content itself (id, cid, p, s).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "mibextid",
        "yclid",
        "srsltid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "_hsenc",
        "_hsmi",
        "_ga",
        "_gl",
        "mkt_tok",
        "cmpid",
        "cmp",
        "ocid",
        "ncid",
        "icid",
        "sr_share",
        "smid",
        "smtyp",
        "ito",
        "taid",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "spm",
        "share",
        "s_cid",
        "s_kwcid",
        "xtor",
        "wt_mc",
        "wt_zmc",
        "rss",
        "feature",
        "wt.mc_id",
        "rb_clickid",
        "_openstat",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "hsa_", "ns_", "oly_", "vero_", "__twitter")

# -- text primitives ---------------------------------------------------------------------------

# A tag opens only with a letter, "/", "!" or "?" after "<", as in browsers: "2<3 and 5>4"
# is text.
_TAG = re.compile(r"</?[A-Za-z][^>]{0,2000}>|<[!?][^>]{0,2000}>")
# A script or style element and what it holds: code, never text to show.
_CODE = re.compile(r"<(script|style)\b[^>]{0,2000}>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]{0,2000})?/?>|<!--|<!\[CDATA\[")
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x200B,
        0x200C,
        0x200D,
        0x2060,
        0xFEFF,
        # bidi embeddings, overrides and isolates: "evil" shown as "live" (text spoofing)
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        *range(0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        0x7F,
    ],
)
# Any of them: translate looks every character up in a dict, a search for them is far cheaper,
# and most texts have none.
_ANY_INVISIBLE = re.compile("[" + "".join(re.escape(chr(c)) for c in _INVISIBLE) + "]")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def clean_text(text: str) -> str:
    """Entities decoded (escaped twice too), invisible characters gone, whitespace collapsed.

    Markup is left alone: see plain_text for that.
    """
    for _ in range(3):  # "&amp;amp;" needs two passes; stop as soon as nothing changes
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    if _ANY_INVISIBLE.search(text):
        text = text.translate(_INVISIBLE)
    # Whitespace collapsed: str.split() splits where re's \s matches (both ask
    # Py_UNICODE_ISSPACE: no-break and ideographic spaces too) and drops the ends, as
    # re.sub(r"\s+", " ", text).strip() does, at a quarter of the cost.
    return " ".join(text.split())


def plain_text(fragment: str | None) -> str:
    """Markup stripped (what scripts and style sheets hold too), entities decoded
    (twice-escaped too), whitespace collapsed."""
    if not fragment:
        return ""
    text = fragment
    for _ in range(3):  # "&lt;b&gt;" is markup once decoded; "&amp;lt;b&amp;gt;" twice
        stripped = text
        if "<" in text:
            text = _CODE.sub(" ", text)
            stripped = _TAG.sub(" ", text)
        unescaped = html.unescape(stripped)
        if unescaped == text:
            break
        text = unescaped
    return clean_text(_TAG.sub(" ", text))


MAX_FEED_TITLE_CHARS = 80  # a feed's <title> shown as its name: a credit, not a paragraph


def feed_title_text(title: str | None) -> str | None:
    """A feed's own <title> as the name it is shown under when feeds.yaml gives none: plain
    text (markup, entities and bidi controls gone; it credits every story of the feed, so a
    hostile title must not reverse or style the text around it), at most
    MAX_FEED_TITLE_CHARS, cut at a word; the site's tagline after its name dropped
    (_without_tagline). None when nothing is left."""
    text = _without_tagline(plain_text(title))
    if len(text) > MAX_FEED_TITLE_CHARS:
        cut = text[: MAX_FEED_TITLE_CHARS - 1]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:-–—|") + "…"
    return text or None


# A feed's <title> is often the site's name, then its tagline: "Example News - Breaking news,
# sport and weather from Example", "My Blog – Just another WordPress site", "Bamboo Blog -
# Home", "Wirecutter: Reviews for the Real World". That name then credits every story.
_TITLE_SEPARATOR = re.compile(r"\s[-–—|]\s|:\s")
_HOME_PAGE = frozenset(
    (
        *("home", "homepage", "home page", "front page", "startseite", "accueil", "inicio"),
        *("portada", "pagina inicial", "主页", "首页"),
    )
)


def _without_tagline(title: str) -> str:
    """``title`` without what follows the site's name when that is a tagline: "Home", a list
    ("News, sport and weather") or a phrase of four words or more, up to the next separator.
    A section stays ("The Register - Science", "Tails - News", "Node.js Blog: Vulnerability
    Reports", "Office - Jobs - Example County"), and so does what follows a name that ends
    in a lower-case word before a colon ("Comments on: Post title of a few words")."""
    m = _TITLE_SEPARATOR.search(title)
    if m is None:
        return title
    name, rest = title[: m.start()].strip(), title[m.end() :].strip()
    if not any(c.isalnum() for c in name) or not rest:
        return title
    if m.group(0).startswith(":") and name.split()[-1][:1].islower():
        return title
    tagline = _TITLE_SEPARATOR.split(rest, maxsplit=1)[0]  # "Name - Section - Site": a section
    if "," in tagline or len(tagline.split()) >= 4 or fold_words(tagline) in _HOME_PAGE:
        return name
    return title


@functools.lru_cache(maxsize=4096)  # headlines and feed names are folded again and again
def _fold(text: str) -> str:
    """Case, accents and punctuation folded away: for comparing headlines and names."""
    return fold_words(text)


def _is_cjk_char(c: str) -> bool:
    return (
        "\u3040" <= c <= "\u30ff"  # kana
        or "\u3400" <= c <= "\u9fff"  # CJK ideographs
        or "\uac00" <= c <= "\ud7af"  # Hangul
        or "\uf900" <= c <= "\ufaff"
    )


def _cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(map(_is_cjk_char, letters)) / len(letters) if letters else 0.0


# -- sentences ---------------------------------------------------------------------------------

_SENTENCE_PUNCT = ".!?…。！？؟۔"
_FULL_STOPS = "。！？"  # end a sentence with no space after them
_CLOSERS = "\"'”’»)]」』）"
_BOUNDARY = re.compile(r"([.!?…。！？؟۔]+)([\"'”’»)\]」』）]*)(\s*)")
_ABBREVIATIONS = frozenset(
    _words(
        """mr mrs ms mx dr prof sr jr st mt ft vs etc inc ltd co corp plc gen gov sen rep pres
    lt col capt cpt sgt adm maj rev hon jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue tues
    wed thu thur thurs fri sat sun no nos fig figs approx dept est e.g i.e u.s u.k u.n a.m p.m
    ca cf al op ed vol pp ph.d av ave blvd rd г гг им т.е т.д ул"""
    )
)
_ENDS_SENTENCE = re.compile(r"[.!?…。！？؟۔][\"'”’»)\]」』）]*$")


def sentence_ends(text: str) -> list[int]:
    """Offsets just past each sentence of ``text`` (closing quotes included), in order.

    A boundary is sentence punctuation followed by space and a character that is not a
    lower-case letter; CJK full stops need no space. Abbreviations ("Sept. 7", "U.S.") and
    initials ("J. K. Rowling") are not boundaries. The end of the text always is one.
    """
    ends: list[int] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        after = m.end()
        if after >= len(text):
            break
        punct, space = m.group(1), m.group(3)
        if not space and punct[-1] not in _FULL_STOPS:
            continue  # "3.5", "example.com", "U.S.A"
        if text[after].islower():
            continue  # "e.g. this", "... and then"
        if punct == "." and _abbreviation_before(text[start : m.start()]):
            continue
        ends.append(m.end(2))
        start = after
    if text.strip():
        ends.append(len(text.rstrip()))
    return ends


def _abbreviation_before(text: str) -> bool:
    """Does ``text`` end with an abbreviation ("Sept", "U.S") or an initial ("J")?"""
    # Its last word, read from the end (a regex for it, "(\S+)$", scans the whole sentence)
    if text.endswith("\n"):
        text = text[:-1]  # as that regex's "$" did, a final newline is passed over
    if not text or text[-1].isspace():
        return False
    token = text.rsplit(None, 1)[-1].lstrip("([\"'“‘«").casefold()
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _ends_sentence(text: str) -> bool:
    return bool(_ENDS_SENTENCE.search(text))


def cut_at_sentence(text: str, limit: int) -> str:
    """At most about ``limit`` characters, cut after a whole sentence; "…" only when cut.

    When even the first sentence is too long, or stopping at a sentence would keep less than
    a third of the limit, the text is cut at a word (CJK: a character) instead.
    """
    text = text.strip()
    if len(text) <= limit or limit <= 0:
        return text if limit > 0 else ""
    kept = 0
    for end in sentence_ends(text):
        if end > limit:
            break
        kept = end
    if kept >= limit // 3:
        head = text[:kept].rstrip()
        return head + ("…" if _is_cjk_char(head[-2:-1] or " ") else " …")
    head = text[:limit]
    if " " in head[limit // 2 :] and _cjk_share(head) < 0.5:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(",;:-–—、，・ ") + "…"


# -- blocks ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Block:
    text: str  # plain text, entities decoded, whitespace collapsed
    kind: str  # "p" (any paragraph-like element), "heading", "li", "pre"
    soft: bool  # ended by <br> or a newline, not by the end of an element
    link_share: float  # fraction of the text inside <a> elements


_BLOCK_TAGS = frozenset(
    _words(
        """p div li h1 h2 h3 h4 h5 h6 blockquote td th section article header main pre dd dt tr
    ul ol dl table center address hr br body html"""
    )
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SKIP_TAGS = frozenset(
    _words(
        """script style noscript iframe object embed svg math figcaption figure nav aside form
    button select option textarea template head title footer audio video picture canvas
    map label"""
    )
)
# class / id words of page furniture in scraped content (split on spaces, "-" and "_").
_FURNITURE_CLASSES = frozenset(
    _words(
        """share sharing sharebar social socials related newsletter advert advertisement ad ads
    adsbygoogle sponsor sponsored promo subscribe subscription caption credit credits byline
    breadcrumb breadcrumbs menu navbar tags taglist meta postmeta author comments comment
    signup popup modal cookie cookies screen-reader-text sr only visually hidden wp caption-text
    jp relatedposts sharedaddy showcontact"""
    )
)


_CLASS_WORD_BREAK = re.compile(r"[\s_-]+")


def _furniture_element(el: etree._Element) -> bool:
    names = f"{el.get('class') or ''} {el.get('id') or ''}".casefold()
    if not names.strip():
        return False
    words = set(_CLASS_WORD_BREAK.split(names))
    if ("sr" in words and "only" in words) or ("screen" in words and "reader" in words):
        return True
    return bool(words & _FURNITURE_CLASSES - {"sr", "only", "wp", "jp", "visually", "hidden"})


_DANGLING_SEPARATOR = re.compile(r"\s*[|·•]\s*$")

MAX_BLOCKS = 60  # blocks read from one source; furniture before a story is never longer
FIRST_BLOCKS = 3  # read first: the lead is nearly always among them (else MAX_BLOCKS are read)


# lxml.html.document_fromstring's parser without its element classes: _blocks reads tags,
# attributes and text only, and lxml.html's Python lookup of a class for every element read
# cost a fifth of the walk. Shared between threads as lxml.html shares its own.
_HTML = etree.HTMLParser()


class _Enough(Exception):
    """Stops the walk of a long document once MAX_BLOCKS blocks are read."""


def _blocks(fragment: str, depth: int = 0, cap: int = MAX_BLOCKS) -> tuple[list[_Block], bool]:
    """The fragment's text as paragraph-like blocks in document order, furniture tags skipped;
    and whether the walk stopped at ``cap`` blocks (those read are the full list's first).

    Plain text (no tags) is split at line breaks. Markup escaped once more than it should be
    ("&lt;p&gt;") is decoded and parsed as markup.
    """
    if not _MARKUP.search(fragment):
        unescaped = html.unescape(fragment)
        if _MARKUP.search(unescaped) and depth < 2:
            return _blocks(unescaped, depth + 1, cap)
        return _text_blocks(unescaped), False
    try:  # a whole document around it: stray <html>/<body> tags in the fragment merge into it
        document = etree.fromstring(f"<html><body><div>{fragment}</div></body></html>", _HTML)
        if document is None:
            raise etree.ParserError("Document is empty")  # as lxml.html.document_fromstring
    except (etree.ParserError, ValueError):
        return _text_blocks(plain_text(fragment)), False
    root = document.find("body")
    if root is None:
        return _text_blocks(plain_text(fragment)), False
    out: list[_Block] = []
    buf: list[str] = []
    link_chars = 0
    kinds: list[str] = ["p"]

    def flush(*, soft: bool = False, end: bool = False) -> None:
        nonlocal link_chars
        if not buf:  # nothing since the last flush (link_chars is 0, out is short of the cap)
            if end and out and out[-1].soft:
                # "<p>text<br></p><p>": the paragraph's end, not the <br>, ends that line
                out[-1] = replace(out[-1], soft=False)
            return
        raw = "".join(buf)
        text = clean_text(raw)
        if text and kinds[-1] == "pre":  # preformatted: its line breaks are the structure
            out.extend(_text_blocks(html.unescape(raw) if "&" in raw else raw))
        elif text:
            share = min(1.0, link_chars / max(1, len(raw.strip())))
            out.append(_Block(text, kinds[-1], soft, share))
        buf.clear()
        link_chars = 0
        if len(out) >= cap:
            raise _Enough  # the lead is among the first blocks: the rest is never read

    def add(text: str | None, in_link: bool) -> None:
        nonlocal link_chars
        if text:
            buf.append(text)
            if in_link:
                link_chars += len(text.strip())

    def walk(el: etree._Element, in_link: bool) -> None:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if not tag or tag in _SKIP_TAGS or _furniture_element(el):
            if tag in _BLOCK_TAGS or tag in _SKIP_TAGS:
                flush()
            elif tag and buf:
                # "Jane Doe | <a class=showcontact>...</a>": the separator led to what is gone
                buf[-1] = _DANGLING_SEPARATOR.sub(" ", buf[-1])
            add(el.tail, in_link)
            return
        if tag == "br":
            flush(soft=True)
            add(el.tail, in_link)
            return
        if tag == "img":
            add(el.tail, in_link)
            return
        block = tag in _BLOCK_TAGS
        if block:
            flush()
            kinds.append("heading" if tag in _HEADINGS else tag if tag in ("li", "pre") else "p")
        inner = in_link or tag == "a"
        add(el.text, inner)
        for child in el:
            walk(child, inner)
        if block:
            flush(end=tag in ("p", "li", "blockquote") or tag in _HEADINGS)
            kinds.pop()
        add(el.tail, in_link)

    cut = False
    try:
        walk(root, False)
        flush()
    except _Enough:
        cut = True
    blocks: list[_Block] = []
    for b in out:  # markup that was escaped twice survives one parse as literal text
        if _MARKUP.search(b.text) and depth < 2:
            blocks.extend(_blocks(b.text, depth + 1)[0])
        else:
            blocks.append(b)
    return blocks, cut


def _text_blocks(text: str) -> list[_Block]:
    """Plain text: one block per line; a blank line is a hard break."""
    out: list[_Block] = []
    for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [clean_text(x) for x in paragraph.split("\n")]
        lines = [x for x in lines if x]
        for i, line in enumerate(lines):
            out.append(_Block(line, "p", soft=i < len(lines) - 1, link_share=0.0))
    return out


# -- furniture and trailers --------------------------------------------------------------------

# "Read more" in the other languages of news feeds: dropped wherever the English one is (a
# trailing phrase or link, a line of its own), never inside a sentence. "Learn more" and its
# kin are not here: they also start real sentences.
_READ_MORE_PHRASES = (
    *("leia mais", "ler mais", "continue lendo", "continuar lendo"),  # pt
    *("lire la suite", "lire plus"),  # fr
    *("weiterlesen", "mehr lesen"),  # de
    *("leer más", "leer mas", "seguir leyendo", "sigue leyendo", "continuar leyendo"),  # es
    *("continua a leggere", "continua la lettura", "leggi tutto", "leggi di più"),  # it
    *("lees meer", "lees verder", "verder lezen"),  # nl
    *("czytaj dalej", "czytaj więcej"),  # pl
)
_READ_MORE = "|".join(re.escape(p) for p in _READ_MORE_PHRASES)  # "\ " for verbose patterns
# The same, capitalised as a link's text is ("Leia mais", "Leia Mais", "LEIA MAIS").
_READ_MORE_CAPITALISED = "|".join(
    re.escape(p[0].upper()) + "(?i:" + re.escape(p[1:]) + ")" for p in _READ_MORE_PHRASES
)

# Whole lines that are page furniture, not story text (matched case-insensitively).
_FURNITURE = re.compile(
    r"""^(?:
        connect\ with\ us | follow\ us\b.* | stay\ connected | share(?:\ this)?(?:\ (?:article
        |story|post|page))? | share\ (?:on|via)\ \w+.* | advertisement | advertising | ad
        | sponsored(?:\ content)? | paid\ content | partner\ content | published | updated
        | posted | on | by | in | and | related(?:\ (?:articles|stories|posts|content|topics))?
        | more\ (?:on\ this\ story|stories|from\ \S+.*) | read\ more | continue\ reading
        | """
    + _READ_MORE
    + r"""
        | read\ (?:the\ )?full\ (?:story|article|post) | click\ here.* | subscribe\b.* | sign\ up.*
        | log\ ?in | register | listen(?:\ (?:to\ )?(?:this\ )?(?:article|story|episode|now))?
          (?:\ \d+\ min(?:ute)?s?)?
        | watch(?:\ now|\ live)? | image | images | photo | photos | gallery | video | videos
        | comments? | \d+\ comments? | leave\ a\ (?:comment|reply) | tweet | email | e-mail
        | print | save | copy\ link | skip\ to\ (?:main\ )?content | menu | home | news
        | breaking(?:\ news)? | live | exclusive | opinion | analysis | explainer | top\ stories
        | editor'?s?\ picks? | trending | most\ read | latest | toggle\ navigation
        | (?:\d+\ )?min(?:ute)?s?\ read | reading\ time\b\W*(?:\d|about\b|under\b).*
        | (?:article|comments)\ url:.*
        | points:\ .* | \#\ comments:\ .* | tags?:.* | filed\ under:?.* | categories?:.*
        | posted\ in\ .* | image\ (?:source|caption)\b.* | media\ caption\b.* | view\ (?:image
        |gallery|original).* | open\ in\ app | get\ the\ app.*
    )[\s.:!»›→]*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A sentence that opens with a label's words: "Posted in 1998, the letter was never delivered.",
# "Filed under seal, the complaint names ...", "Sign up rates doubled in March.". It ends with a
# sentence stop and holds an article or a verb, which the label ("Posted in Politics, World",
# "Filed under: Tech", "Sign up for our newsletter.") does not.
_SENTENCE_LABEL = re.compile(
    r"(?:posted\ in|filed\ under|sign\ up(?!\ (?:for|to|here|now|today|free|and|with|at|via)\b))\s",
    re.IGNORECASE | re.VERBOSE,
)
_CLAUSE_WORDS = _words(
    "the a an was were is are has have had will would it its he she they his her"
)


def _label_goes_on(text: str) -> bool:
    """Is ``text``, which ``_FURNITURE`` matched as a label, a sentence that starts like one?"""
    if not _SENTENCE_LABEL.match(text) or not text.rstrip("\"'”’)").endswith((".", "!", "?")):
        return False
    return any(w.strip(",;:") in _CLAUSE_WORDS for w in text.split())


# "Also read: Other story", "WATCH: Mayor speaks": a link to something else, over the story.
# As the only block it is the story's own description ("WATCH: Footage shows ...").
_LINK_LABEL = re.compile(r"(?:also read|read also|see also|watch|listen|related|more):", re.I)
_BY = re.compile(
    r"^(?:(?:by|von|par|por|di|door|av|от|автор)(?::\s*|\s+)"
    r"|(?:authors?|autor(?:a|es|as|in|en)?|auteur(?:e|s)?|autore|autori|autrice|автор)\s*:\s*)"
    r"(?:[^.!?]|(?<=\b\w)\.){2,90}$",
    re.I,
)
# "By A, B (Role); C and D (Role).": a byline too long for _BY, read as a list of names.
_BY_LIST = re.compile(r"^(?:by|von|par|por|door)(?::\s*|\s+)([^!?]{3,300}?)\.?$", re.I)
_NAME_SEPARATORS = re.compile(r"\s*(?:[,;&]|\b(?:and|und|et|y|e|en)\b)\s*")
_NAME_PARTICLES = frozenset(_words("de da do dos das del della di du van von der den la le al bin"))
_DATE_WORDS = frozenset(
    _words(
        """published updated posted modified last first on at am pm a.m p.m ago today yesterday
    hour hours hr hrs minute minutes min mins second seconds day days week weeks month months
    year years just now utc gmt bst cet cest est edt pst pdt ist jst kst aest et pt
    january february march april may june july august september october november december jan
    feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
    saturday sunday mon tue tues wed thu thur thurs fri sat sun of the th st nd rd
    年 月 日 時 分 秒 时 号 午前 午後 년 월 일 시 분 г года мин назад"""
    )
)
_CREDIT = re.compile(
    r"^(?:(?:photo(?:graph)?s?|images?|pictures?|illustrations?|video|credits?|source|file\ photo"
    r"|foto|фото)\s*(?:credit|by|courtesy)?\s*[:/©(|]|©|\(c\)\s|ap\ photo|reuters/|afp\ via"
    r"|(?P<name>copyright\b|getty\ images|shutterstock)|(?P<courtesy>courtesy\ of\b))",
    re.IGNORECASE | re.VERBOSE,
)
# What a credit's bare name may be followed by in lower case ("Getty Images via AFP", "for
# Netflix", "Copyright 2024 Example. All rights reserved."). Any other lower-case word makes
# it a sentence about the name: "Getty Images agreed to ...", "Copyright lawsuits are ...".
_CREDIT_WORDS = _words("via for by and of the all rights reserved photo photos image images")


def _credit_goes_on(m: re.Match[str]) -> bool:
    """Does the text that ``_CREDIT`` matched with ``m`` go on as a sentence, not a credit?"""
    rest = m.string[m.end() :]
    if m.group("name"):
        words = (w.strip(".,;:!?()\"'") for w in rest.split())
        return any(w.isalpha() and w.islower() and w not in _CREDIT_WORDS for w in words)
    # "Courtesy of a tip from a reader, police found ...": a clause after the comma
    return bool(m.group("courtesy") and re.search(r",\s+[a-z]", rest))


_CAPTION_END = re.compile(
    r"(?:\((?:ap|afp|reuters|epa|getty|photo|image|picture|credit|bloomberg|xinhua|file)\b[^()]{0,80}\)"
    r"|\b(?:photograph|photo|image|picture|credit|illustration)\s*(?::|by\b)\s*[^.!?]{1,80}"
    r"|/\s*(?:getty\ images|afp|reuters|ap|epa|shutterstock|alamy|bloomberg|xinhua)"
    r"(?:\ via\ [^.!?]{1,40})?)\s*\.?$",
    re.IGNORECASE | re.VERBOSE,
)
_PITCH = re.compile(
    r"^(?:(?:sign\ up|subscribe|register|join|get|receive)\b[^.!?]{0,100}\b(?:newsletters?"
    r"|inbox|mailing\ list|subscribers|free\ trial)\b|thanks\ for\ reading\b|want\ more\b[^.!?]"
    r"{0,60}\?|don['’]?t\ miss\b[^.!?]{0,80}\b(?:newsletter|story|stories|updates)\b"
    r"|support\ (?:our|independent)\ journalism\b|this\ (?:post|newsletter)\ is\ (?:public|free)"
    r"|you(?:\ are|['’]re)\ reading\b)",
    re.IGNORECASE | re.VERBOSE,
)
# What a pitch's sentences are about: the site, its letters and its readers' money. A block
# that _PITCH matched is a pitch only when each of its sentences holds one of these or is
# as short as "Want more?" or "Thanks for reading, everyone!"; a sentence about anything
# else makes it the story's paragraph: "Want more evidence that the housing market is
# cooling? Sales fell 12% in March, ...", "Don't miss the latest updates on the storm: ...".
_ABOUT_THE_SITE = re.compile(
    r"\b(?:newsletters?|subscri(?:be|bed|bers?|ptions?)|sign(?:ing)?\ up|inbox|e-?mails?"
    r"|briefings?|our|free|paid|premium|members?|membership|donat(?:e|ions?)|edition|posts?"
    r"|like\ th(?:is|ese)|register|upgrade|support)\b",
    re.IGNORECASE | re.VERBOSE,
)
_PITCH_SHORT = 4  # words


def _is_pitch(text: str) -> bool:
    if not _PITCH.match(text):
        return False
    start = 0
    for end in sentence_ends(text):
        sentence, start = text[start:end], end
        if len(sentence.split()) > _PITCH_SHORT and not _ABOUT_THE_SITE.search(sentence):
            return False  # it goes on about something else
    return True


# A cookie notice scraped with the page. Its own phrasing only: a story about cookie rules
# ("regulators fined the site over its cookie consent banner", "users must accept cookies")
# or one that goes "By continuing to use coal, ..." is news. Its buttons only alone.
_COOKIES = re.compile(
    r"\b(?:we|this\ (?:web)?site|our\ (?:web)?site|this\ page)\ (?:uses?|is\ using)\ cookies\b"
    r"|\bby\ continuing\ to\ (?:browse|use|visit)\b[^.!?]{0,80}\byou\ (?:agree|consent|accept)"
    r"|^\W*(?:accept\ (?:all\ )?cookies|(?:manage\ )?cookie\ (?:settings|preferences))\W*$",
    re.IGNORECASE | re.VERBOSE,
)


def _is_cookie_notice(text: str) -> bool:
    head = text[:400]
    # every _COOKIES match holds one of these words: the rest are not searched (6% of the time)
    probe = _probe(head)
    return ("cookie" in probe or "continuing" in probe) and bool(_COOKIES.search(head))


_SOCIAL_WORDS = frozenset(
    _words(
        """share shares sharing facebook twitter x linkedin whatsapp email e-mail mail reddit
    pinterest telegram print copy link url tweet on via this the article story post page
    messenger bluesky threads mastodon flipboard pocket save comment comments sms instagram
    youtube tiktok follow us and or"""
    )
)
_SOCIAL_WORD = re.compile(r"[\w-]+")
_URL_ONLY = re.compile(r"^(?:(?:https?://|www\.)\S+\s*)+$", re.I)

# Trailers: from here to the end of the block is not the story. Those marked "anywhere" may
# follow any text; the others must start the block or follow the end of a sentence.
_TRAILER_ANYWHERE = re.compile(
    r"""(?:
        \b(?:the|this)\ (?:post|article|entry|story)\ .{1,300}?\ (?:appeared|was\ published
        |first\ appeared)\ (?:first\ )?(?:on|in|at)\b.*
        | \[\s*(?:…|\.{2,}|&hellip;|&\#8230;)\s*\]\s*
        | \[\s*(?:more|read\ more|continue\ reading|\+|"""
    + _READ_MORE
    + r""")\s*\].*
        | \bsubmitted\ by\ +/?u/.* | \[link\]\s*\[comments\].*
        | \bwas\ originally\ published\ (?:in|on|at)\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
# What may follow "Read more" and its English kin to the end of the block: words without a
# sentence stop, then dots or "…" ("Read more..."); or words, then where the story goes on,
# whose name may hold dots and may end in a full stop ("Read more at Example.com."). That
# place is a domain or capitalised words: a sentence that starts "Read the full story at"
# and goes on in lower case ("at X and see why.") is the story.
_SITE_NAME = r"""(?:[\w-]+(?:\.[\w-]+)+|(?-i:[A-Z0-9])[\w&'’-]*)"""
_TRAILER_TAIL = (
    rf"""(?:[^.!?]{{0,160}}?\s(?:at|on)\s(?:the\s)?{_SITE_NAME}(?:\s{_SITE_NAME}){{0,4}}\.?"""
    r"""|[^.!?]{0,160}?(?:\s*(?:\.{2,}|…))?)[\s»›→]*"""
)
_TRAILER_AFTER_SENTENCE = re.compile(
    r"""(?:
        (?:continue\ reading|read\ more(?!\ than\b)|read\ the\ (?:full|rest|whole|entire)\b
        |keep\ reading|read\ (?:the\ )?full\ (?:article|story|post)
        |view\ (?:the\ )?(?:full|original)\b|more\ »|\(more…?\.{0,3}\)|click\ here\b
        |see\ more\b(?!\ than\b))"""
    + _TRAILER_TAIL
    + r"""
        | (?:(?:continue\ reading|keep\ reading|read\ more
          |read\ (?:the\ )?(?:full\ )?(?:story|article|post|report|interview))
          (?:\ (?:here|now|online|below))?|read\ it\ (?:here|now|online|below))\s*[.!][\s»›→]*
        | (?:originally\ (?:published|posted)\ (?:at|on|in)|this\ (?:article|post|entry|story)
          \ (?:was\ |is\ )?(?:originally\ |first\ )?(?:published|posted|appeared)\b).*
        | (?:sign\ up|subscribe)\b[^.!?]{0,100}\bnewsletter\b.*
        | get\ (?:the\ latest|our)\b[^.!?]{0,100}\binbox\b.*
        | thanks\ for\ reading\b.* | share\ (?:this|on|via)\b.* | follow\ us\ on\b.*
        | like\ us\ on\ facebook\b.* | click\ to\ share\b.* | leave\ a\ (?:comment|reply)\b.*
        | (?:filed\ under|tagged|tags|categories|posted\ in)\s*:.* | related\s*:.*
        | \(reporting\ by\b.* | advertisement\b(?!\s+(?-i:[a-z])).* | story\ continues\ below\b.*
        | click\ here\b[^.!?]{0,160}[.!]? | more(?:…|\.{2,}) | (?<!\d)\d+\ comments?\s*
        | (?:©|copyright\ (?:©|\(c\)|\d{4})|\(c\)\ \d{4}).*
        | support\ (?:our|independent|quality)\ journalism\b.*
        | \((?:photo|photograph|image|picture|file\ photo)s?\b[^()]{0,80}\)\s*\.?
    )$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
_TRAILER_CAPITALISED = re.compile(
    r"(?:Continue [Rr]eading|Read [Mm]ore(?! than\b)|Keep [Rr]eading|Read the full|READ MORE)"
    + _TRAILER_TAIL
    + r"$"
)
# "Leia mais" and its kin: patterns of their own, tried only on a text that holds one of the
# phrases whole (rare), so that every other block does not pay for 30 more alternatives.
_LOCAL_TAIL = r"\b[^.!?]{0,160}(?:\.{2,})?$"
_LOCAL_AFTER_SENTENCE = re.compile(
    "(?:" + _READ_MORE + ")" + _LOCAL_TAIL, re.IGNORECASE | re.VERBOSE | re.DOTALL
)
_LOCAL_CAPITALISED = re.compile("(?:" + _READ_MORE_CAPITALISED + ")" + _LOCAL_TAIL, re.VERBOSE)
_AFTER_SENTENCE_ONLY = (_TRAILER_AFTER_SENTENCE, _LOCAL_AFTER_SENTENCE)
_CAPITALISED_ONLY = (_TRAILER_CAPITALISED, _LOCAL_CAPITALISED)
_AFTER_SENTENCE = tuple(_SENTENCE_PUNCT + _CLOSERS + ":|-–—→›»•·")
# ... unless the sign is joined to the phrase: a hyphen or an opening quote ("self-advertisement",
# a "Copyright (c) Example" sticker) is inside the sentence.
_JOINED = "-\"'"
# "Read more books…": "Read more" and a lower-case object that is not where to read on
# ("of this story", "news at X"). As a block of its own it may be a link to more stories or
# a sentence (a resolution, a tip): only the lead when nothing else is (_first_paragraph).
_READ_MORE_OBJECT = re.compile(
    r"read\s+more\s+(?!(?:at|on|in|of|from|about|here|below|after|via)\b)(?-i:[a-z])"
    r"(?!.*\s(?:at|on)\s)",
    re.IGNORECASE | re.DOTALL,
)


# A credit line that the "anywhere" trailer found inside a sentence: "A version of this post
# originally appeared in ...", "The piece was originally published on ...". What comes before
# it in that sentence is part of the credit, not of the story: the whole sentence goes.
# ("The post X appeared first on Y", capitalised, starts a sentence of its own.)
_MID_SENTENCE_CREDIT = re.compile(r"(?:the|this)\s|was\s")

# A byline after the story's last sentence, to the end of the block: "... audience is. By
# Mirko Stocker" (InfoQ), "... on Monday. By Jane Doe and John Smith". Names only: capitalised
# words, initials and name particles, two to six of them, no full stop after.
_NAME_WORD = r"(?:[A-Z][\w'’-]*|[A-Z]\.|de|da|van|von|der|den|di|du|del|della|la|le|bin|and|&)"
_TRAILING_BYLINE = re.compile(
    rf"(?<=[.!?…\"”’)])\s+By:?\s+[A-Z][\w'’-]*(?:\s+{_NAME_WORD}){{1,5}}\s*$"
)


# Words one of each trailer pattern's matches must contain (in _probe's folding): a text that
# has none of them is not searched with that pattern.
_ANYWHERE_NEEDS = ("[", "appeared", "published", "submitted")
# _TRAILER_AFTER_SENTENCE's are the phrases its alternatives begin with (the digits' one: the
# word after them), in their order: not single words, as most blocks hold "more", "read",
# "this" or ":" and the pattern, which tries its forty-odd alternatives at every offset, was
# most of the time spent on trailers.
_AFTER_SENTENCE_NEEDS = (
    *("continue reading", "read ", "keep reading", "view ", "more »", "(more", "click here"),
    *("see more", "originally ", "this article", "this post", "this entry", "this story"),
    *("sign up", "subscribe", "get the latest", "get our", "thanks for reading", "share "),
    *("follow us on", "like us on facebook", "click to share", "leave a ", "filed under"),
    *("tagged", "tags", "categories", "posted in", "related", "(reporting by"),
    *("advertisement", "story continues below", "more…", "more..", " comment", "©"),
    *("copyright ", "(c) ", "support ", "(photo", "(image", "(picture", "(file photo"),
)
_CAPITALISED_NEEDS = ("Continue ", "Read ", "Keep ", "READ MORE")
# Non-ASCII characters that re.IGNORECASE matches with an ASCII letter other than their lower().
_SRE_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}


def _probe(text: str) -> str:
    """``text`` lower-cased as re.IGNORECASE sees ASCII letters: for the substring tests above."""
    return text.lower() if text.isascii() else text.translate(_SRE_ASCII).lower()


def _trailer_patterns(text: str) -> list[re.Pattern[str]]:
    """The trailer patterns that could match ``text``, in the order they are tried."""
    probe = _probe(text)
    patterns = []
    if any(w in probe for w in _ANYWHERE_NEEDS):
        patterns.append(_TRAILER_ANYWHERE)
    if any(w in probe for w in _AFTER_SENTENCE_NEEDS):
        patterns.append(_TRAILER_AFTER_SENTENCE)
    if any(w in text for w in _CAPITALISED_NEEDS):
        patterns.append(_TRAILER_CAPITALISED)
    if any(p in probe for p in _READ_MORE_PHRASES):
        patterns += _LOCAL_AFTER_SENTENCE, _LOCAL_CAPITALISED
    if " By" in text:
        patterns.append(_TRAILING_BYLINE)
    return patterns


def _sentence_start(text: str, at: int) -> int:
    """Where the sentence around ``text[at]`` starts: just after the last sentence end before
    ``at``, or ``at`` itself when no sentence ends before it (a text the feed left without
    full stops: better a credit's first words than no lead)."""
    before = text[:at].rstrip()
    if not before or before.endswith(_AFTER_SENTENCE):
        return at
    ends = [e for e in sentence_ends(before) if e < len(before)]
    return ends[-1] if ends else at


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Every match of ``pattern`` in ``text``, by start, also those that start inside an
    earlier one: a trailer phrase used mid-sentence ("will share this plan") matches to the
    end of the block, and finditer would not look for the trailer after it ("Share this:")."""
    m = pattern.search(text)
    while m is not None:
        yield m
        m = pattern.search(text, m.start() + 1)


def _strip_trailer(text: str) -> tuple[str, bool]:
    """(text without its trailers, whether the feed itself cut the text short with "[…]")."""
    truncated = False
    while True:
        best = len(text)
        for pattern in _trailer_patterns(text):
            for m in _matches(pattern, text):
                before = text[: m.start()].rstrip()
                if (
                    pattern in _AFTER_SENTENCE_ONLY
                    and before
                    and (not before.endswith(_AFTER_SENTENCE) or text[m.start() - 1] in _JOINED)
                ):
                    continue
                if (
                    pattern in _CAPITALISED_ONLY
                    and before
                    and not (
                        before.endswith(_AFTER_SENTENCE)
                        or text[m.start() - 1 : m.start()].isspace()
                    )
                ):
                    continue
                start = m.start()
                if pattern is _TRAILER_ANYWHERE and _MID_SENTENCE_CREDIT.match(m.group(0)):
                    start = _sentence_start(text, start)
                if start < best:
                    best = start
                    truncated = truncated or m.group(0).lstrip().startswith("[")
                break
        if best == len(text):
            return text, truncated
        text = text[:best].rstrip(" -–—|:•·»›→")


_DATE_TOKEN = re.compile(r"[^\W\d_]+\.?|\d+")


def _dateish(text: str) -> bool:
    """A line that is only a date, a time, "3 hours ago" and the like (maybe "by Name")."""
    words = _DATE_TOKEN.findall(text.casefold())
    if not words:
        return False
    rest = [w for w in words if not w.isdigit() and w.rstrip(".") not in _DATE_WORDS]
    if "by" in rest:  # "Posted on March 3, 2025 by admin"
        i = rest.index("by")
        rest = rest[:i] + rest[i + 5 :] if len(rest) - i <= 5 else rest
        rest = [w for w in rest if w != "by"]
    has_date = any(w.isdigit() or w.rstrip(".") in _DATE_WORDS for w in words)
    return has_date and not rest


_DATE_LEAD = re.compile(
    r"^(?:published|updated|posted|last\s+updated|first\s+published|modified|date|dated"
    r"|опубликовано|обновлено)\b\s*:?\s*(.*)$",
    re.IGNORECASE,
)


def _is_byline_or_date(text: str) -> bool:
    if _BY.match(text) and len(text.split()) <= 14:
        return True
    if _name_list_byline(text):
        return True
    m = _DATE_LEAD.match(text)
    if m and (not m.group(1) or _dateish(m.group(1)) or len(m.group(1).split()) <= 3):
        return True
    return len(text) <= 80 and _dateish(text)  # the length first: _dateish is the costly test


def _name_list_byline(text: str) -> bool:
    """A byline of "By" and nothing but names (roles in brackets aside). A sentence that
    starts with "By" ("By now you have heard", "By Monday, Apple had agreed") has words in
    lower case."""
    m = _BY_LIST.match(text)
    if m is None:
        return False
    names = [n for n in _NAME_SEPARATORS.split(re.sub(r"\([^()]*\)", " ", m.group(1))) if n]
    return bool(names) and all(
        len(words := name.split()) <= 5
        and all(w[:1].isupper() or w in _NAME_PARTICLES for w in words)
        for name in names
    )


def _is_social(text: str) -> bool:
    """Words of share buttons alone ("Share on Facebook · Email"): at least one, and no other.
    Read word by word: the first other word, in most blocks the first word, decides."""
    words = 0
    for word in _SOCIAL_WORD.finditer(text.casefold()):
        if word.group() not in _SOCIAL_WORDS:
            return False
        words += 1
    return words > 0


def _repeats_headline(text: str, headline: str) -> bool:
    """The block is the headline again, maybe followed by a short label (a source name)."""
    if not headline:
        return False
    if len(text) > 3 * len(headline) + 200:
        return False  # far longer than a headline and a label
    folded, head = _fold(text), _fold(headline)
    if not head or not folded:
        return False
    if folded == head:
        return True
    if folded.startswith(head + " "):
        rest = folded[len(head) :]
        return len(rest.split()) <= 6 and not _ends_sentence(text)
    return False


def _within_headline(text: str, headline: str) -> bool:
    """The block's words are a run of the headline's: it says nothing the headline does not
    (a headline made from the post's opening, cut short)."""
    if len(text) > 2 * len(headline) + 20:
        return False  # longer than any run of the headline's words: not worth folding
    folded = _fold(text)
    return bool(folded) and f" {_fold(headline)} ".find(f" {folded} ") >= 0


def _without_headline(text: str, headline: str) -> str:
    """A block that starts with the headline and goes on with the story: the headline cut off.
    Not when the headline is itself cut short ("... let you know that this..."): it is the
    block's opening, and the block says it whole.

    Where a dash or colon marks the headline's end, also with a short "Author / Site:" label
    before it, a source label on the headline that the block does not repeat ("Headline (PC
    Pro)"), and punctuation inside words ("Q&A:"): Techmeme's "Site: Headline — story". Without
    such a mark, a headline that runs on into the sentence ("Ruby 1.9.1 RC2 has been
    released") is its subject and stays."""
    if not headline or len(headline) < 20 or headline.endswith(("...", "…")):
        return text
    head_words = _fold(headline).split()
    words = text.split()
    n = len(head_words)
    if len(words) > n and _fold(" ".join(words[:n])).split() == head_words:
        if _ends_sentence(words[n - 1]):
            return text  # the story's first sentence says what the headline says: keep it
        return " ".join(words[n:])
    # What follows returns only where a label's ":" or a dash marks the headline's end, within
    # the words a label and the headline can take: most blocks have neither, and are not
    # folded word by word.
    limit = _LABEL_WORDS + 2 * n + 2
    if not any(w in _AFTER_HEADLINE or w.endswith(":") for w in words[: limit + 1]):
        return text
    folded = [_fold(w).split() for w in words[:limit]]
    for wanted in _headline_wants(headline):
        for start in _label_ends(words):
            end = _words_matching(folded, start, wanted)
            if end is None or end >= len(words):
                continue
            if words[end - 1].endswith(":") or words[end] in _AFTER_HEADLINE:
                rest = words[end:]
                while rest and rest[0] in _AFTER_HEADLINE:
                    rest = rest[1:]
                if rest:
                    return " ".join(rest)
    return text


_AFTER_HEADLINE = frozenset({"—", "–", "-", "|", ":", "·"})
_LABEL_WORDS = 8  # "Laszlo Bock / The Official Google Blog:" before a headline
_SOURCE_LABEL = re.compile(r"\s*(?:\([^()]{1,60}\)|\s[-–—|]\s+[^-–—|]{1,60})$")


@functools.lru_cache(maxsize=1024)  # asked once per block of the headline's entry
def _headline_wants(headline: str) -> tuple[tuple[str, ...], ...]:
    """The headline's folded words, and without a trailing source label if it has one."""
    bare = _SOURCE_LABEL.sub("", headline)
    forms = [headline, bare] if bare != headline and len(bare) >= 20 else [headline]
    return tuple(tuple(_fold(form).split()) for form in forms)


def _label_ends(words: Sequence[str]) -> list[int]:
    """Where the headline may start in a block: at once, or after a short label ending in ":"."""
    return [0] + [i + 1 for i, w in enumerate(words[:_LABEL_WORDS]) if w.endswith(":")]


def _words_matching(folded: Sequence[list[str]], start: int, wanted: Sequence[str]) -> int | None:
    """The index just past the block words from ``start`` whose folded words are ``wanted``
    (punctuation splits a word: "Q&A:" is "q a"), or None."""
    got: list[str] = []
    for i in range(start, len(folded)):
        got.extend(folded[i])
        if len(got) >= len(wanted):
            return i + 1 if tuple(got) == tuple(wanted) else None
    return None


def _short(text: str) -> bool:
    if len(text) > 80:
        return False
    if _cjk_share(text) >= 0.5:
        return len(text) <= 12
    return len(text.split()) <= 6


# The parts of a line of furniture: "By Jane Doe | 3 hours ago", "World · Published 07:15".
_PARTS = re.compile(r"\s+[|·•]\s+|\s+[-–—]\s+(?=\S+\s*$)")
# What a split by _PARTS needs: a separator between spaces. A search for it is a quarter of
# the split's cost, which tries \s+ at every space of the block.
_PART_SEPARATOR = re.compile(r"\s[|·•\-–—]\s")


_STOP_AND_SPACE = re.compile(r"[.!?]\s")
_STOP_OR_COLON = re.compile(r"[.!?…。！？؟:;]")


def _is_furniture(text: str, headline: str, block: _Block, following: _Block | None) -> bool:
    """Is this block page furniture rather than the story's first paragraph?"""
    s = text.strip(" -–—|·•*>:/")
    if not any(c.isalnum() for c in s) or _URL_ONLY.match(s):
        return True  # "...", "* * *", a bare URL
    if block.kind == "heading":
        return True
    if (
        (_FURNITURE.match(s) or (following is not None and _LINK_LABEL.match(s)))
        and (len(s.split()) <= 8 or not _STOP_AND_SPACE.search(s))
        and not _label_goes_on(s)
    ):
        return True  # the list's open ends ("Tags: ...") never swallow a real paragraph
    # a credit is a line, not a paragraph: "Source: I'm a landscaper, and ... It makes me ..."
    m = _CREDIT.match(s)
    credit = (
        m and (len(s.split()) <= 15 or not _STOP_AND_SPACE.search(s)) and not _credit_goes_on(m)
    )
    if credit or _is_pitch(s) or _is_social(s) or _is_cookie_notice(s):
        return True
    if _is_byline_or_date(s):
        return True
    if len(s) < 300 and following is not None and _CAPTION_END.search(s):
        return True  # a photo's caption over the story (the only block: the story, credited)
    if _PART_SEPARATOR.search(s):  # (most blocks have none: not split at all)
        parts = [p.strip() for p in _PARTS.split(s) if p.strip()]
        if len(parts) > 1 and all(
            _FURNITURE.match(p) or _is_byline_or_date(p) or (_short(p) and not _ends_sentence(p))
            for p in parts
        ):
            return True  # "By Jane Doe | 3 hours ago", "World · Published 07:15"
    if _repeats_headline(s, headline):
        return True
    if not block.soft and _within_headline(s, headline):
        return True  # "Hi friends!" over "Hi friends! I am so happy to announce that my..."
    intro = text.rstrip().endswith(":") and len(s.split()) <= 15
    if intro and following is not None and not block.soft:
        return True  # "Show notes:", "Jane wrote:": it introduces what follows
    if (
        intro
        and following is not None
        and following.text != _without_headline(following.text, headline)
    ):
        return True  # "Laszlo Bock / Google Blog:<br>Headline — story": the source's label
    linky = block.link_share >= (0.5 if block.kind == "li" else 0.8)
    if linky and not _ends_sentence(s):
        return True  # a list of links: related stories, "Comments", Google News clusters
    if _short(s) and not _STOP_OR_COLON.search(s):
        # a label or button; unless it is a line broken by <br> that the next line goes on
        continuing = block.soft and following is not None and following.text[:1].islower()
        return not continuing
    return False


_CLUTTER = re.compile(r"^(?:advertisement|sponsored|share|listen|skip\ advert)\s+(?=\S)", re.I)


def _leading_clutter(text: str) -> str:
    """Inline furniture before the story in the same block ("Advertisement", "Share")."""
    m = _CLUTTER.match(text)
    if m and not text[m.end() :][:1].islower():
        return text[m.end() :]
    return text


def lead_paragraph(
    sources: Iterable[str | None], *, headline: str = "", limit: int = DEFAULT_LEAD_CHARS
) -> str:
    """The first real paragraph of the story, as plain text, from the richest source.

    ``sources`` are HTML (or plain text) values, richest first: the first one that has a
    paragraph wins. Furniture before the story (labels, bylines, datelines as lines of their
    own, captions, credits, the headline again) is skipped; trailers after it ("Continue
    reading", "The post X appeared first on Y", "[…]", share lines, newsletter pitches) are
    dropped. A wire dateline at the start of a sentence ("KYIV, Sept 7 (Reuters) -") stays.
    The text is cut at a sentence boundary near ``limit`` characters; "…" marks a cut.
    A block of "Read more" and its object ("Read more books…") is the lead only when no
    source has another.
    """
    last_resort = ""
    for source in sources:
        if not source or not source.strip():
            continue
        # The first few blocks, and all of them only when the lead was not settled by those.
        blocks, cut = _blocks(source, cap=FIRST_BLOCKS)
        lead, reach, sentence = _first_paragraph(blocks, headline, limit)
        if cut and reach >= len(blocks):
            lead, _, sentence = _first_paragraph(_blocks(source)[0], headline, limit)
        if lead:
            return lead
        last_resort = last_resort or sentence
    return cut_at_sentence(last_resort, limit)


# Words that never end a sentence: a text that stops on one was cut short by the feed (a
# summary cut at N characters: "... the challenge of teaching a", "Weird! The"). "a" only in lower
# case ("Series A", "Plan A" end sentences).
_DANGLING: tuple[str, ...] = ("the", "an", "of", "and", "or", "but", "nor", "from", "with")
_DANGLING += ("into", "than", "their", "our", "your", "my", "its", "whose", "whether")
_DANGLING += ("because", "although")
_DANGLING_WORDS = frozenset((*_DANGLING, *(w.capitalize() for w in _DANGLING), "a", "via"))
_DANGLING_PUNCT = (",", "–", "—", "、", "，")  # and signs no sentence ends with
_LAST_WORD = re.compile(r"(\w+)$")


def _cut_by_feed(text: str, truncated: bool) -> bool:
    """Did the feed cut ``text`` mid-sentence? It said so ("[…]", ``truncated``), or the text
    stops on a comma, a dash or a word no sentence ends with ("Weird! The")."""
    if _ends_sentence(text):
        return False
    if truncated or text.endswith(_DANGLING_PUNCT):
        return True
    last = _LAST_WORD.search(text) if text[-1:].isalpha() else None
    return bool(last and last.group(1) in _DANGLING_WORDS and last.start() > 0)


def _is_lone_question(text: str) -> bool:
    """One short question, nothing else: "What's new?", "Where can I learn more?"."""
    return (
        text.endswith("?") and len(text.split()) <= 8 and len(sentence_ends(text.rstrip("?"))) <= 1
    )


def _first_paragraph(blocks: Sequence[_Block], headline: str, limit: int) -> tuple[str, int, str]:
    """The lead, the index of the furthest block it read or asked for (the block after a
    candidate tells furniture from story, and a sentence broken over lines goes on), and
    the first block of "Read more" and its object, which the trailer rules took whole."""
    i = 0
    sentence = ""
    # What lies beyond is cut anyway, and its trailers are not read: stripping them one by
    # one is quadratic in a hostile block's length.
    reach = 2 * limit + 400
    while i < len(blocks):
        block = blocks[i]
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        whole = _leading_clutter(_without_headline(block.text, headline))[:reach]
        text, truncated = _strip_trailer(whole)
        if _is_furniture(text, headline, block, following):
            if (
                not text
                and not sentence
                and block.link_share < 0.5
                and _READ_MORE_OBJECT.match(whole)
                and not _is_furniture(whole, headline, block, following)
            ):
                sentence = whole
            i += 1
            continue
        # a sentence broken over lines (<br>, hard-wrapped text) is joined up again
        while blocks[i].soft and i + 1 < len(blocks) and not truncated and not _ends_sentence(text):
            nxt, more_truncated = _strip_trailer(blocks[i + 1].text[:reach])
            furniture = bool(nxt) and _is_furniture(nxt, headline, blocks[i + 1], None)
            if not nxt or (furniture and not nxt[:1].islower()):
                break
            text, truncated = f"{text} {nxt}", more_truncated
            i += 1
        # A short question on a line of its own ("What is changing?", a subheading the feed
        # set in bold) says little alone: the paragraph that answers it joins it.
        if _is_lone_question(text) and not truncated and i + 1 < len(blocks):
            after = blocks[i + 1]
            nxt, more_truncated = _strip_trailer(after.text[:reach])
            if (
                after.kind == "p"
                and len(nxt) > len(text)
                and not _is_furniture(nxt, headline, after, None)
            ):
                text, truncated = f"{text} {nxt}", more_truncated
                i += 1
        lead = cut_at_sentence(text, limit)
        if lead and _cut_by_feed(lead, truncated):  # (a lead cut_at_sentence cut has its "…")
            lead = lead.rstrip(",;:-–— ") + "…"
        return lead, i + 1, sentence
    return "", len(blocks), sentence


# -- headline ----------------------------------------------------------------------------------

_SEPARATORS = (" | ", "｜", " - ", " – ", " — ", " :: ", " · ", " • ", " // ", " « ", " » ")
_UNTITLED = frozenset({"untitled", "no title", "none", "null", "title"})


def headline(
    raw_title: str | None,
    *,
    feed_name: str = "",
    feed_title: str = "",
    source_name: str = "",
) -> str:
    """Plain-text headline; a trailing " - Site" / " | Site" dropped when it names the feed.

    The names compared are the editor's name for the feed, the feed's own title (and each
    part of it, "BBC News - World" gives "BBC News" too) and the entry's <source>.
    """
    title = plain_text(raw_title)
    if not title or (_fold(title) in _UNTITLED and any(c.isalnum() for c in title)):
        return ""  # "Untitled", "(no title)"; a title of punctuation alone ("&") still is one
    names = _site_names(feed_name, feed_title, source_name)
    for _ in range(2):  # "Story | Section | Site"
        for sep in _SEPARATORS:
            if sep not in title:
                continue
            head, _, tail = title.rpartition(sep)
            if head.strip() and _names_site(_fold(tail), names):
                title = head.strip()
                break
        else:
            break
    head, sep, rest = title.partition(" | ")  # "Site | Story"
    if sep and rest.strip() and _names_site(_fold(head), names) and " | " not in rest:
        title = rest.strip()
    if len(title) > MAX_HEADLINE_CHARS:
        title = title[:MAX_HEADLINE_CHARS].rsplit(" ", 1)[0].rstrip(",;:-–— ") + "…"
    return title


@functools.lru_cache(maxsize=256)  # the same for every entry of a feed (or of its source)
def _site_names(feed_name: str, feed_title: str, source_name: str) -> frozenset[str]:
    """The folded names a headline's trailing " - Site" may give: each name whole, each part
    of it ("BBC News - World" gives "BBC News" too), and as a host ("www.example.com")."""
    names: set[str] = set()
    for name in (feed_name, feed_title, source_name):
        folded = _fold(plain_text(name))
        if folded:
            names.add(folded)
            names.update(_fold(p) for p in re.split(r"\s[-|–—:·•]\s", plain_text(name)))
            host = re.sub(r"^(?:www|feeds?|rss|news|blog)\s", "", folded)
            names.add(re.sub(r"\s(?:com|org|net|co uk|co|io|de|fr|ru|info|news)$", "", host))
    names.discard("")
    return frozenset(names)


def _names_site(tail: str, names: frozenset[str]) -> bool:
    if not tail or len(tail) < 2:
        return False
    tail_words = tail.split()
    for name in names:
        if tail.replace(" ", "") == name.replace(" ", ""):
            return True  # "Ars Technica" and arstechnica.com
        name_words = name.split()
        # "Guardian" in "The Guardian"; "Example News" in "Example News - World"
        if _contains(name_words, tail_words):
            return True
        # "BBC" in "BBC News", but not "World" (a section) in "World Cup"
        if _contains(tail_words, name_words):
            extra = list(tail_words)
            for word in name_words:
                extra.remove(word)
            if set(extra) <= _SITE_WORDS:
                return True
    return False


_SITE_WORDS = _words(
    "the news online blog magazine daily weekly com org net co uk de fr live tv radio"
    " media times post herald digital"
)


def _contains(outer: list[str], inner: list[str]) -> bool:
    """``inner`` (3 characters or more, not a generic word) is a run of words in ``outer``."""
    n = len(inner)
    if not n or n > len(outer) or len(" ".join(inner)) < 3 or set(inner) <= _SITE_WORDS:
        return False
    return any(outer[k : k + n] == inner for k in range(len(outer) - n + 1))


def headline_from_text(text: str, limit: int = GENERATED_HEADLINE_CHARS) -> str:
    """A headline for an untitled item: its first sentence, shortened at a word boundary."""
    text = text.strip()
    if not text:
        return ""
    if text.endswith("…"):  # the lead was cut: its first sentence is still whole
        text = text.rstrip("… ").rstrip()
    ends = sentence_ends(text)
    first = text[: ends[0]].strip() if ends else text
    if len(first) <= limit:
        return first
    head = first[:limit]
    if " " in head[limit // 2 :] and _cjk_share(head) < 0.5:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(",;:-–—、， ") + "…"


def _headline_from_link(link: str | None) -> str:
    """Last resort for an item with a link but neither title nor text: its slug, if wordy."""
    if not link:
        return ""
    path = urlsplit(link).path.rstrip("/")
    slug = unquote_plus(path.rsplit("/", 1)[-1])
    slug = re.sub(r"\.(?:s?html?|php|aspx?)$", "", slug)
    words = [w for w in re.split(r"[-_+\s]+", slug) if w]
    if len(words) < 2 or not any(re.search(r"[^\W\d_]{3}", w) for w in words):
        return ""
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# -- links -------------------------------------------------------------------------------------


_ABSOLUTE = re.compile(r"https?://", re.IGNORECASE)


_LINE_BREAKS = re.compile(r"[\t\r\n]+\s*")
_JSESSIONID = re.compile(r";jsessionid=[^/?#]*", re.I)


def canonical_link(
    link: str | None,
    *,
    base: str | None = None,
    extra_tracking: Iterable[str] = (),
    keep_fragment: bool = False,
    _depth: int = 0,
) -> str | None:
    """Absolute http(s) URL, trackers removed, host lower-cased, default port and fragment gone
    (unless ``keep_fragment``: see anchored_entries); a Google redirect (google.com/url?url=)
    and a redirector with the URL in its path after "*" (redir.folha.com.br/.../*https://...)
    give the link they lead to.

    ``javascript:``, ``data:``, ``file:`` and anything else that is not http(s) gives None;
    a "user:password@" before the host is dropped. The query keeps its order and its
    encoding; only tracking parameters are taken out.
    """
    if not link:
        return None
    link = plain_text(link) if ("&" in link or "<" in link) else link
    link = _LINE_BREAKS.sub("", link).strip().replace(" ", "%20")
    if not link:
        return None
    try:
        # urljoin only rebuilds an absolute http(s) link, which the lines below do anyway.
        absolute = urljoin(base, link) if base and not _ABSOLUTE.match(link) else link
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
    target = _redirect_target(host, parts)
    if target is not None and _depth < 3:  # the article, not the redirector's hop
        unwrapped = canonical_link(
            target, extra_tracking=extra_tracking, keep_fragment=keep_fragment, _depth=_depth + 1
        )
        if unwrapped is not None:
            return unwrapped
    extra = {p.strip().lower() for p in extra_tracking if p.strip()}
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair
        and not _is_tracking(unquote_plus(pair.split("=", 1)[0]).lower(), extra)
        and not _RSS_SOURCE.match(pair)
    )
    path = _JSESSIONID.sub("", parts.path) or "/"
    # "#!/story/1" routes; other fragments are places on a page ("#comments").
    fragment = parts.fragment if keep_fragment or parts.fragment.startswith("!") else ""
    # No "user:password@": a feed has no credentials to give readers, and
    # "https://www.bbc.co.uk@evil.example/" shows the wrong site in the plain-text part.
    return urlunsplit((scheme, host, path, query, fragment))


# "source=rss----d12c403d4976---4" (Medium): says only that the click came from the feed.
_RSS_SOURCE = re.compile(r"source=rss(?:[-_]|$)", re.IGNORECASE)
_GOOGLE_HOST = re.compile(r"^(?:www\.)?google\.[a-z]{2,3}(?:\.[a-z]{2})?$")


# "https://redir.folha.com.br/redir/online/poder/rss091/*https://www1.folha.uol.com.br/...":
# a redirector that counts the click, then sends the reader to the URL after the "*".
_STAR_REDIRECT = re.compile(r"\*(https?://[^/?#*\s]+.*)$", re.IGNORECASE | re.DOTALL)


def _redirect_target(host: str, parts: SplitResult) -> str | None:
    """Where a redirector's link leads: an absolute http(s) URL in its path after "*" (with
    the query and fragment, which are the target's), or a Google redirect's url= (or q=)
    parameter (what Google Alerts feeds link to) when that is one."""
    star = _STAR_REDIRECT.search(parts.path)
    if star is not None:
        query = f"?{parts.query}" if parts.query else ""
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return star.group(1) + query + fragment
    if parts.path != "/url" or not _GOOGLE_HOST.match(host):
        return None
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if key in ("url", "q"):
            target = unquote_plus(value)
            if _ABSOLUTE.match(target):
                return target
    return None


def _is_tracking(key: str, extra: set[str]) -> bool:
    if key in TRACKING_PARAMS or key in extra or key.startswith(TRACKING_PREFIXES):
        return True
    return any(p.endswith("*") and key.startswith(p[:-1]) for p in extra)


def safe_http_url(url: str | None) -> str | None:
    """The URL if it is absolute http(s), else None (javascript:, data:, file: ... refused)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


# -- images ------------------------------------------------------------------------------------

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(
    r"""\b(src|width|height|data-src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I
)
_PIXEL = re.compile(
    r"feedburner\.com/~|/~r/|/~ff/|stats\.wordpress\.com|pixel|/b\.gif|spacer\.gif|1x1|"
    r"gravatar\.com|/avatar|feedsportal|doubleclick|/track(?:ing)?/|emoji|/smilies/",
    re.IGNORECASE,
)


def first_image(fragments: Iterable[str | None]) -> str | None:
    """The src of the first <img> in the HTML that is a picture, not a tracking pixel,
    an avatar or an emoji."""
    for fragment in fragments:
        if not fragment:
            continue
        if "<img" not in fragment.lower() and "&lt;img" in fragment.lower():
            fragment = html.unescape(fragment)
        for tag in _IMG.findall(fragment):
            attrs = {
                m.group(1).lower(): m.group(2) or m.group(3) or m.group(4)
                for m in _ATTR.finditer(tag)
            }
            src = html.unescape(attrs.get("src") or attrs.get("data-src") or "").strip()
            if not src or src.startswith("data:") or _PIXEL.search(src):
                continue
            if any(attrs.get(d, "").strip() in ("0", "1", "2") for d in ("width", "height")):
                continue
            return src
    return None


# -- identity and the whole item ---------------------------------------------------------------


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


_EMAIL_AND_NAME = re.compile(r"\S+@\S+\s+\((.+)\)")


def _author(raw: str | None) -> str | None:
    text = plain_text(raw)
    if not text or _fold(text) in ("unknown", "admin", "administrator", "noreply"):
        return None
    m = _EMAIL_AND_NAME.fullmatch(text)  # "jane@example.org (Jane Doe)"
    return m.group(1).strip() if m else text


def extract_item(
    entry: RawEntry,
    *,
    feed_url: str,
    feed_name: str = "",
    feed_title: str = "",
    now: datetime,
    lead_chars: int = DEFAULT_LEAD_CHARS,
    extra_tracking: Iterable[str] = (),
    anchored: bool = False,
) -> Item | None:
    """One entry made into an Item, or None when it has neither title nor text nor link.

    ``feed_url`` is the base for relative links (parse has already resolved entry links
    against xml:base); ``extra_tracking`` are query parameters the editor added to
    TRACKING_PARAMS (a trailing "*" matches a prefix); ``anchored``: the entry is one of
    several posts on one page (anchored_entries), so its link keeps its #fragment.
    """
    link = _entry_link(entry, feed_url, tuple(extra_tracking), anchored)
    source = plain_text(entry.source_title) or None
    title = headline(
        entry.title, feed_name=feed_name, feed_title=feed_title, source_name=source or ""
    )
    sources = [*entry.content_html, entry.summary_html]
    lead = lead_paragraph(sources, headline=title, limit=lead_chars)
    generated = False
    if not title:
        text = next((t for t in (plain_text(x) for x in sources) if t), "")
        title = headline_from_text(lead) or _headline_from_link(link) or headline_from_text(text)
        generated = bool(title)
    if not title and not link:
        return None
    repeats = _fold(lead) in _fold(title) or (_repeats_headline(lead, title) and not generated)
    if lead and repeats:
        lead = ""  # a summary that only repeats (part of) the headline is no lead
    published = entry.published or entry.updated or entry.dc_date
    if published is not None and published > now:
        published = now
    guid = _guid(entry)
    key = guid or link or "hash:" + _sha(title, lead)
    image_base = link or feed_url
    image = entry.image_url or first_image(sources)
    author = _author(entry.author)
    return Item(
        key=key,
        guid=guid,
        link=link,
        title=title or "(untitled)",
        title_generated=generated or not title,
        lead=lead,
        author=author,
        image_url=safe_http_url(_join(image_base, image)),
        categories=tuple(
            dict.fromkeys(
                c
                for c in (plain_text(x) for x in entry.categories)
                if c and _fold(c) not in ("uncategorized", "uncategorised")
            )
        ),
        published_at=published,
        content_hash=_sha(title, lead, link or "", author or ""),
        source=source,
    )


def _entry_link(
    entry: RawEntry, feed_url: str, extra: tuple[str, ...], anchored: bool
) -> str | None:
    link = canonical_link(
        entry.orig_link, base=feed_url, extra_tracking=extra, keep_fragment=anchored
    )
    return link or canonical_link(
        entry.link, base=feed_url, extra_tracking=extra, keep_fragment=anchored
    )


def _guid(entry: RawEntry) -> str | None:
    return entry.guid.strip() if entry.guid and entry.guid.strip() else None


def _join(base: str, url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urljoin(base, url.strip())
    except ValueError:
        return None


def anchored_entries(entries: Sequence[RawEntry], inputs: ExtractInputs) -> set[int]:
    """Indexes of the entries that are posts on one shared page: a feed whose entries link one
    page (canonical_link) at different #anchors, like a linkblog's day page. Their links keep
    the fragment, so the posts stay separate stories, each linking to its own place; a lone
    "#comments", or two entries at the same anchor, are still the page."""
    links = [entry.orig_link or entry.link or "" for entry in entries]
    if not any("#" in link for link in links):
        return set()  # most feeds: nothing to group
    pages: dict[str, dict[str, list[int]]] = {}
    for i, link in enumerate(links):
        page = canonical_link(link, base=inputs.feed_url, extra_tracking=inputs.extra_tracking)
        if page is not None:
            fragment = link.partition("#")[2].strip()
            pages.setdefault(page, {}).setdefault(fragment, []).append(i)
    return {
        i
        for fragments in pages.values()
        if len(fragments) > 1
        for fragment, indexes in fragments.items()
        if fragment
        for i in indexes
    }


def _code_version() -> str:
    """Changes with this module's source, so new extraction rules re-extract stored entries."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    except OSError:  # no source next to the module: re-extract once per process start
        return str(id(_code_version))


_CODE_VERSION = _code_version()


@dataclass(frozen=True, slots=True)
class ExtractInputs:
    """What extract_item reads besides the entry (and ``now``, which only clamps a future
    date): one feed's values, so its entries' fingerprints cover exactly these."""

    feed_url: str
    feed_name: str = ""
    feed_title: str = ""
    lead_chars: int = DEFAULT_LEAD_CHARS
    extra_tracking: tuple[str, ...] = ()

    def extract(self, entry: RawEntry, *, now: datetime, anchored: bool = False) -> Item | None:
        return extract_item(
            entry,
            feed_url=self.feed_url,
            feed_name=self.feed_name,
            feed_title=self.feed_title,
            now=now,
            lead_chars=self.lead_chars,
            extra_tracking=self.extra_tracking,
            anchored=anchored,
        )


def entry_fingerprints(
    entries: Sequence[RawEntry], inputs: ExtractInputs, *, anchored: Iterable[int] = ()
) -> list[str]:
    """Per entry, a digest of everything its extraction depends on: the entry as parsed
    (every field), ``inputs``, whether it is anchored, and this module's code. Two equal
    fingerprints mean ``inputs.extract`` would make the same Item."""
    salt = f"{_CODE_VERSION}|{inputs!r}"
    marked = set(anchored)
    return [
        hashlib.blake2b(
            f"{salt}|{i in marked}|{_entry_text(entry)}".encode("utf-8", "surrogatepass"),
            digest_size=16,
        ).hexdigest()
        for i, entry in enumerate(entries)
    ]


_ENTRY_FIELDS = operator.attrgetter(*(f.name for f in fields(RawEntry)))


def _entry_text(entry: RawEntry) -> str:
    """Every field of ``entry`` in one text that no other entry gives: each string after its
    length, each tuple after its length, None as "n", anything else (a date) as its repr,
    after its length. (The entry's repr, which did this before, escapes every character of
    its content: it was two thirds of a fingerprint's time.)"""
    out: list[str] = []
    for value in _ENTRY_FIELDS(entry):
        if isinstance(value, tuple):
            out.append(f"t{len(value)}:")
            out.extend(map(_value_text, value))
        else:
            out.append(_value_text(value))
    return "".join(out)


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return f"s{len(value)}:{value}"
    if value is None:
        return "n"
    text = repr(value)
    return f"r{len(text)}:{text}"


def unchanged_entries(
    entries: Sequence[RawEntry],
    fingerprints: Sequence[str],
    known: Container[str],
    inputs: ExtractInputs,
    *,
    anchored: Container[int] = (),
) -> set[int]:
    """Indexes of the entries whose fingerprint a stored item of the feed has: a re-poll of a
    changed feed extracts only its new and edited entries. None when an entry has neither
    GUID nor link, or two entries share a key (extract_item's GUID, else link): their keys
    are settled among all the entries (a hash, a suffix), so all of them are extracted.
    Entries under one link are skipped all together or not at all: one_item_per_link
    chooses among them, and a copy extracted alone would be stored over the one chosen."""
    if not known:
        return set()
    links = [
        _entry_link(entry, inputs.feed_url, inputs.extra_tracking, i in anchored)
        for i, entry in enumerate(entries)
    ]
    keys = [_guid(entry) or link for entry, link in zip(entries, links, strict=True)]
    if not all(keys) or len(set(keys)) != len(keys):
        return set()
    unchanged = {i for i, fingerprint in enumerate(fingerprints) if fingerprint in known}
    under: dict[str, list[int]] = {}
    for i, link in enumerate(links):
        if link is not None:
            under.setdefault(link, []).append(i)
    for indexes in under.values():
        if len(indexes) > 1 and not unchanged.issuperset(indexes):
            unchanged.difference_update(indexes)
    return unchanged


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


def one_item_per_link(found: Sequence[Item]) -> list[Item]:
    """Copies of one entry within one fetch made one item, in feed order, under the first
    copy's key.

    A copy has the link of an earlier entry and its headline (folded), or neither has a GUID
    (the link is all that names them): a feed listing one article twice. Entries under one
    link with headlines of their own are distinct items when a GUID tells them apart: a status
    page or a podcast links every entry to one page, and merging them loses entries. So are
    two under one GUID with two headlines (disambiguate_keys has keyed them apart): a podcast
    feed that pasted one episode's enclosure URL into another's GUID.

    Of the copies the later is kept (a feed lists its edits last), unless only the earlier
    has a lead: a title-only repeat must not take the text away. Deciding here, before the
    store, also keeps re-polls of such a feed from counting the item as updated each time
    (first copy, then the other).
    """
    out: list[Item] = []
    under: dict[str, _SameLink] = {}
    for item in found:
        if item.link is None:
            out.append(item)
            continue
        link = under.setdefault(item.link, _SameLink())
        title = _fold(item.title)
        at = link.by_title.get(title)
        if at is None and item.guid is None:
            at = link.guidless
        if at is None:
            at = len(out)
            out.append(item)
        else:
            kept = out[at]
            if item.lead or not kept.lead:
                out[at] = replace(item, key=kept.key)
        link.by_title.setdefault(title, at)
        if item.guid is None and link.guidless is None:
            link.guidless = at
    return out


@dataclass(slots=True)
class _SameLink:
    """The items one_item_per_link has kept under one link so far: where each sits in its
    output, by folded headline (indexes, so a feed of thousands of entries under one link is
    not compared pair by pair)."""

    guidless: int | None = None  # the item whose copies include the first entry without GUID
    by_title: dict[str, int] = field(default_factory=dict)
