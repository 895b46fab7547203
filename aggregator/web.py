"""`aggregator serve`: one-click unsubscribe, editor pages and /healthz (Starlette, uvicorn).

    POST /u/{token}        RFC 8058 one-click: body List-Unsubscribe=One-Click (urlencoded or
                           multipart) unsubscribes at once; no login, no confirmation
    GET  /u/{token}        a page with a button (mail scanners follow GET links: a GET never
                           changes anything)
    GET  /healthz          200 {"status": "ok"} when the store answers and the latest poll is
                           recent (pipeline.health), else 503
    GET  /editor/          read-only pages for editors: the preview of the next edition per
         /editor/preview/{digest}?topics=a,b     topic set, feed health (`status`) and
         /editor/status    `explain` for an item
         /editor/explain?item=N

A token names one (digest, subscriber) and is signed (tokens.py). A malformed token gets 400,
a signature that does not match 403, a token of no current subscription 404; none changes
anything. Editor pages ask for HTTP basic auth when AGGREGATOR_EDITOR_PASSWORD is set;
without it they answer only requests made directly from this machine (a loopback client and
no X-Forwarded-For / Forwarded header, so nothing a reverse proxy passes on). Every page is
rendered by jinja2 with autoescape; responses carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import pipeline, tokens
from .clock import Clock
from .config import Config
from .errors import AggregatorError, TokenError
from .store import Store

log = logging.getLogger("aggregator.web")

EDITOR_PASSWORD_ENV = "AGGREGATOR_EDITOR_PASSWORD"
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058 section 3.1: the POST body
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'"
PRIVATE = {  # tokens are in these URLs: not cached, not indexed, not sent on as Referer
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
}

PAGES = {
    "base.html": """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{{ title }}{% endblock %}</title>
<style>
body { font: 16px/1.5 -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; font-size: 14px; } td, th { border-bottom: 1px solid #ddd;
  padding: .25rem .5rem; text-align: left; vertical-align: top; }
button { font-size: 1rem; padding: .5rem 1.25rem; cursor: pointer; }
.flag { color: #a40e26; font-weight: 600; } dl { margin: 0 0 0 1rem; } dt { font-weight: 600; }
</style></head><body>{% block body %}{% endblock %}</body></html>""",
    "unsubscribe.html": """{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
{% if left_at %}
<p>{{ masked }} no longer gets {{ digest }} (since {{ left_at }}).</p>
{% else %}
<p>Stop sending {{ digest }} to {{ masked }}?</p>
<form method="post" action="">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<input type="hidden" name="from" value="page">
<button type="submit">Unsubscribe</button>
</form>
{% endif %}{% endblock %}""",
    "message.html": """{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1><p>{{ message }}</p>{% endblock %}""",
    "editor.html": """{% extends "base.html" %}{% block body %}
<h1>Editor</h1>
<h2>Next edition</h2>
{% for digest, sets in previews %}<h3>{{ digest }}</h3><ul>
{% for label, query in sets %}<li><a
 href="/editor/preview/{{ digest | urlencode }}?topics={{ query | urlencode }}">{{ label }}</a></li>
{% endfor %}</ul>{% endfor %}
<h2><a href="/editor/status">Feed health</a></h2>
<h2>Explain an item</h2>
<form method="get" action="/editor/explain"><input name="item" inputmode="numeric" size="8">
<button type="submit">Explain</button></form>
{% endblock %}""",
    "status.html": """{% extends "base.html" %}{% block body %}
<h1>Feed health</h1>
<p>{{ summary }}</p>
<p>Times in {{ zone }} (settings.timezone).</p>
<table><thead><tr><th>feed</th><th>last success</th><th>outcome</th><th>errors</th>
<th>items</th><th>7d</th><th>next poll</th><th>flags / notes</th></tr></thead><tbody>
{% for r in rows %}<tr><td><a href="{{ r.url }}">{{ r.name }}</a></td><td>{{ r.last_success }}</td>
<td>{{ r.outcome }}</td><td>{{ r.errors }}</td><td>{{ r["items"] }}</td><td>{{ r.recent }}</td>
<td>{{ r.next_due }}</td>
<td>{% for f in r.flags %}<span class="flag">{{ f }}</span> {% endfor %}{{ r.notes }}</td></tr>
{% endfor %}</tbody></table>{% endblock %}""",
    "explain.html": """{% extends "base.html" %}{% block body %}
{% macro show(value) %}{% if value is mapping %}<dl>{% for k, v in value.items() %}
<dt>{{ k }}</dt><dd>{{ show(v) }}</dd>{% endfor %}</dl>
{%- elif value is iterable and value is not string %}<ol>{% for v in value %}
<li>{{ show(v) }}</li>{% endfor %}</ol>
{%- elif value is none %}-{% else %}{{ value }}{% endif %}{% endmacro %}
<h1>Item {{ item_id }}</h1>{{ show(sections) }}{% endblock %}""",
}


@dataclass(frozen=True, slots=True)
class Subscription:
    digest: str
    email: str


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader(PAGES), autoescape=True, undefined=jinja2.StrictUndefined
    )


def _mask(email: str) -> str:
    """r•••@example.org: enough for the reader to recognise, little for anyone else."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(
    config: Config | Callable[[], Config],
    store: Store,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """The web app over ``store``. ``config``: a Config, or a function returning the current
    one (the daemon's, which reloads). ``environ``: where the editor password is read
    (default: os.environ)."""
    current = config if callable(config) else (lambda: config)
    env = os.environ if environ is None else environ
    pages = _environment()
    lookup_cache: dict[int, dict[bytes, Subscription]] = {}

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(pages.get_template(name).render(**context), status, headers=PRIVATE)

    def refusal(status: int, title: str, message: str) -> HTMLResponse:
        return page("message.html", status, title=title, message=message)

    def subscriptions(cfg: Config) -> dict[bytes, Subscription]:
        """token id -> (digest, email), for every configured subscriber of every digest."""
        found = lookup_cache.get(id(cfg))
        if found is None:
            found = {}
            for digest in cfg.digests:
                for sub in pipeline.subscribers_of(cfg, digest):
                    found[tokens.token_id(digest.key, sub.email)] = Subscription(
                        digest.key, sub.email
                    )
            lookup_cache.clear()
            lookup_cache[id(cfg)] = found
        return found

    def resolve(token: str) -> Subscription | HTMLResponse:
        cfg = current()
        try:
            ident = tokens.parse_token(token)
        except TokenError:
            return refusal(
                400,
                "Broken link",
                "This unsubscribe link is incomplete or damaged (perhaps cut short when "
                "copied). Use the link in the message itself, or reply to it with "
                "'unsubscribe'.",
            )
        sub = subscriptions(cfg).get(ident)
        if sub is None:
            return refusal(
                404,
                "Unknown link",
                "This link belongs to no current subscription: the address may already "
                "have been removed from the list. Nothing was changed.",
            )
        if not tokens.verify_token(pipeline.signing_keys(cfg), token, sub.digest, sub.email):
            return refusal(403, "Invalid link", "This link's signature is not valid.")
        return sub

    def left_at(sub: Subscription) -> str | None:
        found = next(
            (
                u
                for u in store.unsubscribes()
                if u.digest == sub.digest and u.recipient == sub.email.lower()
            ),
            None,
        )
        return found.at.strftime("%d %B %Y %H:%M UTC") if found else None

    def digest_title(sub: Subscription) -> str:
        # Readers know a digest by its title (as the footer names it), not feeds.yaml's key.
        return next((d.title for d in current().digests if d.key == sub.digest), sub.digest)

    def unsubscribe_page(request: Request) -> Response:
        sub = resolve(request.path_params["token"])
        if isinstance(sub, Response):
            return sub
        return page(
            "unsubscribe.html",
            title="Unsubscribe",
            digest=digest_title(sub),
            masked=_mask(sub.email),
            left_at=left_at(sub),
        )

    async def one_click(request: Request) -> Response:
        sub = resolve(request.path_params["token"])
        if isinstance(sub, Response):
            return sub
        try:
            form = await request.form(max_files=0, max_fields=10)
        except Exception:  # a body that is no form at all
            form = None
        if form is None or form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            return refusal(
                400, "Not unsubscribed", "Expected a form with List-Unsubscribe=One-Click."
            )
        via = "web" if form.get("from") == "page" else "one-click"
        new = store.unsubscribe(sub.digest, sub.email, clock.now(), via)
        log.info("unsubscribe digest=%s via=%s new=%d", sub.digest, via, int(new))
        return page(
            "message.html",
            title="Unsubscribed",
            message=f"{_mask(sub.email)} will get no more of {digest_title(sub)}.",
        )

    def healthz(request: Request) -> Response:
        ok, details = pipeline.health(current(), store, clock.now())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **details},
            200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    def editor_refusal(request: Request) -> Response | None:
        """None when the request may see editor pages."""
        password = env.get(EDITOR_PASSWORD_ENV)
        if password:
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            try:
                given = base64.b64decode(encoded, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                given = ""
            if scheme.lower() == "basic" and hmac.compare_digest(given.encode(), password.encode()):
                return None
            return Response(
                "editor pages need a password\n",
                401,
                headers={"WWW-Authenticate": 'Basic realm="aggregator editor"', **PRIVATE},
                media_type="text/plain",
            )
        proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
        client = request.client.host if request.client else ""
        if is_loopback(client) and not proxied:
            return None
        return refusal(
            403,
            "Editors only",
            f"Editor pages answer only on this machine unless {EDITOR_PASSWORD_ENV} is set.",
        )

    def editor(request: Request) -> Response:
        if (no := editor_refusal(request)) is not None:
            return no
        cfg = current()
        previews = []
        for digest in cfg.digests:
            sets = {tuple(s.topics) for s in pipeline.subscribers_of(cfg, digest)}
            previews.append(
                (
                    digest.key,
                    [("+".join(t) if t else "all topics", ",".join(t)) for t in sorted(sets)],
                )
            )
        return page("editor.html", title="Editor", previews=previews)

    def preview(request: Request) -> Response:
        if (no := editor_refusal(request)) is not None:
            return no
        topics = [t for t in request.query_params.get("topics", "").split(",") if t]
        try:
            report = pipeline.preview_edition(
                current(), store, clock, digest=request.path_params["digest"], topics=topics
            )
        except ValueError as exc:
            return refusal(404, "No such preview", str(exc))
        return HTMLResponse(report.path.read_text(encoding="utf-8"), headers=PRIVATE)

    def status(request: Request) -> Response:
        if (no := editor_refusal(request)) is not None:
            return no
        rows = []
        config = current()
        zone = ZoneInfo(config.settings.timezone)
        found = pipeline.feed_status(config, store, clock.now())
        for feed in found:
            st = feed.state
            notes = [] if feed.enabled else ["disabled"]
            if st and st.moved_to:
                notes.append(f"moved to {st.moved_to}")
            if st and st.last_error:
                notes.append(st.last_error)
            if st and st.last_note:
                notes.append(st.last_note)
            rows.append(
                {
                    "url": feed.url,
                    "name": feed.name,
                    "last_success": _short(st.last_success_at if st else None, zone),
                    "outcome": (st.last_outcome if st else None) or "-",
                    "errors": st.error_streak if st else 0,
                    "items": st.items_stored if st else 0,
                    "recent": st.items_recent if st else 0,
                    "next_due": _short(st.next_due_at if st and not st.gone_at else None, zone),
                    "flags": feed.flags,
                    "notes": "; ".join(notes),
                }
            )
        summary = pipeline.summary_line(pipeline.health_summary(found))
        return page("status.html", title="Feed health", rows=rows, summary=summary, zone=zone)

    def explain(request: Request) -> Response:
        if (no := editor_refusal(request)) is not None:
            return no
        raw = request.query_params.get("item", "").strip()
        if not raw.isdigit():
            return refusal(400, "Explain", "Give an item number, e.g. /editor/explain?item=42.")
        try:
            sections = pipeline.explain_item(current(), store, int(raw))
        except KeyError:
            return refusal(404, "Explain", f"There is no item {raw}.")
        return page("explain.html", title=f"Item {raw}", item_id=int(raw), sections=sections)

    return Starlette(
        routes=[
            Route("/u/{token}", unsubscribe_page, methods=["GET"]),
            Route("/u/{token}", one_click, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/editor/", editor, methods=["GET"]),
            Route("/editor/preview/{digest}", preview, methods=["GET"]),
            Route("/editor/status", status, methods=["GET"]),
            Route("/editor/explain", explain, methods=["GET"]),
        ]
    )


def _short(when: datetime | None, zone: tzinfo) -> str:
    # As `status` prints them: one page never mixes UTC and local times.
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M}" if when else "-"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket for `serve`, bound before anything says it serves; raises
    AggregatorError when the address cannot be bound (the words `run --serve` uses)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise AggregatorError(
            f"cannot serve on {host}:{port} (in use, or not an address of this host)"
        ) from exc


def serve(app: Starlette, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Run ``app`` with uvicorn on ``sock`` (bind) until interrupted. Forwarded headers are
    trusted from the loopback proxy only (uvicorn's default), so logs show the real client."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


class BackgroundServer:
    """``app`` served by uvicorn in a thread of this process (`aggregator run --serve`): the
    daemon keeps the signals (uvicorn installs none off the main thread); ``stop`` lets the
    requests in flight finish and waits."""

    def __init__(self, app: Starlette, host: str, port: int, *, log_level: str = "warning"):
        import uvicorn

        config = uvicorn.Config(app, log_level=log_level, server_header=False)
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Serve; raises AggregatorError when the address cannot be bound."""
        sock = bind(self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        # Real time, not the injected clock: this waits for uvicorn to start, not for the schedule.
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise AggregatorError(f"the web server did not start on {self.address}")
            time.sleep(0.02)
        log.info("serving on http://%s/", self.address)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
