"""What a failed request means for the upload, decided once, here, from status code and S3 error code.

Adapters only report what happened (a status and a body, or "the network failed"); the core decides whether to retry,
refresh URLs, start over or ask the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # network error, 5xx, 429: retry with backoff
    URL_EXPIRED = "url_expired"  # presigned URL past its expiry: fetch fresh URLs, retry at once, not counted
    BAD_DIGEST = "bad_digest"  # S3 saw other bytes than were checksummed: re-read the slice and retry
    SESSION_GONE = "session_gone"  # the multipart upload no longer exists: only starting over helps
    SOURCE_LOST = "source_lost"  # the file's bytes cannot be read here any more (or never could be saved)
    NOT_STORAGE = "not_storage"  # something else answered in the storage's place (captive portal, proxy): retry
    FATAL = "fatal"  # any other client error: retrying cannot help


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    message: str
    status: int | None = None
    code: str | None = None

    @property
    def counts_against_budget(self) -> bool:
        return self.kind in (FailureKind.TRANSIENT, FailureKind.BAD_DIGEST, FailureKind.NOT_STORAGE)


#: What the user reads after a run of answers that were not the storage's.
NOT_STORAGE_MESSAGE = "the network is answering instead of the storage (captive portal or proxy?)"


_CODE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def s3_error_code(body: str) -> tuple[str | None, str | None]:
    """The ``<Code>`` and ``<Message>`` of an S3 XML error body, if there is one."""
    code = _CODE.search(body)
    message = _MESSAGE.search(body)
    return (code.group(1) if code else None, message.group(1) if message else None)


def network_failure(detail: str) -> Failure:
    return Failure(FailureKind.TRANSIENT, f"network error: {detail}" if detail else "network error")


def _looks_like_a_page(content_type: str, body: str) -> bool:
    head = body.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype html", "<html", "<head", "<body"))


def check_part_answer(etag: str | None, content_type: str, body: str) -> Failure | None:
    """A 200 to a part PUT counts only if the storage gave it: S3 answers with an empty body and a strong ETag.

    A captive portal or a meddling proxy answers 200 with a web page, or without an ETag; counting that as a stored
    part would put a part S3 never saw into the manifest. Return the failure (retried like a network error), or
    None for a genuine answer.
    """
    if _looks_like_a_page(content_type, body):
        return Failure(FailureKind.NOT_STORAGE, "a web page answered instead of the storage", 200)
    if not etag:
        # Also what a bucket CORS rule that does not expose ETag looks like from a browser.
        return Failure(FailureKind.NOT_STORAGE, "the answer had no ETag (a proxy, or CORS hides it)", 200)
    if etag.startswith("W/"):
        return Failure(FailureKind.NOT_STORAGE, "the answer had a weak ETag, which S3 never gives", 200)
    return None


def classify_storage_response(status: int, body: str, content_type: str = "") -> Failure:
    """Classify a failed presigned PUT to S3 from its status and XML body."""
    code, message = s3_error_code(body)
    text = message or code or f"HTTP {status}"
    if code is None and 400 <= status < 500 and status != 429 and _looks_like_a_page(content_type, body):
        return Failure(FailureKind.NOT_STORAGE, f"a web page answered instead of the storage (HTTP {status})", status)
    if status == 429 or status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError"):
        return Failure(FailureKind.TRANSIENT, f"storage busy or failing: {text}", status, code)
    if status == 403 and (code == "AccessDenied" or code is None) and "expired" in (message or body).lower():
        return Failure(FailureKind.URL_EXPIRED, "upload link expired", status, code)
    if code == "ExpiredToken":
        return Failure(FailureKind.URL_EXPIRED, "upload link expired", status, code)
    if code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"):
        return Failure(FailureKind.BAD_DIGEST, "the bytes were damaged on the way; sending them again", status, code)
    if status == 404 or code == "NoSuchUpload":
        return Failure(FailureKind.SESSION_GONE, "the upload no longer exists on the storage", status, code)
    return Failure(FailureKind.FATAL, f"storage refused the upload: {text}", status, code)


def classify_api_response(status: int, detail: str) -> Failure:
    """Classify a failed call to the presign service from its status and ``detail``."""
    text = detail or f"HTTP {status}"
    if status == 429 or status >= 500 or status == 408:
        return Failure(FailureKind.TRANSIENT, f"upload service busy or failing: {text}", status)
    if status in (404, 410):
        return Failure(FailureKind.SESSION_GONE, f"the upload session is gone: {text}", status)
    return Failure(FailureKind.FATAL, f"upload service refused: {text}", status)
