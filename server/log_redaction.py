"""Tokens never reach the logs: uvicorn's access log line has the request's query string, where email links carry
their ``token``; the filter replaces the value of every token-like parameter before the line is formatted."""

from __future__ import annotations

import logging
import re

#: Query parameters whose values are credentials.
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:token|access_token|upload_token|jwt|confirm)=)[^&#\s\"]*")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(rf"\1{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites string arguments (uvicorn passes the path with its query string as one) and the message itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    """Add the filter once to ``logger_name`` (idempotent: several apps in one process share the logger)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
