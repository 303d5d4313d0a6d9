"""PresignApi reads every answer with the wire types: a malformed answer is a clear failure that is not retried."""

from __future__ import annotations

from typing import Any

import pytest

from browser_py.api import PresignApi
from browser_py.engine.commands import CompleteUpload, CreateSession, FetchState, RequestUrls
from browser_py.engine.events import ApiCall, RemotePart, SessionCreated, StateFetched, UploadCompleted, UrlsReceived
from browser_py.engine.failures import FailureKind
from browser_py.ports import CallFailed
from tests.wire.answers import created, state


class FakeHttp:
    """A JsonHttp that answers each request with the next canned (status, JSON) and records what was sent."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self._answers = list(answers)
        self.sent: list[tuple[str, str, Any, dict[str, str] | None]] = []

    async def request(
        self, method: str, path: str, body: Any | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        self.sent.append((method, path, body, headers))
        return self._answers.pop(0)


def api(*answers: tuple[int, Any]) -> tuple[PresignApi, FakeHttp]:
    http = FakeHttp(*answers)
    return PresignApi(http, lambda: 42.0), http


CREATE = CreateSession(file_name="a.bin", size=10, content_type="text/plain", fingerprint="fp")


def assert_unexpected(raised: pytest.ExceptionInfo[CallFailed], call: ApiCall, field: str, status: int) -> None:
    failure = raised.value.failure
    assert raised.value.call is call
    assert failure.kind is FailureKind.FATAL and not failure.counts_against_budget
    assert failure.message.startswith("the upload service answered something unexpected: ")
    assert field in failure.message
    assert failure.status == status


# ---- malformed answers: FATAL, naming the field ----------------------------------------------------------------


async def test_create_answer_missing_a_field_is_fatal() -> None:
    presign, _ = api((201, created(part_count=None)))
    with pytest.raises(CallFailed) as raised:
        await presign.create_session(CREATE)
    assert_unexpected(raised, ApiCall.CREATE, "CreatedSession.part_count: missing", 201)


async def test_create_answer_with_renamed_url_field_is_fatal() -> None:
    presign, _ = api((201, created(urls=[{"part_number": 1, "href": "http://s3/1"}])))
    with pytest.raises(CallFailed) as raised:
        await presign.create_session(CREATE)
    assert_unexpected(raised, ApiCall.CREATE, "CreatedSession.urls[0].url: missing", 201)


async def test_state_answer_with_mistyped_part_is_fatal() -> None:
    presign, _ = api((200, state(parts=[{"part_number": "1", "etag": "e", "size": 10}])))
    with pytest.raises(CallFailed) as raised:
        await presign.fetch_state(FetchState("s1"))
    assert_unexpected(raised, ApiCall.STATE, "SessionState.parts[0].part_number: expected an integer, got '1'", 200)


async def test_urls_answer_that_is_not_a_list_is_fatal() -> None:
    presign, _ = api((200, {"urls": "http://s3/1", "expires_at": 1.0}))
    with pytest.raises(CallFailed) as raised:
        await presign.request_urls(RequestUrls("s1", ((1, "c1"),)))
    assert_unexpected(raised, ApiCall.URLS, "SignedUrls.urls: expected a list", 200)


async def test_complete_answer_missing_etag_is_fatal() -> None:
    presign, _ = api((200, {"session_id": "s1", "status": "completed", "object_key": "k", "size": 10}))
    with pytest.raises(CallFailed) as raised:
        await presign.complete(CompleteUpload("s1", ((1, "e1"),)))
    assert_unexpected(raised, ApiCall.COMPLETE, "CompletedUpload.etag: missing", 200)


async def test_non_json_success_page_is_fatal() -> None:
    """Adapters hand a non-JSON body over as ``{"detail": text}``: e.g. an HTML page from a misrouted proxy."""
    presign, _ = api((200, {"detail": "<html>welcome</html>"}))
    with pytest.raises(CallFailed) as raised:
        await presign.fetch_state(FetchState("s1"))
    assert_unexpected(raised, ApiCall.STATE, "SessionState.session_id: missing", 200)


# ---- unchanged behaviour ---------------------------------------------------------------------------------------


async def test_empty_success_body_stays_transient() -> None:
    presign, _ = api((200, None))
    with pytest.raises(CallFailed) as raised:
        await presign.fetch_state(FetchState("s1"))
    assert raised.value.failure.kind is FailureKind.TRANSIENT


async def test_error_statuses_are_still_classified() -> None:
    presign, _ = api((404, {"detail": "upload session not found"}))
    with pytest.raises(CallFailed) as raised:
        await presign.fetch_state(FetchState("s1"))
    assert raised.value.failure.kind is FailureKind.SESSION_GONE


async def test_good_answers_become_events_and_bodies_are_unchanged() -> None:
    done = {"session_id": "s1", "status": "completed", "object_key": "uploads/u/s1", "etag": "e-1", "size": 10}
    presign, http = api(
        (201, created()),
        (200, state()),
        (200, {"urls": [{"part_number": 2, "url": "http://s3/2b"}], "expires_at": 99}),
        (200, done),
        (204, None),
    )
    assert await presign.create_session(CREATE) == SessionCreated(
        now=42.0,
        session_id="s1",
        object_key="uploads/u/s1",
        part_size=8388608,
        part_count=2,
        urls={1: "http://s3/1", 2: "http://s3/2"},
        expires_at=1700000000.5,
        upload_token="tok",
    )
    assert await presign.fetch_state(FetchState("s1", "tok")) == StateFetched(
        now=42.0, status="uploading", parts=(RemotePart(1, '"abc"', 10),)
    )
    assert await presign.request_urls(RequestUrls("s1", ((2, "c2"),), "tok")) == UrlsReceived(
        now=42.0, urls={2: "http://s3/2b"}, expires_at=99.0
    )
    assert await presign.complete(CompleteUpload("s1", ((1, "e1"), (2, "e2")), "tok")) == UploadCompleted(
        now=42.0, etag="e-1"
    )
    await presign.abort("s1", "tok")

    token = {"X-Upload-Token": "tok"}
    assert http.sent == [
        (
            "POST",
            "/api/uploads",
            {
                "file_name": "a.bin",
                "size": 10,
                "content_type": "text/plain",
                "fingerprint": "fp",
                "checksum_algorithm": "SHA256",
            },
            None,
        ),
        ("GET", "/api/uploads/s1", None, token),
        ("POST", "/api/uploads/s1/urls", {"parts": [{"part_number": 2, "checksum_sha256": "c2"}]}, token),
        (
            "POST",
            "/api/uploads/s1/complete",
            {"parts": [{"part_number": 1, "etag": "e1"}, {"part_number": 2, "etag": "e2"}]},
            token,
        ),
        ("DELETE", "/api/uploads/s1", None, token),
    ]


async def test_already_uploaded_asks_for_completed_uploads_of_the_fingerprint() -> None:
    presign, http = api((200, [{"session_id": "old"}]), (200, []), (500, {"detail": "boom"}))
    assert await presign.already_uploaded("fp/1") is True
    assert await presign.already_uploaded("fp") is False
    assert await presign.already_uploaded("fp") is False  # best effort: an error answer is "not known"
    assert http.sent[0] == ("GET", "/api/uploads?status=completed&fingerprint=fp%2F1", None, None)
