"""Stand-ins for the providers notify delivers to, for ``make run``, the demo and the tests: an
SMTP server (aiosmtpd) and an SMS gateway (JSON over HTTP), each keeping what it accepted in
memory and, given a directory, writing it there (``var/mail/*.eml``, ``var/sms/sms.jsonl``).
Tests count deliveries here, where they land, and can take a server down and up again (an
outage) or make it refuse.

``python -m motcua_dev.mailbox --dir var --smtp-port 8025 --sms-port 8026`` runs both until
killed (``make run`` starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import ssl
import sys
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from motcua_dev.devstack import eventually


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if address.split("@", 1)[0].startswith(self.sink.refuse_prefix):
            return "550 5.1.1 mailbox unavailable"
        if self.sink.defer:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.sink.delay_s:
            await asyncio.sleep(self.sink.delay_s)  # a slow server: the client waits for the 250
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.sink.keep(message, envelope.content)
        return "250 2.0.0 OK: queued"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts every message (a local part starting with
    ``refuse_prefix`` is refused with 550; ``defer`` answers 451 to every recipient). With
    ``tls`` (an ``ssl.SSLContext``) it offers STARTTLS and requires it, or with ``implicit_tls``
    speaks TLS from the first byte (port 465 style); with ``login`` (user, password) it requires
    AUTH."""

    def __init__(self, directory: Path | None = None, port: int = 0, tls: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None, refuse_prefix: str = "bounce", hostname: str = "127.0.0.1",
                 implicit_tls: bool = False):
        from motcua_dev.infra import free_port

        self.directory = directory
        self.port = port or free_port()
        self.hostname = hostname
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.login = login
        self.refuse_prefix = refuse_prefix
        self.defer = False
        self.delay_s = 0.0
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and self.login is not None and \
            (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        options: dict[str, Any] = {}
        if self.tls is not None and self.implicit_tls:
            options.update(ssl_context=self.tls)
        elif self.tls is not None:
            options.update(tls_context=self.tls, require_starttls=True)
        if self.login is not None:
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.tls is not None and not self.implicit_tls)
        self._controller = Controller(_Handler(self), hostname=self.hostname, port=self.port,
                                      server_hostname="localhost", ready_timeout=10, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    down = stop  # an outage: nothing listens on the port until up()
    up = start

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def keep(self, message: EmailMessage, raw: bytes) -> None:
        with self._lock:
            self.messages.append(message)
            n = len(self.messages)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{n:05d}.eml").write_bytes(raw)

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        return eventually(lambda: len(self.messages) >= count, timeout)


class _LocalHttpEndpoint:
    """An HTTP endpoint on 127.0.0.1 served from a thread of its own: what the SMS gateway
    stand-in and the webhook receiver share. :meth:`down` stops it (an outage), :meth:`up`
    starts it again on the same port."""

    port: int
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Any:
        raise NotImplementedError

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> Any:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def down(self) -> None:
        self.stop()

    def up(self) -> Any:
        return self.start()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SmsGatewayStandIn(_LocalHttpEndpoint):
    """A brand-name SMS gateway's JSON API on 127.0.0.1: POST a JSON object, get ``200
    {"status": "accepted", "id": …}``. ``status`` forces another answer (429, 500, 400…);
    ``token`` requires ``Authorization: Bearer <token>``. Accepted messages are kept in
    ``messages`` and appended to ``<directory>/sms.jsonl``."""

    def __init__(self, directory: Path | None = None, port: int = 0, token: str = ""):
        from motcua_dev.infra import free_port

        self.directory = directory
        self.port = port or free_port()
        self.token = token
        self.status = 200
        self.messages: list[dict] = []
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def start(self) -> SmsGatewayStandIn:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with gateway._lock:
                    gateway.requests += 1
                    status = gateway.status
                if gateway.token and self.headers.get("Authorization") != f"Bearer {gateway.token}":
                    status = 401
                try:
                    payload = json.loads(body)
                except ValueError:
                    status = 400
                if status == 200:
                    gateway.keep({**payload, "idempotency_key": self.headers.get("Idempotency-Key", "")})
                answer = json.dumps({"status": "accepted" if status == 200 else "error",
                                     "id": f"sms-{gateway.requests}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return self._serve(Handler, "sms-gateway")

    def keep(self, payload: dict) -> None:
        with self._lock:
            self.messages.append(payload)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / "sms.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(payload, ensure_ascii=False) + "\n")

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        return eventually(lambda: len(self.messages) >= count, timeout)


def read_mailbox(directory: Path, address: str | None = None) -> list[EmailMessage]:
    """The e-mails an SmtpSink wrote to ``directory`` (to ``address`` only, if given), oldest first."""
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address is None or address in str(message["To"]):
            found.append(message)
    return found


def read_sms(directory: Path, phone: str | None = None) -> list[dict]:
    path = directory / "sms.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if phone is None or r.get("to") == phone]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("var"))
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--sms-port", type=int, default=8026)
    args = parser.parse_args(argv)
    smtp = SmtpSink(args.dir / "mail", port=args.smtp_port).start()
    sms = SmsGatewayStandIn(args.dir / "sms", port=args.sms_port).start()
    print(f"READY mailbox: SMTP on 127.0.0.1:{smtp.port} → {args.dir / 'mail'}/*.eml, "
          f"SMS gateway on {sms.url} → {args.dir / 'sms'}/sms.jsonl", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    smtp.stop()
    sms.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class WebhookReceiver(_LocalHttpEndpoint):
    """A subscriber's webhook endpoint on 127.0.0.1: verifies every delivery with the
    ``standardwebhooks`` library (as a subscriber would) and keeps the verified CloudEvents JSON
    documents; what fails verification is answered 401 and counted in ``rejected``. ``status``
    forces another answer (a failing endpoint); :meth:`down` stops it (an outage)."""

    def __init__(self, secret: str = "", port: int = 0):
        from motcua_dev.infra import free_port

        self.secrets = [secret] if secret else []
        self.port = port or free_port()
        self.status = 200
        self.delay_s = 0.0
        self.received: list[dict] = []  # {"id": webhook-id, "event": the JSON document, "headers": {...}}
        self.rejected = 0
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/motcua"

    def start(self) -> WebhookReceiver:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # a slow subscriber: the sender waits for the answer
                with receiver._lock:
                    receiver.requests += 1
                    status = receiver.status
                    secrets = list(receiver.secrets)
                if status == 200:
                    verified = None
                    for secret in secrets:
                        try:
                            verified = Webhook(secret).verify(body, headers)
                            break
                        except WebhookVerificationError:
                            continue
                    if verified is None:
                        status = 401
                        with receiver._lock:
                            receiver.rejected += 1
                    else:
                        with receiver._lock:
                            receiver.received.append({"id": headers.get("webhook-id"), "event": verified,
                                                      "headers": headers})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return self._serve(Handler, "webhook-receiver")

    def ids(self) -> list[str]:
        with self._lock:
            return [r["id"] for r in self.received]

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        return eventually(lambda: len(self.received) >= count, timeout)
