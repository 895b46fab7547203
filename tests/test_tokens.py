"""Unsubscribe tokens: short, one per (digest, address), refused when touched."""

from __future__ import annotations

import os
import stat

import pytest

from aggregator import tokens
from aggregator.errors import SigningKeyError, TokenError

KEY = b"k" * 32
OTHER = b"o" * 32


def test_token_is_short_url_safe_and_verifies():
    t = tokens.make_token(KEY, "daily", "Reader@Example.org")
    assert len(t) == tokens.TOKEN_CHARS == 32
    assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tokens.verify_token([KEY], t, "daily", "reader@example.org")  # address case ignored
    assert t == tokens.make_token(KEY, "daily", "reader@example.org")  # deterministic


def test_token_is_bound_to_its_digest_address_and_key():
    t = tokens.make_token(KEY, "daily", "a@example.org")
    assert not tokens.verify_token([KEY], t, "daily", "b@example.org")
    assert not tokens.verify_token([KEY], t, "weekly", "a@example.org")
    assert not tokens.verify_token([OTHER], t, "daily", "a@example.org")
    assert tokens.verify_token([OTHER, KEY], t, "daily", "a@example.org")  # previous key


def test_tampered_token_does_not_verify():
    t = tokens.make_token(KEY, "daily", "a@example.org")
    for i in range(len(t)):
        c = "A" if t[i] != "A" else "B"
        forged = t[:i] + c + t[i + 1 :]
        try:
            ok = tokens.verify_token([KEY], forged, "daily", "a@example.org")
        except TokenError:
            ok = False
        assert not ok, i


@pytest.mark.parametrize("bad", ["", "abc", "x" * 31, "x" * 33, "é" * 32, "=" * 32, "+/" * 16])
def test_malformed_tokens_are_errors(bad):
    with pytest.raises(TokenError):
        tokens.parse_token(bad)


def test_key_from_environment_must_be_long_enough(tmp_path):
    assert tokens.signing_keys(tmp_path, {"AGGREGATOR_SECRET": "s" * 32}) == (b"s" * 32,)
    with pytest.raises(SigningKeyError):
        tokens.signing_keys(tmp_path, {"AGGREGATOR_SECRET": "short"})
    assert not (tmp_path / tokens.KEY_FILE).exists()


def test_key_file_is_made_once_owner_only(tmp_path):
    first = tokens.signing_keys(tmp_path / "data", {})
    path = tmp_path / "data" / tokens.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.signing_keys(tmp_path / "data", {}) == first
    assert len(first[0]) >= tokens.MIN_SECRET
    os.chmod(path, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        tokens.signing_keys(tmp_path / "data", {})
