"""Accent folding, shared by extract, dedupe and categorize."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata

from aggregator import text


def _by_definition(value: str) -> str:
    """fold_accents as specified (and as it was first written): case folded, NFKD, every
    combining character dropped. Stored band keys were made with it."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def test_fold_accents_matches_its_definition_for_every_code_point(monkeypatch):
    monkeypatch.setattr(text, "_UNCOMBINED", text._Uncombined())
    points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        value = "é" + "".join(map(chr, points[start : start + 4096]))  # é: not the ASCII path
        assert text.fold_accents(value) == _by_definition(value)
    assert text.fold_accents("CAFÉ Ǆ ﬁ") == "cafe dz fi"
    assert text.fold_accents("Plain ASCII") == "plain ascii"


def test_the_fold_table_remembers_a_bounded_number_of_characters(monkeypatch):
    table = text._Uncombined()
    monkeypatch.setattr(table, "LIMIT", 100)
    monkeypatch.setattr(text, "_UNCOMBINED", table)
    value = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 500)) + "é"
    assert text.fold_accents(value) == _by_definition(value)
    assert len(table) == 100


def test_fold_words_of_ascii_text_matches_its_definition_for_every_pair_of_characters():
    ascii_chars = list(map(chr, range(128)))
    for pair in itertools.product(ascii_chars, repeat=2):
        value = "A" + "".join(pair) + " z_Z"
        assert text.fold_words(value) == re.sub(r"[\W_]+", " ", _by_definition(value)).strip()
    assert text.fold_words("Dam opens! DAM_OPENS\t(2025)") == "dam opens dam opens 2025"
