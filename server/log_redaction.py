"""Secrets and addresses never reach the logs: uvicorn's access log line has the request's query string, where
email links carry their ``token``; messages may quote an SMTP answer naming a recipient, or a header with a bearer
token. The filter replaces token-like query values, ``Bearer`` credentials, JWTs and email addresses before the line
is formatted."""

from __future__ import annotations

import logging
import re

#: Query parameters whose values are credentials.
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:token|access_token|upload_token|jwt|confirm)=)[^&#\s\"]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
#: Three base64url segments, the first a JSON header (``eyJ`` = ``{"``): a JWT wherever it appears.
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
REDACTED = "[redacted]"
EMAIL_REDACTED = "[email]"


def redact(text: str) -> str:
    text = _SECRET_PARAMS.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _EMAIL.sub(EMAIL_REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites string arguments (uvicorn passes the path with its query string as one) and the message itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class Redacting(logging.Formatter):
    """Redacts the finished line, so a secret split between a template and its argument (``"token=%s"``), inside
    an exception or its traceback, is caught too; the record itself is left alone for other handlers."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install(logger_name: str = "uvicorn.access") -> None:
    """Add the filter once to ``logger_name`` (idempotent: several apps in one process share the logger)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
