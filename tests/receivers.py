"""Real local endpoints for alert channels: an HTTP receiver and an SMTP server (fixtures)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    """One request the HTTP receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A loopback HTTP server that records POSTs and answers as scripted."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    plan: list[int] = field(default_factory=list)
    default_status: int = 200
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then ``default_status``."""
        with self.lock:
            self.plan.extend(statuses)

    def next_status(self) -> int:
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default_status


class _Handler(BaseHTTPRequestHandler):
    receiver: HttpReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        receiver = self.server.receiver  # type: ignore[attr-defined]
        with receiver.lock:
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        if receiver.delay_s:
            time.sleep(receiver.delay_s)
        status = receiver.next_status()
        payload = b"ok" if status < 300 else b"error"
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout tests)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A recording HTTP server on 127.0.0.1 at an ephemeral port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    receiver = HttpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _MailHandler:
    def __init__(self) -> None:
        self.received: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _MailHandler

    @property
    def received(self) -> list[Mail]:
        return self.handler.received


@pytest.fixture
def smtp_server(closed_port: int) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 that records what it accepts."""
    handler = _MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=closed_port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", closed_port, handler)
    finally:
        controller.stop()


class FakeSleep:
    """Records the delays a channel asked for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def smtp_auth_server(closed_port: int) -> Iterator[SmtpServer]:
    """An aiosmtpd server that accepts AUTH for user ``bot`` / password ``s3cret``."""

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"bot",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    handler = _MailHandler()
    # Loopback only: plain-text AUTH without TLS is fine for the test.
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=closed_port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", closed_port, handler)
    finally:
        controller.stop()
