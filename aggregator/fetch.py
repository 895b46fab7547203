"""Fetch: bytes of feeds over HTTP (or from disk), politely, into FetchResult records.

    fetch_many(sources)                          one shared aiohttp session (HTTP/1.1, pooled)
      for every source, concurrently:            per-host semaphore, then the global one
        fetch_one(session, source)               under one overall deadline (asyncio.timeout)
          file:   read from disk (size cap, body-hash skip)
          http(s): conditional GET; follow up to MAX_REDIRECTS redirects by hand,
                   noting an unbroken run of permanent ones (301/308); with
                   block_private_addresses, every hop's addresses are checked first
            304           -> NOT_MODIFIED (validators kept)
            2xx           -> stream + decode the body under the size cap; sha256;
                             same hash as last time -> NOT_MODIFIED, else UPDATED with the body
            410           -> GONE
            429, 503      -> RATE_LIMITED (+ Retry-After as an absolute time)
            anything else -> ERROR with a short reason
        on_result(result)                        as soon as that feed is done, still
                                                 holding its global slot (back-pressure)
      -> every source's FetchResult, in input order

This module owns HTTP and never parses. Per-feed problems (network, status, size, timeouts)
never raise: each source gets exactly one FetchResult. Anything else is a bug and propagates.

Bodies are decoded here, not by the HTTP library, so that a compressed body is never inflated
past the cap: every decompression step is bounded by what is left of `FeedSource.max_bytes`,
and a gzip bomb costs one cap's worth of memory at most.

Why aiohttp: a poll of thousands of unchanged feeds is thousands of 304s, and there the
client's cost per request is the whole cost. aiohttp's C HTTP parser answers a 304 in about a
tenth of the time httpx (pure-Python h11) takes, which is what lets `fetch` re-poll 2000
unchanged feeds in well under a second. Its resolver hook also lets the private-address
guard check the very addresses that are then connected to (no second lookup to race).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import inspect
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import aiohttp
import brotli
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from .clock import Clock
from .errors import BodyTooLargeError, FetchError
from .records import FeedSource, FetchResult, PollOutcome

DEFAULT_USER_AGENT = "aggregator/0.1 (+https://github.com/aggregator; feed digest builder)"
DEFAULT_CONCURRENCY = 16  # requests in flight overall
DEFAULT_PER_HOST = 2  # requests in flight to one host name
DEFAULT_TIMEOUT = 30.0  # seconds for one whole fetch, redirects and body included
MAX_CONNECT_TIMEOUT = 10.0  # seconds to establish a connection (capped by the timeout)
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = timedelta(days=365)  # a larger Retry-After is taken as this

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_ENCODING = "gzip, deflate, br"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_RATE_LIMITED = frozenset({429, 503})

OnResult = Callable[[FetchResult], Awaitable[None] | None]


class PrivateAddressError(OSError):
    """A host resolved to an address the settings forbid (block_private_addresses)."""


# -- public API ------------------------------------------------------------------------------


def create_client(
    *,
    user_agent: str = DEFAULT_USER_AGENT,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    block_private_addresses: bool = False,
) -> aiohttp.ClientSession:
    """The one session a poll shares: HTTP/1.1, pooled, no automatic redirects, decoding,
    cookies or env proxies. Call inside a running event loop; close it (``async with``).

    aiohttp's read timeout is per read, so fetch_one also puts an overall deadline around each
    fetch. With `block_private_addresses`, host names are resolved (the event loop's
    getaddrinfo) through a resolver that refuses private, loopback, link-local and reserved
    addresses; IP-literal hosts are checked by fetch_one before each request.
    """
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=0,  # fetch_many keeps its own per-host slots
        ttl_dns_cache=300,
        keepalive_timeout=5.0,
        resolver=_GuardedResolver(block_private_addresses),
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, MAX_CONNECT_TIMEOUT), sock_read=timeout
        ),
        headers={
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
    )


async def fetch_many(
    sources: Sequence[FeedSource],
    *,
    clock: Clock,
    user_agent: str = DEFAULT_USER_AGENT,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int = DEFAULT_PER_HOST,
    timeout: float = DEFAULT_TIMEOUT,
    block_private_addresses: bool = False,
    on_result: OnResult | None = None,
) -> list[FetchResult]:
    """Fetch every source, at most `concurrency` at a time and `per_host` per host name.

    `on_result` (sync or async) is called with each result as soon as it is ready, in
    completion order; the returned list is in input order, one result per source. An
    exception from `on_result` is a bug: it cancels the remaining fetches and propagates.
    A source keeps its global slot until `on_result` has returned, so when results are
    handled more slowly than they are fetched (parsing), at most `concurrency` bodies wait;
    with `on_result`, the returned results carry no body (the callback had it).
    """
    if concurrency < 1 or per_host < 1:
        raise ValueError("concurrency and per_host must be at least 1")
    results: list[FetchResult | None] = [None] * len(sources)
    if not sources:
        return []
    slots = asyncio.Semaphore(concurrency)
    host_slots: dict[str, asyncio.Semaphore] = {}

    async with create_client(
        user_agent=user_agent,
        concurrency=concurrency,
        timeout=timeout,
        block_private_addresses=block_private_addresses,
    ) as client:

        async def run(index: int, source: FeedSource) -> None:
            host = _host_key(source.url)
            host_slot = host_slots.get(host)
            if host_slot is None:
                host_slot = host_slots[host] = asyncio.Semaphore(per_host)
            # The host's slot first: a task waiting for a busy host holds no global slot.
            async with host_slot:
                await slots.acquire()
                try:
                    result = await fetch_one(
                        client,
                        source,
                        clock=clock,
                        timeout=timeout,
                        block_private_addresses=block_private_addresses,
                    )
                except BaseException:
                    slots.release()
                    raise
            try:
                results[index] = result
                if on_result is not None:
                    pending = on_result(result)
                    if inspect.isawaitable(pending):
                        await pending
                    # The callback had the body; the list keeps none, so a poll of thousands
                    # of feeds never holds more than `concurrency` bodies at once.
                    if result.body is not None:
                        results[index] = dataclasses.replace(result, body=None)
            finally:
                slots.release()

        try:
            async with asyncio.TaskGroup() as group:
                for index, source in enumerate(sources):
                    group.create_task(run(index, source))
        except BaseExceptionGroup as failed:  # a bug (in on_result): raise it as itself
            raise failed.exceptions[0] from None

    return [r for r in results if r is not None]


def fetch_all(
    sources: Sequence[FeedSource],
    *,
    clock: Clock,
    user_agent: str = DEFAULT_USER_AGENT,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int = DEFAULT_PER_HOST,
    timeout: float = DEFAULT_TIMEOUT,
    block_private_addresses: bool = False,
    on_result: OnResult | None = None,
) -> list[FetchResult]:
    """fetch_many for callers without an event loop (runs one with asyncio.run)."""
    return asyncio.run(
        fetch_many(
            sources,
            clock=clock,
            user_agent=user_agent,
            concurrency=concurrency,
            per_host=per_host,
            timeout=timeout,
            block_private_addresses=block_private_addresses,
            on_result=on_result,
        )
    )


async def fetch_one(
    client: aiohttp.ClientSession,
    source: FeedSource,
    *,
    clock: Clock,
    timeout: float = DEFAULT_TIMEOUT,
    block_private_addresses: bool = False,
) -> FetchResult:
    """Fetch one source with `client` (see create_client) under an overall deadline.

    Never raises for a per-feed problem: those come back as a result with outcome ERROR.
    `permanent_redirect` is reported only when the new address answered with a feed
    (UPDATED or NOT_MODIFIED), so a feed is never moved to a URL that does not work.
    """
    started = time.perf_counter()
    trail = _Trail(final_url=source.url)
    try:
        async with asyncio.timeout(timeout):
            result = await _fetch(client, source, clock, trail, block_private_addresses)
    except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors too
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            connect = client.timeout.sock_connect
            reason = f"connection timed out after {connect or timeout:g} s"
        else:
            reason = f"timed out after {timeout:g} s"
        result = _error(source, trail, reason)
    except FetchError as exc:
        result = _error(source, trail, str(exc), status=exc.status)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        result = _error(source, trail, _describe(exc))
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    return dataclasses.replace(result, elapsed_ms=elapsed_ms)


# -- one fetch -------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Trail:
    """Where a fetch has got to, so an error result can still say so."""

    final_url: str


def _error(
    source: FeedSource, trail: _Trail, reason: str, *, status: int | None = None
) -> FetchResult:
    return FetchResult(
        url=source.url,
        final_url=trail.final_url,
        outcome=PollOutcome.ERROR,
        status=status,
        error=reason,
    )


async def _fetch(
    client: aiohttp.ClientSession,
    source: FeedSource,
    clock: Clock,
    trail: _Trail,
    block_private_addresses: bool,
) -> FetchResult:
    scheme = _scheme(source.url)
    if scheme == "file":
        if block_private_addresses:
            # Untrusted editors must not make the daemon read local files either.
            raise FetchError(
                "refused: file: URLs are local (settings.block_private_addresses)", url=source.url
            )
        return await _read_file(source)
    if scheme not in ("http", "https"):
        raise FetchError(
            f"unsupported scheme {scheme + ':' if scheme else '(none)'}", url=source.url
        )

    headers = {}
    if source.etag is not None:
        headers["If-None-Match"] = source.etag
    if source.last_modified is not None:
        headers["If-Modified-Since"] = source.last_modified

    url = source.url
    seen = {url}
    permanent: str | None = None  # target of the last hop of an unbroken run of 301/308
    all_permanent = True
    for _ in range(MAX_REDIRECTS + 1):
        trail.final_url = url
        if block_private_addresses:
            _check_literal_host(url)
        async with client.get(url, headers=headers, allow_redirects=False) as response:
            status = response.status
            if status not in _REDIRECTS:
                return await _answer(response, source, url, permanent, clock)
            location = response.headers.get("location", "").strip()
            if not location:
                raise FetchError(
                    f"{_status_text(status)} without a Location", url=url, status=status
                )
        try:
            target = urljoin(url, location)
        except ValueError:
            raise FetchError(f"invalid redirect Location: {location}", url=url) from None
        if _scheme(target) not in ("http", "https"):
            raise FetchError(f"redirect to an unsupported URL: {target}", url=url, status=status)
        if target in seen:
            raise FetchError(f"redirect loop at {target}", url=url, status=status)
        if status in _PERMANENT_REDIRECTS and all_permanent:
            permanent = target
        else:
            all_permanent = False  # hops after a temporary one move nothing for good
        seen.add(target)
        url = target
    raise FetchError(f"more than {MAX_REDIRECTS} redirects", url=source.url)


async def _answer(
    response: aiohttp.ClientResponse,
    source: FeedSource,
    url: str,
    permanent: str | None,
    clock: Clock,
) -> FetchResult:
    """The result for a non-redirect response (body still unread)."""
    status = response.status
    headers = _headers(response)
    etag = headers.get("etag")
    last_modified = headers.get("last-modified")
    base = FetchResult(
        url=source.url,
        final_url=url,
        outcome=PollOutcome.NOT_MODIFIED,
        status=status,
        headers=headers,
        etag=etag or source.etag,
        last_modified=last_modified or source.last_modified,
        body_hash=source.body_hash,
        permanent_redirect=permanent,
        max_age_seconds=_max_age(headers, clock),
    )
    if status == 304:
        return base
    if 200 <= status < 300:
        body = await _read_body(response, source.max_bytes, url)
        body_hash = hashlib.sha256(body).hexdigest()
        if body_hash == source.body_hash:
            return dataclasses.replace(base, etag=etag, last_modified=last_modified)
        return dataclasses.replace(
            base,
            outcome=PollOutcome.UPDATED,
            body=body,
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
        )
    if status == 410:
        return FetchResult(
            url=source.url,
            final_url=url,
            outcome=PollOutcome.GONE,
            status=status,
            headers=headers,
            error=_status_text(status),
        )
    if status in _RATE_LIMITED:
        return FetchResult(
            url=source.url,
            final_url=url,
            outcome=PollOutcome.RATE_LIMITED,
            status=status,
            headers=headers,
            retry_after=_retry_after(headers.get("retry-after"), clock.now()),
            max_age_seconds=base.max_age_seconds,
            error=_status_text(status),
        )
    raise FetchError(_status_text(status), url=url, status=status)


async def _read_file(source: FeedSource) -> FetchResult:
    parts = urlsplit(source.url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"file: URL on another host: {parts.netloc}", url=source.url)
    path = url2pathname(parts.path)
    limit = source.max_bytes

    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read(limit + 1)

    try:
        body = await asyncio.to_thread(read)
    except FileNotFoundError:
        raise FetchError(f"file not found: {path}", url=source.url) from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}", url=source.url) from exc
    if len(body) > limit:
        raise BodyTooLargeError(_too_large(limit), url=source.url)
    body_hash = hashlib.sha256(body).hexdigest()
    if body_hash == source.body_hash:
        return FetchResult(
            url=source.url,
            final_url=source.url,
            outcome=PollOutcome.NOT_MODIFIED,
            body_hash=body_hash,
        )
    return FetchResult(
        url=source.url,
        final_url=source.url,
        outcome=PollOutcome.UPDATED,
        body=body,
        body_hash=body_hash,
    )


# -- bodies ----------------------------------------------------------------------------------


def _too_large(limit: int) -> str:
    """What an editor reads in `status` for a body past the cap: the cap as feeds.yaml writes
    sizes (1024-based, like config.parse_size), and the setting that raises it."""
    size = f"{limit} bytes"
    for unit, multiple in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if limit >= multiple:
            size = f"{limit / multiple:.1f}".removesuffix(".0") + f" {unit}"
            break
    setting = "raise max_bytes in feeds.yaml (settings.max_bytes, or the feed's own)"
    return f"body larger than {size}: {setting}"


async def _read_body(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The decoded body, read while it stays within `limit` bytes."""
    status = response.status
    too_large = _too_large(limit)
    encoding = response.headers.get("content-encoding", "")
    decoder = _decoder_for(encoding, url=url, status=status)
    length = response.headers.get("content-length", "")
    if isinstance(decoder, _IdentityDecoder) and length.isdigit() and int(length) > limit:
        raise BodyTooLargeError(too_large, url=url, status=status)

    body = bytearray()
    try:
        async for raw in response.content.iter_any():
            decoder.feed(raw)
            while piece := decoder.read(limit - len(body) + 1):
                body += piece
                if len(body) > limit:
                    raise BodyTooLargeError(too_large, url=url, status=status)
    except (zlib.error, brotli.error) as exc:
        raise FetchError(
            f"could not decode the {encoding.strip()} body: {exc}", url=url, status=status
        ) from exc
    return bytes(body)


class _Decoder(Protocol):
    """Content decoding in bounded steps: feed() one raw chunk, then read() until b""."""

    def feed(self, data: bytes) -> None: ...

    def read(self, limit: int) -> bytes:
        """At most about `limit` (> 0) decoded bytes; b"" when the fed input is used up."""
        ...


class _IdentityDecoder:
    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> None:
        self._pending = data

    def read(self, limit: int) -> bytes:
        if len(self._pending) <= limit:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:limit], self._pending[limit:]
        return out


class _ZlibDecoder:
    """gzip, or deflate (which servers send both zlib-wrapped and raw)."""

    def __init__(self, *, gzip: bool) -> None:
        self._deflate = not gzip
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._pending = b""
        self._started = False

    def feed(self, data: bytes) -> None:
        self._pending = data

    def read(self, limit: int) -> bytes:
        if not self._pending or self._z.eof:
            return b""
        try:
            out = self._z.decompress(self._pending, limit)
        except zlib.error:
            if not (self._deflate and not self._started):
                raise
            self._deflate = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            out = self._z.decompress(self._pending, limit)
        self._started = True
        self._pending = self._z.unconsumed_tail
        return out


class _BrotliDecoder:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._bounded = hasattr(self._d, "can_accept_more_data")  # brotli >= 1.2
        self._pending = b""

    def feed(self, data: bytes) -> None:
        self._pending = data

    def read(self, limit: int) -> bytes:
        if not self._bounded:
            out, self._pending = self._d.process(self._pending), b""
            return bytes(out)
        while True:
            if self._pending:
                data, self._pending = self._pending, b""
            elif self._d.is_finished() or self._d.can_accept_more_data():
                return b""
            else:
                data = b""  # output held back by the last limit
            out = bytes(self._d.process(data, output_buffer_limit=limit))
            if out or not data:
                return out


def _decoder_for(content_encoding: str, *, url: str, status: int) -> _Decoder:
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise FetchError(
            f"unsupported Content-Encoding: {content_encoding}", url=url, status=status
        )
    coding = codings[0] if codings else ""
    if coding in ("gzip", "x-gzip"):
        return _ZlibDecoder(gzip=True)
    if coding == "deflate":
        return _ZlibDecoder(gzip=False)
    if coding == "br":
        return _BrotliDecoder()
    return _IdentityDecoder()  # as browsers do, an unknown coding is taken as none


# -- headers ---------------------------------------------------------------------------------


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After (delay in seconds, or an HTTP date) as an absolute UTC time."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return now + min(timedelta(seconds=int(value[:12])), MAX_RETRY_AFTER)
    return _http_date(value)


def _max_age(headers: Mapping[str, str], clock: Clock) -> int | None:
    """Freshness lifetime from Cache-Control max-age, else Expires (relative to Date)."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.partition("=")
        if name.strip().lower() == "max-age":
            value = value.strip().strip('"')
            return int(value) if value.isdigit() else None
    expires = _http_date(headers.get("expires", ""))
    if expires is None:
        return None
    date = _http_date(headers.get("date", "")) or clock.now()
    return max(0, int((expires - date).total_seconds()))


def _http_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by another name
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# -- reasons ---------------------------------------------------------------------------------


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _describe(exc: BaseException) -> str:
    """A short human reason for a network-level failure."""
    for cause in _chain(exc):
        if isinstance(cause, PrivateAddressError):
            return str(cause)
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(cause, ConnectionResetError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNRESET
        ):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed: {cause.strerror or cause}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {cause.verify_message or cause}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed without a response"
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP protocol error: {exc.message or exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return "connection broken" + (f": {exc}" if str(exc) else "")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        wrapped = getattr(current, "os_error", None)  # aiohttp's connector errors
        current = (
            wrapped if isinstance(wrapped, BaseException) and wrapped not in seen else None
        ) or (current.__cause__ or current.__context__)
    return seen


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """Response headers with lower-case names, repeated ones joined with ", "."""
    out: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


# -- private addresses ------------------------------------------------------------------------


def is_blocked_address(address: str) -> bool:
    """True for private, loopback, link-local, multicast, reserved or unspecified addresses
    (IPv4-mapped IPv6 ones by their IPv4 address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _refusal(host: str, address: str) -> str:
    shown = host if host == address else f"{host} ({address})"
    return f"refused: {shown} is a private or reserved address (settings.block_private_addresses)"


def _check_literal_host(url: str) -> None:
    """With the guard on, an IP-literal host is checked here (the resolver never sees it)."""
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if is_blocked_address(host):
        raise FetchError(_refusal(host, host), url=url)


class _GuardedResolver(ThreadedResolver):
    """The event loop's getaddrinfo, refusing blocked addresses when `block` is set."""

    def __init__(self, block: bool) -> None:
        super().__init__()
        self._block = block

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        if self._block:
            for entry in found:
                if is_blocked_address(entry["host"]):
                    raise PrivateAddressError(_refusal(host, entry["host"]))
        return found


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise FetchError(f"invalid URL: {exc}", url=url) from None


def _host_key(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
