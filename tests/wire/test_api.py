"""Wire types read answers strictly, naming type and field on any mismatch, and write the bodies the server takes."""

from __future__ import annotations

import dataclasses

import pytest

from tests.wire.answers import created, state
from wire.api import (
    CompletedPart,
    CompletedUpload,
    CompleteRequest,
    CreatedSession,
    CreateSessionRequest,
    PartChecksum,
    PartUrl,
    PresignUrlsRequest,
    SessionState,
    SignedUrls,
    StoredPart,
    WireError,
)

# ---- good answers ----------------------------------------------------------------------------------------------


def test_created_session_reads_every_field() -> None:
    session = CreatedSession.from_json(created())
    assert session == CreatedSession(
        session_id="s1",
        object_key="uploads/u/s1",
        upload_id="up1",
        part_size=8388608,
        part_count=2,
        status="uploading",
        urls=(PartUrl(1, "http://s3/1"), PartUrl(2, "http://s3/2")),
        urls_expire_at=1700000000.5,
        upload_token="tok",
    )


def test_unknown_fields_are_ignored_and_integers_are_numbers() -> None:
    session = CreatedSession.from_json(created(added_later={"x": 1}, urls_expire_at=1700000000))
    assert session.urls_expire_at == 1700000000.0 and isinstance(session.urls_expire_at, float)


def test_session_state_reads_parts_and_nullable_etag() -> None:
    read = SessionState.from_json(state())
    assert read.parts == (StoredPart(1, '"abc"', 10),)
    assert read.etag is None and read.bytes_on_server == 10 and read.status == "uploading"
    done = SessionState.from_json(state(status="completed", etag="e-1", parts=[]))
    assert done.etag == "e-1" and done.parts == ()


def test_signed_urls_and_completed_upload() -> None:
    signed = SignedUrls.from_json({"urls": [{"part_number": 3, "url": "u3"}], "expires_at": 5})
    assert signed == SignedUrls(urls=(PartUrl(3, "u3"),), expires_at=5.0)
    answer = {"session_id": "s1", "status": "completed", "object_key": "k", "etag": "e-2", "size": 0}
    assert CompletedUpload.from_json(answer) == CompletedUpload("s1", "completed", "k", "e-2", 0)


def test_the_servers_clock_is_read_when_given_and_optional_for_older_servers() -> None:
    signed = SignedUrls.from_json({"urls": [], "expires_at": 905, "server_now": 5})
    assert signed.server_now == 5.0 and signed.expires_at - signed.server_now == 900
    assert CreatedSession.from_json(created(server_now=1700000000)).server_now == 1700000000.0
    assert CreatedSession.from_json(created()).server_now is None
    with pytest.raises(WireError, match=r"SignedUrls.server_now: expected a number, got 'now'"):
        SignedUrls.from_json({"urls": [], "expires_at": 905, "server_now": "now"})


def test_values_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PartUrl(1, "u").url = "v"  # type: ignore[misc]


# ---- malformed answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(created(part_count=None), "CreatedSession.part_count: missing", id="missing-field"),
        pytest.param(
            created(part_size="abc"), "CreatedSession.part_size: expected an integer, got 'abc'", id="string-for-int"
        ),
        pytest.param(created(part_size=True), "CreatedSession.part_size: expected an integer, got True", id="bool-int"),
        pytest.param(created(part_size=8.0), "CreatedSession.part_size: expected an integer, got 8.0", id="float-int"),
        pytest.param(
            created(urls_expire_at=False), "CreatedSession.urls_expire_at: expected a number, got False", id="bool-num"
        ),
        pytest.param(
            created(urls_expire_at="soon"), "CreatedSession.urls_expire_at: expected a number, got 'soon'", id="str-num"
        ),
        pytest.param(created(session_id=7), "CreatedSession.session_id: expected a string, got 7", id="int-for-str"),
        pytest.param(
            created(urls={"1": "http://s3/1"}),
            "CreatedSession.urls: expected a list, got {'1': 'http://s3/1'}",
            id="urls-not-a-list",
        ),
        pytest.param(
            created(urls=["http://s3/1"]),
            "CreatedSession.urls[0]: expected a JSON object, got 'http://s3/1'",
            id="url-not-an-object",
        ),
        pytest.param(
            created(urls=[{"part_number": 1, "url": "u"}, {"part": 2, "url": "u"}]),
            "CreatedSession.urls[1].part_number: missing",
            id="renamed-nested-field",
        ),
        pytest.param(created(upload_token=None), "CreatedSession.upload_token: missing", id="missing-token"),
        pytest.param([created()], "CreatedSession: expected a JSON object, got [{", id="list-not-object"),
        pytest.param(None, "CreatedSession: expected a JSON object, got None", id="null"),
    ],
)
def test_created_session_refuses(answer: object, message: str) -> None:
    with pytest.raises(WireError) as raised:
        CreatedSession.from_json(answer)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(state(parts=None), "SessionState.parts: expected a list, got None", id="parts-null"),
        pytest.param(
            state(parts=[{"part_number": 1, "etag": 5, "size": 10}]),
            "SessionState.parts[0].etag: expected a string, got 5",
            id="etag-int",
        ),
        pytest.param(
            state(parts=[{"part_number": 1, "etag": "e", "size": False}]),
            "SessionState.parts[0].size: expected an integer, got False",
            id="size-bool",
        ),
        pytest.param(state(etag=1), "SessionState.etag: expected a string or null, got 1", id="etag-not-nullable-str"),
        pytest.param(
            {k: v for k, v in state().items() if k != "bytes_on_server"},
            "SessionState.bytes_on_server: missing",
            id="missing",
        ),
    ],
)
def test_session_state_refuses(answer: object, message: str) -> None:
    with pytest.raises(WireError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        SessionState.from_json(answer)


def test_other_answers_refuse_with_their_own_names() -> None:
    with pytest.raises(WireError, match=r"^SignedUrls\.expires_at: missing$"):
        SignedUrls.from_json({"urls": [], "urls_expire_at": 1.0})
    with pytest.raises(WireError, match=r"^CompletedUpload\.size: expected an integer, got '12'$"):
        CompletedUpload.from_json(
            {"session_id": "s", "status": "completed", "object_key": "k", "etag": "", "size": "12"}
        )
    with pytest.raises(WireError, match=r"^PartUrl\.url: missing$"):
        PartUrl.from_json({"part_number": 1})
    with pytest.raises(WireError, match=r"^StoredPart: expected a JSON object"):
        StoredPart.from_json("1")


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(WireError) as raised:
        CreatedSession.from_json(created(status=["x" * 500]))
    assert len(str(raised.value)) < 140 and str(raised.value).endswith("...")


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(WireError, ValueError)


# ---- request bodies --------------------------------------------------------------------------------------------


def test_create_request_leaves_out_what_is_not_given() -> None:
    assert CreateSessionRequest("a.bin", 3).to_json() == {
        "file_name": "a.bin",
        "size": 3,
        "content_type": "application/octet-stream",
        "fingerprint": "",
    }
    full = CreateSessionRequest("a.bin", 3, "text/plain", "fp", checksum_algorithm="SHA256", part_size=5)
    assert full.to_json() == {
        "file_name": "a.bin",
        "size": 3,
        "content_type": "text/plain",
        "fingerprint": "fp",
        "checksum_algorithm": "SHA256",
        "part_size": 5,
    }


def test_presign_and_complete_bodies() -> None:
    presign = PresignUrlsRequest((PartChecksum(1, "c1"), PartChecksum(2, "c2")))
    assert presign.to_json() == {
        "parts": [{"part_number": 1, "checksum_sha256": "c1"}, {"part_number": 2, "checksum_sha256": "c2"}]
    }
    complete = CompleteRequest((CompletedPart(1, '"e1"'),))
    assert complete.to_json() == {"parts": [{"part_number": 1, "etag": '"e1"'}]}
