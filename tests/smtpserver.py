"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, random port), scripted per message.

    with SmtpServer() as server:                 # accepts everything
        server.script(["451 4.3.0 try later"])   # the next DATA gets 451, then 250 again
        ...
        server.received                          # accepted messages, in order
        server.message_ids()                     # their Message-IDs

Optional: AUTH (a user and password it accepts), STARTTLS or implicit TLS with a self-signed
certificate made by the openssl command line (``self_signed``).
"""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message_id(self) -> str:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        return str(msg["Message-ID"])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        with self.server.lock:
            self.server.attempts += 1
            reply = self.server.replies.pop(0) if self.server.replies else "250 OK"
            if reply.startswith("250"):
                self.server.received.append(
                    Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
                )
            self.server.sessions.add(id(session))
        return reply


class SmtpServer:
    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,  # implicit TLS
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.replies: list[str] = []
        self.attempts = 0
        self.sessions: set[int] = set()
        self.logins = 0
        params: dict[str, Any] = {}
        if auth is not None:

            def authenticator(_s: Any, _sess: Any, _env: Any, mechanism: str, data: Any) -> Any:
                ok = (
                    isinstance(data, LoginPassword)
                    and (data.login.decode(), data.password.decode()) == auth
                )
                if ok:
                    with self.lock:
                        self.logins += 1
                return AuthResult(success=ok, handled=False)

            params.update(authenticator=authenticator, auth_require_tls=starttls is not None)
        if starttls is not None:
            params.update(tls_context=starttls, require_starttls=True)
        self.port = _free_port()
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=tls,
            ready_timeout=10,
            **params,
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def script(self, replies: list[str]) -> None:
        """The replies to the next DATA commands, in order; then 250 again."""
        with self.lock:
            self.replies = list(replies)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server context, client context trusting it) for 127.0.0.1; None without openssl."""
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
