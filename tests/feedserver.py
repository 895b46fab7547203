"""A real HTTP server for tests, scripted route by route.

    server = FeedServer().start()          # 127.0.0.1, random port, daemon thread
    server.route("/feed.xml", body=b"<rss/>", etag='"v1"')
    server.redirect("/old", "/feed.xml", status=301)
    server.url("/old")                     # http://127.0.0.1:PORT/old
    ...
    server.requests                        # what the client sent, in order
    server.close()

Behaviours a feed fetcher meets in the wild are one call each: validators answered with 304,
redirect chains, 410, 429/503 with Retry-After, a slow drip, a gzip bomb, an oversized body,
a connection reset. Anything else: pass `handler=`, a callable given the recorded request and
the live `BaseHTTPRequestHandler`.

The server speaks HTTP/1.1 with keep-alive, so client connection pooling is exercised. It
tracks how many requests are in flight (per route and overall) so tests can assert limits.
`close()` stops drips, cuts open connections and joins every thread.
"""

from __future__ import annotations

import contextlib
import functools
import gzip as gzip_module
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP_INTERVAL = 0.2  # seconds between two bytes of a slow drip


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as requested, query included
    headers: dict[str, str]  # lower-case names


Handler = Callable[[RecordedRequest, BaseHTTPRequestHandler], None]


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    delay: float = 0.0
    handler: Handler | None = None
    hits: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.connections_opened = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        self._httpd.feed_server = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # idle keep-alive connections block their thread
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()  # joins the request threads
        self._thread.join()

    def threads_alive(self) -> list[threading.Thread]:
        """The server's threads still running (none after close())."""
        # socketserver keeps a non-iterable placeholder until the first request thread starts.
        handlers = getattr(self._httpd, "_threads", ())
        threads = [self._thread, *(handlers if isinstance(handlers, list) else ())]
        return [t for t in threads if t.is_alive()]

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scripting ---------------------------------------------------------------------------

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        gzip: bool = False,
        delay: float = 0.0,
        handler: Handler | None = None,
    ) -> Route:
        """Answer `path` with this response. `etag` / `last_modified` are sent and also answered
        with 304 when the request's If-None-Match / If-Modified-Since match them."""
        route = Route(
            status=status,
            body=body.encode() if isinstance(body, str) else body,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            gzip=gzip,
            delay=delay,
            handler=handler,
        )
        self.routes[path] = route
        return route

    def redirect(self, path: str, to: str, *, status: int = 301) -> Route:
        """`to` may be a path on this server or an absolute URL."""
        return self.route(path, status=status, headers={"Location": to})

    def drip(self, path: str) -> Route:
        """200, then one byte every DRIP_INTERVAL s until the client leaves (or close())."""
        return self.route(path, handler=self._drip)

    def gzip_bomb(self, path: str, size: int = 50 * 1024 * 1024) -> Route:
        """A small gzip body that decompresses to `size` zero bytes, sent as
        Content-Encoding: gzip."""
        return self.route(
            path,
            _gzip_of_zeros(size),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"},
        )

    def oversized(self, path: str, size: int, *, content_length: bool = True) -> Route:
        """`size` bytes of body, with or without a Content-Length that gives it away."""

        def handler(request: RecordedRequest, h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            if content_length:
                h.send_header("Content-Length", str(size))
            else:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < size and not self.stopping.is_set():
                    n = min(len(chunk), size - sent)
                    h.wfile.write(chunk[:n])
                    sent += n
            except OSError:  # the client gave up, as it should
                h.close_connection = True

        return self.route(path, handler=handler)

    def reset(self, path: str) -> Route:
        """Read the request, then close the socket with an RST instead of answering."""
        return self.route(path, handler=_reset)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- serving (request threads) -----------------------------------------------------------

    def _serve(self, h: _RequestHandler) -> None:
        request = RecordedRequest(
            method=h.command,
            path=h.path,
            headers={k.lower(): v for k, v in h.headers.items()},
        )
        route = self.routes.get(h.path.split("?", 1)[0])
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if route is not None:
                route.hits += 1
                route.in_flight += 1
                route.max_in_flight = max(route.max_in_flight, route.in_flight)
        try:
            if route is None:
                _respond(h, 404, b"no such route\n", {"Content-Type": "text/plain"})
            else:
                if route.delay:
                    self.stopping.wait(route.delay)
                if route.handler is not None:
                    route.handler(request, h)
                else:
                    _respond_route(h, request, route)
        finally:
            with self._lock:
                self.in_flight -= 1
                if route is not None:
                    route.in_flight -= 1

    def _drip(self, request: RecordedRequest, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(b"<")
            while not self.stopping.wait(DRIP_INTERVAL):
                h.wfile.write(b" ")
        except OSError:
            pass


def _respond(
    h: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]
) -> None:
    h.send_response_only(status, _phrase(status))
    if not any(n.lower() == "date" for n in headers):  # a scripted Date replaces the real one
        h.send_header("Date", h.date_time_string())
    for name, value in headers.items():
        h.send_header(name, value)
    if status != 304 and not any(n.lower() == "content-length" for n in headers):
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD" and status != 304:
        h.wfile.write(body)


def _respond_route(h: BaseHTTPRequestHandler, request: RecordedRequest, route: Route) -> None:
    headers = dict(route.headers)
    if route.etag is not None:
        headers["ETag"] = route.etag
    if route.last_modified is not None:
        headers["Last-Modified"] = route.last_modified
    if _not_modified(request, route):
        _respond(h, 304, b"", headers)
        return
    body = route.body
    if route.gzip:
        body = gzip_module.compress(body)
        headers["Content-Encoding"] = "gzip"
    _respond(h, route.status, body, headers)


def _not_modified(request: RecordedRequest, route: Route) -> bool:
    if route.status != 200:
        return False
    inm = request.headers.get("if-none-match")
    if inm is not None and route.etag is not None:
        return route.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    ims = request.headers.get("if-modified-since")
    if ims is not None and route.last_modified is not None:
        if ims == route.last_modified:
            return True
        try:
            return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def _reset(request: RecordedRequest, h: BaseHTTPRequestHandler) -> None:
    h.close_connection = True
    # SO_LINGER with a zero timeout turns close() into an RST; the socket only really closes
    # once the file object reading from it is closed too.
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.rfile.close()
    h.connection.close()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@functools.cache
def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = bytes(1024 * 1024)
    parts = []
    left = size
    while left > 0:
        n = min(left, len(chunk))
        parts.append(compressor.compress(chunk[:n]))
        left -= n
    parts.append(compressor.flush())
    return b"".join(parts)


class _Server(ThreadingHTTPServer):
    feed_server: FeedServer
    daemon_threads = True
    block_on_close = True  # server_close() joins the request threads


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is exercised
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.feed_server._lock:
            self.server.feed_server._connections.add(self.connection)
            self.server.feed_server.connections_opened += 1

    def finish(self) -> None:
        with self.server.feed_server._lock:
            self.server.feed_server._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:  # the client hung up mid-request: nothing to answer
            self.close_connection = True

    def do_GET(self) -> None:
        self.server.feed_server._serve(self)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll `predicate` until true or `timeout` s passed (for asserting server-side effects)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
