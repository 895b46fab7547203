"""Text folding shared by the stages that compare words: extract (headlines, site names),
dedupe (story features), categorize (keywords) and store (is an entry with a new GUID the
stored one under its link?)."""

from __future__ import annotations

import re
import unicodedata


def fold_accents(text: str) -> str:
    """Case folded, compatibility forms decomposed, accents dropped: "CAFÉ ﬁ" -> "cafe fi"."""
    if text.isascii():  # nothing to decompose and no combining marks
        return text.casefold()
    return unicodedata.normalize("NFKD", text.casefold()).translate(_UNCOMBINED)


_NON_WORD = re.compile(r"[\W_]+")
# For ASCII text, what fold_words does in one bytes.translate: letters lower-cased, every other
# character that is not a letter or digit (re's [\W_]) a space. A third of the time of
# casefold and the regex, on every headline and lead that extract and dedupe compare.
_ASCII_FOLD = bytes(ord(c.lower()) if c.isalnum() else ord(" ") for c in map(chr, range(128)))
_ASCII_FOLD += bytes(128)  # (bytes.translate wants 256; ASCII text never reaches these)


def fold_words(text: str) -> str:
    """fold_accents, and punctuation to single spaces: "Dam opens!" and "DAM OPENS" agree."""
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_FOLD).split()).decode("ascii")
    return _NON_WORD.sub(" ", fold_accents(text)).strip()


class _Uncombined(dict[int, int | None]):
    """str.translate's table for fold_accents: combining characters (the accents NFKD splits
    off) to nothing, anything else to itself. Each character is looked up in unicodedata once,
    when first met, so translate stays in C: a test per character in Python cost a third of
    dedupe's features() on accented text."""

    LIMIT = 1 << 16  # characters remembered: a feed of every code point cannot fill memory

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        if len(self) < self.LIMIT:
            self[code] = value
        return value


_UNCOMBINED = _Uncombined()
