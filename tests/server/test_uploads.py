"""The upload API against a real SeaweedFS: sessions, presigned URLs, parts held by S3, complete and abort."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from server.clock import utcnow
from server.db import Database
from server.models import UploadSession
from server.settings import Settings
from server.uploads import service
from server.uploads.service import UploadService
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.seaweed import SeaweedService
from tests.support.uploads import create_session, part_bytes, put_part, sha256, upload_all
from wire.plan import MiB, TiB

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def _bucket(live_server: LiveServer) -> str:
    return live_server.settings.s3_bucket


# ---- create ------------------------------------------------------------------------------------------------


def test_create_plans_parts_and_signs_first_urls(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    size = 2 * 8 * MiB + 3
    before = time.time()
    session = create_session(client, size, file_name="../../etc/passwd", content_type="text/plain", fingerprint="fp1")

    assert session["part_size"] == 8 * MiB
    assert session["part_count"] == 3
    assert session["status"] == "uploading"
    assert [u["part_number"] for u in session["urls"]] == [1, 2, 3]
    ttl = live_server.settings.presign_ttl_seconds
    assert before + ttl - 1 <= session["urls_expire_at"] <= time.time() + ttl
    # The key is the server's, not the file name.
    assert session["object_key"].startswith("uploads/")
    assert "passwd" not in session["object_key"] and ".." not in session["object_key"]
    url = urlsplit(session["urls"][0]["url"])
    assert f"{url.scheme}://{url.netloc}" == live_server.settings.s3_endpoint_url
    assert "X-Amz-Signature=" in url.query and "partNumber=1" in url.query

    # A PUT of real bytes to a returned URL lands in S3 as that part.
    data = os.urandom(8 * MiB)
    etag = put_part(session["urls"][0]["url"], data)
    listed = s3.list_parts(Bucket=_bucket(live_server), Key=session["object_key"], UploadId=session["upload_id"])
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [(1, etag, 8 * MiB)]


def test_create_stores_file_name_as_metadata(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    session = create_session(client, 5, file_name="résumé (final).txt", content_type="text/plain")
    parts = upload_all(client, session, b"hello")
    done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert done.status_code == 200, done.text
    head = s3.head_object(Bucket=_bucket(live_server), Key=session["object_key"])
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"]["file-name"] == "r%C3%A9sum%C3%A9%20%28final%29.txt"
    assert head["ContentDisposition"] == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%28final%29.txt"
    listed = client.get("/api/uploads").json()
    assert listed[0]["file_name"] == "résumé (final).txt"


def test_first_batch_is_capped(client: httpx.Client, live_server: LiveServer) -> None:
    session = create_session(client, 100 * 5 * MiB, part_size=5 * MiB)
    assert session["part_count"] == 100
    assert [u["part_number"] for u in session["urls"]] == list(range(1, live_server.settings.url_batch_size + 1))


def test_preferred_part_size_is_rounded_and_bounded(client: httpx.Client) -> None:
    small = create_session(client, 100 * MiB, part_size=1)
    assert small["part_size"] == 5 * MiB  # S3 minimum
    odd = create_session(client, 100 * MiB, part_size=6 * MiB + 1)
    assert odd["part_size"] == 7 * MiB


def test_empty_file_is_one_empty_part(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    session = create_session(client, 0)
    assert session["part_count"] == 1 and len(session["urls"]) == 1
    etag = put_part(session["urls"][0]["url"], b"")
    done = client.post(
        f"/api/uploads/{session['session_id']}/complete", json={"parts": [{"part_number": 1, "etag": etag}]}
    )
    assert done.status_code == 200, done.text
    assert done.json()["size"] == 0
    obj = s3.get_object(Bucket=_bucket(live_server), Key=session["object_key"])
    assert obj["Body"].read() == b""


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ({"file_name": "a", "size": -1}, ["body", "size"], "greater than or equal to 0"),
        ({"file_name": "", "size": 1}, ["body", "file_name"], "at least 1 character"),
        ({"size": 1}, ["body", "file_name"], "Field required"),
        ({"file_name": "x" * 1025, "size": 1}, ["body", "file_name"], "at most 1024 characters"),
        ({"file_name": "a", "size": 1, "fingerprint": "f" * 257}, ["body", "fingerprint"], "at most 256"),
        ({"file_name": "a", "size": 1, "part_size": 0}, ["body", "part_size"], "greater than 0"),
        ({"file_name": "a", "size": "big"}, ["body", "size"], "valid integer"),
    ],
)
def test_create_rejects_bad_input(client: httpx.Client, body: dict[str, Any], where: list[str], words: str) -> None:
    response = client.post("/api/uploads", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["loc"] == where and words in e["msg"] for e in errors), errors


def test_create_rejects_files_over_5_tib(client: httpx.Client) -> None:
    response = client.post("/api/uploads", json={"file_name": "huge", "size": 5 * TiB + 1})
    assert response.status_code == 413  # MAX_FILE_SIZE is at most 5 TiB, S3's limit (the plan refuses more too)
    assert "the largest this service accepts is" in response.json()["detail"]
    assert client.get("/api/uploads").json() == []


# ---- presign more ----------------------------------------------------------------------------------------------


def test_presign_more_urls(client: httpx.Client, live_server: LiveServer) -> None:
    session = create_session(client, 40 * 5 * MiB, part_size=5 * MiB)
    sid = session["session_id"]
    before = time.time()
    response = client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [17, 40, 17]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [u["part_number"] for u in body["urls"]] == [17, 40]
    assert "partNumber=40" in body["urls"][1]["url"]
    assert body["expires_at"] >= before + live_server.settings.presign_ttl_seconds - 1
    # The URL really works for that part (with exactly the part's planned length, which is signed into it).
    put_part(body["urls"][1]["url"], b"l" * 5 * MiB)


@pytest.mark.parametrize(
    ("numbers", "words"),
    [([0], "outside 1..40"), ([41, 1], "41 are outside 1..40"), ([], "at least 1"), (list(range(1, 102)), "at most")],
)
def test_presign_rejects_bad_part_numbers(client: httpx.Client, numbers: list[int], words: str) -> None:
    session = create_session(client, 40 * 5 * MiB, part_size=5 * MiB)
    response = client.post(f"/api/uploads/{session['session_id']}/urls", json={"part_numbers": numbers})
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


# ---- state -----------------------------------------------------------------------------------------------------


def test_state_reports_parts_held_by_s3(client: httpx.Client) -> None:
    session = create_session(client, 2 * 5 * MiB + 1000, part_size=5 * MiB, fingerprint="abc")
    urls = {u["part_number"]: u["url"] for u in session["urls"]}
    e1 = put_part(urls[1], b"1" * 5 * MiB)
    e3 = put_part(urls[3], b"3" * 1000)
    state = client.get(f"/api/uploads/{session['session_id']}")
    assert state.status_code == 200
    body = state.json()
    assert body["status"] == "uploading"
    assert body["fingerprint"] == "abc"
    assert body["parts"] == [
        {"part_number": 1, "etag": e1, "size": 5 * MiB},
        {"part_number": 3, "etag": e3, "size": 1000},
    ]
    assert body["bytes_on_server"] == 5 * MiB + 1000


def test_part_sent_twice_reports_and_completes_with_the_usable_copy(
    client: httpx.Client, s3: S3Client, live_server: LiveServer
) -> None:
    """SeaweedFS keeps every copy of a re-sent part and lists them all, newest not first within a second.

    Part URLs sign the part's length, so wrong-sized copies are put with the store's own credentials here."""
    data = os.urandom(6 * MiB)
    session = create_session(client, len(data), part_size=5 * MiB)
    sid = session["session_id"]
    urls = {u["part_number"]: u["url"] for u in session["urls"]}
    where = {"Bucket": _bucket(live_server), "Key": session["object_key"], "UploadId": session["upload_id"]}
    e1 = put_part(urls[1], part_bytes(data, 5 * MiB, 1))
    s3.upload_part(**where, PartNumber=2, Body=b"truncated")  # a bad copy first...
    e2 = put_part(urls[2], part_bytes(data, 5 * MiB, 2))  # ...then the right one
    s3.upload_part(**where, PartNumber=2, Body=b"junk")  # ...and a late bad one

    parts = client.get(f"/api/uploads/{sid}").json()["parts"]
    assert parts == [
        {"part_number": 1, "etag": e1, "size": 5 * MiB},
        {"part_number": 2, "etag": e2, "size": 1 * MiB},
    ]
    done = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["size"] == len(data)


def test_state_pages_past_1000_parts(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    count = 1003
    session = create_session(client, count * 5 * MiB, part_size=5 * MiB)
    assert session["part_count"] == count
    bucket, key, upload_id = _bucket(live_server), session["object_key"], session["upload_id"]

    # ListParts does not check part sizes, so tiny parts stand in for 5 MiB ones.
    def upload(number: int) -> str:
        return s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=str(number).encode())[
            "ETag"
        ]

    with ThreadPoolExecutor(16) as pool:
        etags = list(pool.map(upload, range(1, count + 1)))
    # S3 itself gives at most 1,000 per page: the server has to follow the marker.
    first_page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1000)
    assert first_page["IsTruncated"] and len(first_page["Parts"]) == 1000

    body = client.get(f"/api/uploads/{session['session_id']}").json()
    assert [p["part_number"] for p in body["parts"]] == list(range(1, count + 1))
    assert [p["etag"] for p in body["parts"]] == etags
    assert body["bytes_on_server"] == sum(len(str(n)) for n in range(1, count + 1))


def test_state_is_410_when_storage_lost_the_upload(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    session = create_session(client, 10)
    s3.abort_multipart_upload(Bucket=_bucket(live_server), Key=session["object_key"], UploadId=session["upload_id"])
    response = client.get(f"/api/uploads/{session['session_id']}")
    assert response.status_code == 410
    assert response.json()["detail"] == "upload session expired on storage"


def test_list_sessions_newest_first(live_server: LiveServer) -> None:
    with live_server.client() as fresh:
        ids = [create_session(fresh, n, file_name=f"f{n}")["session_id"] for n in range(3)]
        listed = fresh.get("/api/uploads")
        assert listed.status_code == 200
        body = listed.json()
        assert [s["session_id"] for s in body] == ids[::-1]
        assert "parts" not in body[0]
        assert body[0]["file_name"] == "f2" and body[0]["status"] == "uploading"
        assert [s["session_id"] for s in fresh.get("/api/uploads", params={"limit": 1}).json()] == [ids[2]]


# ---- complete --------------------------------------------------------------------------------------------------


def test_complete_assembles_the_exact_bytes(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    data = os.urandom(2 * 5 * MiB + 12345)
    session = create_session(client, len(data), part_size=5 * MiB, content_type="application/zip")
    parts = upload_all(client, session, data)
    sid = session["session_id"]

    response = client.post(f"/api/uploads/{sid}/complete", json={"parts": parts})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "completed"
    assert result["size"] == len(data)
    assert result["object_key"] == session["object_key"]

    obj = s3.get_object(Bucket=_bucket(live_server), Key=session["object_key"])
    assert sha256(obj["Body"].read()) == sha256(data)
    assert obj["ETag"] == result["etag"]
    assert obj["ContentType"] == "application/zip"

    state = client.get(f"/api/uploads/{sid}").json()
    assert state["status"] == "completed"
    assert state["parts"] == []
    assert state["bytes_on_server"] == len(data)
    assert state["etag"] == result["etag"] and state["completed_at"] is not None


def test_complete_is_idempotent(client: httpx.Client) -> None:
    data = os.urandom(6 * MiB)
    session = create_session(client, len(data), part_size=5 * MiB)
    parts = upload_all(client, session, data)
    sid = session["session_id"]
    first = client.post(f"/api/uploads/{sid}/complete", json={"parts": parts})
    assert first.status_code == 200
    again = client.post(f"/api/uploads/{sid}/complete", json={"parts": parts})
    different = client.post(f"/api/uploads/{sid}/complete", json={"parts": [{"part_number": 1, "etag": '"nonsense"'}]})
    assert again.status_code == different.status_code == 200
    assert again.json() == different.json() == first.json()


def test_concurrent_completes_agree(client: httpx.Client) -> None:
    data = os.urandom(11 * MiB)
    session = create_session(client, len(data), part_size=5 * MiB)
    parts = upload_all(client, session, data)
    url = f"{client.base_url}/api/uploads/{session['session_id']}/complete"

    def complete(_: int) -> httpx.Response:
        return httpx.post(url, json={"parts": parts}, cookies=client.cookies, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(complete, range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1


def test_complete_recovers_when_storage_completed_but_the_answer_was_lost(
    client: httpx.Client, live_server: LiveServer, s3: S3Client
) -> None:
    """S3 completed the upload (an earlier attempt) but the server never recorded it: the object is the proof."""
    data = os.urandom(7 * MiB)
    session = create_session(client, len(data), part_size=5 * MiB)
    parts = upload_all(client, session, data)
    done_by_s3 = s3.complete_multipart_upload(
        Bucket=_bucket(live_server),
        Key=session["object_key"],
        UploadId=session["upload_id"],
        MultipartUpload={"Parts": [{"PartNumber": p["part_number"], "ETag": p["etag"]} for p in parts]},
    )
    s3.abort_multipart_upload(  # SeaweedFS would still answer a repeated complete: make S3 forget the upload
        Bucket=_bucket(live_server), Key=session["object_key"], UploadId=session["upload_id"]
    )
    response = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert response.status_code == 200, response.text
    assert response.json()["etag"] == done_by_s3["ETag"]
    assert response.json()["status"] == "completed"


def test_complete_is_410_when_storage_lost_the_upload(
    client: httpx.Client, live_server: LiveServer, s3: S3Client
) -> None:
    session = create_session(client, 3)
    parts = upload_all(client, session, b"abc")
    s3.abort_multipart_upload(Bucket=_bucket(live_server), Key=session["object_key"], UploadId=session["upload_id"])
    response = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
    assert response.status_code == 410
    assert response.json()["detail"] == "upload session expired on storage"
    # From then on the session says so itself, like one the janitor expired (it no longer asks S3).
    state = client.get(f"/api/uploads/{session['session_id']}")
    assert state.status_code == 200 and state.json()["status"] == "expired"
    assert client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts}).status_code == 410


def test_complete_with_missing_parts_is_409(client: httpx.Client) -> None:
    session = create_session(client, 5 * 5 * MiB, part_size=5 * MiB)
    response = client.post(
        f"/api/uploads/{session['session_id']}/complete",
        json={"parts": [{"part_number": 1, "etag": '"a"'}, {"part_number": 3, "etag": '"b"'}]},
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["missing"] == [2, 4, 5]
    assert "missing parts 2, 4-5" in detail["message"]


def test_complete_with_extra_or_repeated_parts(client: httpx.Client) -> None:
    session = create_session(client, 10)
    sid = session["session_id"]
    extra = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": '"a"'}, {"part_number": 2, "etag": '"b"'}]},
    )
    assert extra.status_code == 409
    assert extra.json()["detail"]["unexpected"] == [2]
    repeated = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": '"a"'}, {"part_number": 1, "etag": '"b"'}]},
    )
    assert repeated.status_code == 422
    assert "more than once" in repeated.json()["detail"]


def test_complete_with_a_part_s3_does_not_hold_is_409(client: httpx.Client) -> None:
    data = os.urandom(6 * MiB)
    session = create_session(client, len(data), part_size=5 * MiB)
    sid = session["session_id"]
    urls = {u["part_number"]: u["url"] for u in session["urls"]}
    e1 = put_part(urls[1], part_bytes(data, 5 * MiB, 1))
    not_sent = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": '"0123"'}]},
    )
    assert not_sent.status_code == 409
    assert not_sent.json()["detail"]["missing"] == [2]

    e2 = put_part(urls[2], part_bytes(data, 5 * MiB, 2))
    wrong_etag = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": '"0123456789abcdef"'}]},
    )
    assert wrong_etag.status_code == 409
    assert wrong_etag.json()["detail"]["code"] == "InvalidPart"

    # Nothing is stuck: the right list completes afterwards.
    assert client.get(f"/api/uploads/{sid}").json()["status"] == "uploading"
    good = client.post(
        f"/api/uploads/{sid}/complete",
        json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}]},
    )
    assert good.status_code == 200, good.text


def test_complete_refuses_parts_of_the_wrong_size(client: httpx.Client, s3: S3Client, live_server: LiveServer) -> None:
    """A part URL cannot take another length (it is signed); a store holding one anyway still fails completion."""
    session = create_session(client, 6 * MiB, part_size=5 * MiB)
    urls = {u["part_number"]: u["url"] for u in session["urls"]}
    e1 = put_part(urls[1], b"x" * (5 * MiB))
    e2 = s3.upload_part(
        Bucket=_bucket(live_server),
        Key=session["object_key"],
        UploadId=session["upload_id"],
        PartNumber=2,
        Body=b"y" * 10,  # planned: 1 MiB
    )["ETag"]
    response = client.post(
        f"/api/uploads/{session['session_id']}/complete",
        json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}]},
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["wrong_size"] == [2]
    assert "holds 10 bytes, expected 1048576" in detail["message"]


# ---- abort -----------------------------------------------------------------------------------------------------


def test_abort(client: httpx.Client, live_server: LiveServer, s3: S3Client) -> None:
    session = create_session(client, 6 * MiB, part_size=5 * MiB)
    sid = session["session_id"]
    put_part(session["urls"][1]["url"], b"z" * MiB)

    assert client.delete(f"/api/uploads/{sid}").status_code == 204
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=_bucket(live_server), Key=session["object_key"], UploadId=session["upload_id"])
    assert client.delete(f"/api/uploads/{sid}").status_code == 204  # idempotent

    state = client.get(f"/api/uploads/{sid}").json()
    assert state["status"] == "aborted" and state["parts"] == [] and state["bytes_on_server"] == 0
    assert client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]}).status_code == 409
    complete = client.post(f"/api/uploads/{sid}/complete", json={"parts": [{"part_number": 1, "etag": '"a"'}]})
    assert complete.status_code == 409


def test_completed_upload_cannot_be_aborted(client: httpx.Client) -> None:
    session = create_session(client, 3)
    parts = upload_all(client, session, b"abc")
    sid = session["session_id"]
    assert client.post(f"/api/uploads/{sid}/complete", json={"parts": parts}).status_code == 200
    response = client.delete(f"/api/uploads/{sid}")
    assert response.status_code == 409
    assert client.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]}).status_code == 409


# ---- ownership -------------------------------------------------------------------------------------------------


def test_another_users_session_is_404(client: httpx.Client, live_server: LiveServer) -> None:
    session = create_session(client, 10)
    sid = session["session_id"]
    with live_server.client() as other:
        assert other.get(f"/api/uploads/{sid}").status_code == 404
        assert other.post(f"/api/uploads/{sid}/urls", json={"part_numbers": [1]}).status_code == 404
        complete = other.post(f"/api/uploads/{sid}/complete", json={"parts": [{"part_number": 1, "etag": '"a"'}]})
        assert complete.status_code == 404
        assert other.delete(f"/api/uploads/{sid}").status_code == 404
        assert other.get("/api/uploads").json() == []
        # Same answer as for an id that does not exist at all.
        assert other.get("/api/uploads/nope").json() == other.get(f"/api/uploads/{sid}").json()
    assert client.get(f"/api/uploads/{sid}").json()["status"] == "uploading"


# ---- settings that shape URLs ----------------------------------------------------------------------------------


def test_public_endpoint_and_ttl_shape_urls(make_live_server: MakeLiveServer, seaweed: SeaweedService) -> None:
    """URLs are signed for the public endpoint's host (here ``localhost``, the same SeaweedFS) with the TTL."""
    port = urlsplit(seaweed.endpoint_url).port
    server: LiveServer = make_live_server(s3_public_endpoint_url=f"http://localhost:{port}", presign_ttl_seconds=2)
    settings: Settings = server.settings
    with server.client() as http:
        session = create_session(http, 10)
    url = session["urls"][0]["url"]
    assert url.startswith(f"http://localhost:{port}/{settings.s3_bucket}/")
    assert "X-Amz-Expires=2&" in url
    assert session["urls_expire_at"] == pytest.approx(time.time() + 2, abs=1)
    put_part(url, b"in time..!")  # the 10 bytes planned
    # The same URL with the host SeaweedFS sees changed no longer verifies: the host is signed.
    moved = httpx.put(url.replace("localhost", "127.0.0.1", 1), content=b"x")
    assert moved.status_code == 403
    signed = datetime.strptime(parse_qs(urlsplit(url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    time.sleep(max(0.0, signed.timestamp() + 2 + 1 - time.time()))  # past the 2 s lifetime (whole seconds) by 1 s
    expired = httpx.put(url, content=b"too late")
    assert expired.status_code == 403


# ---- finishing races -------------------------------------------------------------------------------------------


def test_a_held_finish_lease_makes_others_wait_then_409(
    client: httpx.Client, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one request completes or aborts a session, another waits for it (bounded), never runs alongside."""
    monkeypatch.setattr(service, "LEASE_WAIT_SECONDS", 0.3)
    session = create_session(client, 3)
    sid = session["session_id"]
    assert live_server.app is not None
    database: Database = live_server.app.state.database
    with database.sessions() as db:
        row = db.get(UploadSession, sid)
        assert row is not None
        uploads = UploadService(db, live_server.app.state.storage)
        token = uploads.take_lease(row)
        assert token is not None
        assert uploads.take_lease(row) is None  # exactly one holder

        busy = client.delete(f"/api/uploads/{sid}")
        assert busy.status_code == 409
        assert "another request is finishing" in busy.json()["detail"]
        parts = upload_all(client, session, b"abc")
        busy = client.post(f"/api/uploads/{sid}/complete", json={"parts": parts})
        assert busy.status_code == 409

        uploads.release_lease(row, token)
    done = client.post(f"/api/uploads/{sid}/complete", json={"parts": parts})
    assert done.status_code == 200, done.text


def test_an_abandoned_lease_is_taken_over(client: httpx.Client, live_server: LiveServer) -> None:
    session = create_session(client, 3)
    sid = session["session_id"]
    assert live_server.app is not None
    database: Database = live_server.app.state.database
    with database.sessions() as db:
        db.execute(
            update(UploadSession)
            .where(UploadSession.id == sid)
            .values(finish_lease="dead", finish_lease_at=utcnow() - service.LEASE_HOLD - timedelta(seconds=1))
        )
        db.commit()
    assert client.delete(f"/api/uploads/{sid}").status_code == 204
    assert client.get(f"/api/uploads/{sid}").json()["status"] == "aborted"
