"""Signed unsubscribe tokens: one per (digest, subscriber), short enough for one header line.

    token = base64url(version 1 byte | id 7 bytes | mac 16 bytes)      -- 32 characters

``id`` is SHA-256 of the digest and the lower-cased address, cut to 7 bytes: not secret, it
only lets the server find the (digest, address) among its subscribers without a table of
issued tokens. ``mac`` is HMAC-SHA256 under the signing key of the same pair, cut to 16 bytes
(128 bits: forging one is out of reach). A token never expires by time (an unsubscribe link in
an old message must still work); it stops working when the key changes (keep the previous key
in AGGREGATOR_SECRET_PREVIOUS while old messages are about) or the subscriber is removed.

Signing and checking are pure. ``signing_keys`` is the one place that reads the key: the
environment variable AGGREGATOR_SECRET, else a random key generated once into
``data_dir/unsubscribe.key`` with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import SigningKeyError, TokenError

SECRET_ENV = "AGGREGATOR_SECRET"  # the signing key (at least MIN_SECRET characters)
PREVIOUS_ENV = "AGGREGATOR_SECRET_PREVIOUS"  # a retired key still accepted (rotation)
KEY_FILE = "unsubscribe.key"  # in data_dir, when SECRET_ENV is not set
MIN_SECRET = 32

VERSION = 1
ID_BYTES = 7
MAC_BYTES = 16
TOKEN_BYTES = 1 + ID_BYTES + MAC_BYTES
TOKEN_CHARS = 32  # base64url of TOKEN_BYTES, no padding


def _pair(digest: str, email: str) -> bytes:
    return f"{digest}\n{email.strip().lower()}".encode()


def token_id(digest: str, email: str) -> bytes:
    """The public part of a token: finds the (digest, address) it was made for."""
    return hashlib.sha256(b"aggregator-unsubscribe-id\0" + _pair(digest, email)).digest()[:ID_BYTES]


def _mac(key: bytes, digest: str, email: str) -> bytes:
    msg = b"aggregator-unsubscribe\0" + _pair(digest, email)
    return hmac.new(key, msg, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(key: bytes, digest: str, email: str) -> str:
    raw = bytes([VERSION]) + token_id(digest, email) + _mac(key, digest, email)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def parse_token(token: str) -> bytes:
    """The token's id; raises TokenError when it is not a well-formed token."""
    if len(token) != TOKEN_CHARS:
        raise TokenError(f"a token has {TOKEN_CHARS} characters, this one {len(token)}")
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise TokenError("not a token: wrong characters") from exc
    if base64.urlsafe_b64encode(raw).decode("ascii") != token:  # one spelling per token
        raise TokenError("not a token: wrong characters")
    if raw[0] != VERSION:
        raise TokenError(f"unknown token version {raw[0]}")
    return raw[1 : 1 + ID_BYTES]


def verify_token(keys: Sequence[bytes], token: str, digest: str, email: str) -> bool:
    """Whether ``token`` is the one made for (digest, email) under one of ``keys``.
    Raises TokenError for a malformed token."""
    ident = parse_token(token)
    if not hmac.compare_digest(ident, token_id(digest, email)):
        return False
    mac = base64.urlsafe_b64decode(token.encode("ascii"))[1 + ID_BYTES :]
    return any(hmac.compare_digest(mac, _mac(k, digest, email)) for k in keys)


def signing_keys(data_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """(current key, previous key if any). From SECRET_ENV, else the key file in ``data_dir``,
    created (0600, random 32 bytes) the first time. A key file others can read is refused."""
    env = os.environ if environ is None else environ
    previous = env.get(PREVIOUS_ENV, "").encode()
    secret = env.get(SECRET_ENV)
    if secret is not None:
        if len(secret) < MIN_SECRET:
            raise SigningKeyError(f"{SECRET_ENV} must be at least {MIN_SECRET} characters")
        return (secret.encode(),) + ((previous,) if previous else ())
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"{path} must be readable by its owner only (chmod 600 {path})")
    key = path.read_text(encoding="ascii").strip().encode()
    if len(key) < MIN_SECRET:
        raise SigningKeyError(f"{path} holds too short a key; delete it to have a new one made")
    return (key,) + ((previous,) if previous else ())
