"""Real servers for the notification tests: an HTTP server in a thread (the SMS gateway,
SMS.ru's API and partners' webhook receivers) and aiosmtpd's SMTP server."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))


@dataclass
class HttpReceiver:
    """Records every POST; answers ``status`` (and SMS.ru's JSON on ``/sms/send``).
    ``stop()`` and ``start()`` take it down and bring it back on the same port."""

    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)
    status: int = 200
    smsru_code: int = 100  # per-number status code SMS.ru answers
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    owner.seen.append(Seen(self.path, dict(self.headers.items()), body))
                    n = len(owner.seen)
                if self.path.startswith("/sms/send") and owner.status == 200:
                    to = dict(urllib.parse.parse_qsl(body.decode())).get("to", "")
                    one: dict[str, Any] = {"status": "OK", "status_code": 100, "sms_id": f"id-{n}"}
                    if owner.smsru_code != 100:
                        one = {
                            "status": "ERROR",
                            "status_code": owner.smsru_code,
                            "status_text": "refused",
                        }
                    out = {"status": "OK", "status_code": 100, "sms": {to: one}, "balance": 4122.56}
                else:
                    out = {"id": f"msg-{n}"}
                raw = json.dumps(out).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.stop()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    user: str = "mailer"
    password: str = "s3cret-pass"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    box = Mailbox()
    server = SmtpServer(free_port(), box)

    def auth(
        srv: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            server.user,
            server.password,
        )
        return AuthResult(success=ok)

    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=auth,
        auth_require_tls=False,
        auth_required=True,
    )
    with warnings.catch_warnings():
        # a password over plain SMTP on localhost: fine for the test server only
        warnings.simplefilter("ignore", UserWarning)
        ctl.start()
    yield server
    ctl.stop()


@dataclass
class TlsFiles:
    cert: str
    key: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (the test trusts it as its CA)."""
    import subprocess

    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return TlsFiles(cert, key)


@pytest.fixture
def starttls_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """An SMTP server that refuses mail and logins before STARTTLS."""
    import ssl

    box = Mailbox()
    server = SmtpServer(free_port(), box)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)

    def auth(
        srv: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            server.user,
            server.password,
        )
        return AuthResult(success=ok)

    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=server.port,
        tls_context=context,
        require_starttls=True,
        authenticator=auth,
        auth_required=True,
    )
    ctl.start()
    yield server
    ctl.stop()
