"""Real receivers for the notification tests: an SMTP server, a Web Push service and a webhook endpoint.

Each runs in this test process on 127.0.0.1 and checks what it receives the way the real thing would:

- :class:`SmtpSink` is aiosmtpd: the server speaks real SMTP to it; refusals can be scripted per address.
- :class:`PushService` plays the push service of the subscriptions it hands out: it checks the VAPID
  ``Authorization`` header (JWT audience, expiry, ES256 signature with the key in ``k=``, which must be the
  server's public key) and decrypts the aes128gcm body with the subscription's private key (http_ece).
- :class:`WebhookReceiver` checks the HMAC signature and the replay window, deduplicates on the event id.

Their answers can be scripted (``statuses``) to exercise retries, and a receiver can hold requests to let a test
stop the server mid-delivery.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from server import webhooks
from tests.support.ports import free_port


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- SMTP ----------------------------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        content: str = part.get_content()  # type: ignore[attr-defined]
        return content


class _SmtpHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.sink.lock:
            self.sink.rcpt_attempts.append(address)
        if address in self.sink.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class SmtpSink:
    """A real SMTP server (aiosmtpd) in this process; ``messages`` holds what it accepted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[ReceivedMail] = []
        self.rcpt_attempts: list[str] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedMail]:
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} email(s)")
        with self.lock:
            return list(self.messages)


# ---- a small threaded HTTP server ------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class _Receiver:
    """ThreadingHTTPServer whose POSTs go to ``handle(request) -> status``; ``statuses`` scripts answers first."""

    def __init__(self) -> None:
        self.statuses: deque[int] = deque()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        #: While cleared, requests wait (up to 30 s) before being handled: lets a test stop the server mid-delivery.
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                receiver.waiting.set()
                receiver.open.wait(30)
                with receiver.lock:
                    receiver.requests.append(request)
                    scripted = receiver.statuses.popleft() if receiver.statuses else None
                code = scripted if scripted is not None else receiver.handle(request)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, request: Request) -> int:
        raise NotImplementedError

    def start(self) -> _Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.open.set()
        self._server.shutdown()
        self._server.server_close()


# ---- Web Push ----------------------------------------------------------------------------------------------------


@dataclass
class ReceivedPush:
    subscription: str
    payload: dict[str, Any]
    claims: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Subscriber:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class PushService(_Receiver):
    """A push service for the subscriptions it creates; checks VAPID and decrypts like a browser would."""

    #: The server's VAPID public key (base64url); when set, ``k=`` must be exactly it.
    vapid_public_key: str | None = None
    pushes: list[ReceivedPush] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Receiver.__init__(self)

    def subscription(self, name: str) -> dict[str, Any]:
        """A fresh ``PushSubscription.toJSON()`` whose endpoint is this service."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = hashlib.sha256(
            name.encode()
            + key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        ).digest()[:16]
        self.subscribers[name] = _Subscriber(key, auth)
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{self.base_url}/push/{name}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(auth)},
        }

    def handle(self, request: Request) -> int:
        try:
            push = self._verify(request)
        except AssertionError as error:
            with self.lock:
                self.errors.append(str(error))
            return 400
        with self.lock:
            self.pushes.append(push)
        return 201

    def _verify(self, request: Request) -> ReceivedPush:
        name = request.path.removeprefix("/push/")
        assert name in self.subscribers, f"unknown subscription {name}"
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        assert scheme.lower() == "vapid", f"Authorization scheme is {scheme!r}, not vapid"
        values = dict(item.strip().split("=", 1) for item in params.split(","))
        token, key = values["t"], values["k"]
        if self.vapid_public_key is not None:
            assert key == self.vapid_public_key, "k= is not the server's VAPID public key"
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        assert header.get("alg") == "ES256", header
        claims = json.loads(b64url_decode(claims_b64))
        assert claims.get("aud") == self.base_url, f"aud {claims.get('aud')!r} != {self.base_url}"
        now = time.time()
        assert isinstance(claims.get("exp"), int) and now < claims["exp"] <= now + 24 * 3600, f"exp {claims.get('exp')}"
        assert str(claims.get("sub", "")).startswith(("mailto:", "https:")), f"sub {claims.get('sub')!r}"
        raw_signature = b64url_decode(signature_b64)
        assert len(raw_signature) == 64, "ES256 signature must be 64 bytes (r || s)"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        der = encode_dss_signature(int.from_bytes(raw_signature[:32], "big"), int.from_bytes(raw_signature[32:], "big"))
        try:
            public.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as error:
            raise AssertionError("VAPID JWT signature does not verify") from error
        assert request.headers.get("content-encoding") == "aes128gcm", request.headers.get("content-encoding")
        assert request.headers.get("ttl", "").isdigit(), "TTL header missing"
        subscriber = self.subscribers[name]
        plain = http_ece.decrypt(
            request.body, private_key=subscriber.private_key, auth_secret=subscriber.auth, version="aes128gcm"
        )
        return ReceivedPush(name, json.loads(plain), claims, request.headers)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedPush]:
        wait_until(lambda: len(self.pushes) >= count or self.errors, timeout, f"{count} push(es)")
        assert not self.errors, self.errors
        with self.lock:
            return list(self.pushes)


# ---- webhooks ----------------------------------------------------------------------------------------------------


@dataclass
class WebhookReceiver(_Receiver):
    """A downstream consumer: verifies each request's signature and freshness, keeps one copy per event id."""

    secret: str = "webhook-test-secret"
    tolerance: float = webhooks.DEFAULT_TOLERANCE_SECONDS
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _Receiver.__init__(self)

    def handle(self, request: Request) -> int:
        try:
            webhooks.verify(self.secret, request.body, request.headers, tolerance=self.tolerance)
        except webhooks.WebhookVerificationError as error:
            with self.lock:
                self.rejected.append(str(error))
            return 401
        # The same check, written out, so the test does not only trust the module under test.
        timestamp = request.headers["smartcat-timestamp"]
        mac = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
        assert request.headers["smartcat-signature"] == f"v1={mac}"
        event = json.loads(request.body)
        assert request.headers["smartcat-event-id"] == event["event_id"]
        with self.lock:
            self.events.setdefault(event["event_id"], event)
        return 204


@contextmanager
def running(receiver: _Receiver) -> Iterator[Any]:
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
