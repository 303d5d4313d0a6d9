"""Structured logs: one JSON object per line (python-json-logger), each carrying the request it belongs to.

Every line has ``time``, ``level``, ``logger`` and ``message``; a line logged while a request is answered also has
``request_id`` (the caller's ``X-Request-ID`` when it is a plausible id, else a fresh one; echoed in the answer so
a user's report can be found), ``session_id`` (when the route names an upload session) and ``user`` (a keyed hash
of the caller's owner key: the same user gives the same value across lines and restarts with the same
``SECRET_KEY``, but the value does not say who it is). Tokens, bearer credentials, JWTs and email addresses are
redacted from every line (:mod:`server.log_redaction`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from server.asgi import HttpMiddleware
from server.log_redaction import Redacting, redact
from server.tokens import Purpose, derive_key

REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's request id is kept only if it looks like one (no spaces, quotes or control characters to forge
#: log lines with, bounded).
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: The hashed user id's length in hex digits (64 bits: distinct enough to follow one user, nothing to reverse).
_USER_HASH_DIGITS = 16


@dataclass(slots=True)
class RequestContext:
    """What a request's log lines carry. Mutable on purpose: a dependency running in a worker thread (where the
    identity is resolved) fills in the user for lines the handler writes later."""

    request_id: str
    scope: Scope
    user: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def session_id(self) -> str | None:
        params = self.scope.get("path_params") or {}
        value = params.get("session_id")
        return value if isinstance(value, str) else None


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)
_user_key: bytes = b""


def set_user_key(secret_key: str) -> None:
    """Key the user hashes with a key derived from the master secret (so they cannot be recomputed from a guess)."""
    global _user_key
    _user_key = derive_key(secret_key, Purpose.LOG_USER)


def user_hash(owner: str) -> str:
    return hmac.new(_user_key, owner.encode(), hashlib.sha256).hexdigest()[:_USER_HASH_DIGITS]


def bind_user(owner: str) -> None:
    """The current request is by ``owner``: its later log lines carry the hash."""
    context = _current.get()
    if context is not None:
        context.user = user_hash(owner)


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context else None


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` if plausible, else a fresh random one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            given = value.decode("latin-1")
            if _PLAUSIBLE_ID.fullmatch(given):
                return given
    return uuid.uuid4().hex


class RequestIds(HttpMiddleware):
    """ASGI middleware: gives each HTTP request its id and context, and echoes the id in ``X-Request-ID``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = RequestContext(request_id_from(scope["headers"]), scope)
        token = _current.set(context)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = context.request_id
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _current.reset(token)


class RequestFields(logging.Filter):
    """Adds the current request's fields to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            record.request_id = context.request_id
            if context.session_id:
                record.session_id = context.session_id
            if context.user:
                record.user = context.user
        return True


class _Json(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = record.levelname
        log_record["logger"] = record.name


def handler(stream: IO[str] | None = None, *, json: bool = True) -> logging.Handler:
    """A handler writing redacted lines with the request fields: JSON objects, or plain text with ``json=False``
    (lines are redacted as a whole when formatted: :class:`~server.log_redaction.Redacting`)."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(RequestFields())
    if json:
        out.setFormatter(
            _Json(
                "%(asctime)s %(message)s",
                rename_fields={"asctime": "time"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
                json_ensure_ascii=False,
                # uvicorn's copy of its message template with colour codes: noise in JSON.
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            )
        )
    else:
        out.setFormatter(Redacting("%(levelname)s %(name)s: %(message)s"))
    return out


def configure(*, json: bool = True, level: int = logging.INFO) -> None:
    """Send every logger's lines (uvicorn's included: run it with ``log_config=None``) through :func:`handler`."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(json=json))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
