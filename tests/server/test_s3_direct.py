"""The upload calls :class:`server.storage.Storage` sends itself (``server/s3_direct.py``) against real SeaweedFS: the
store sees what the boto3 client would have sent (metadata, type, disposition, checksums), the answers read back
are the client's (parts listed, ETag, composite checksum, bytes), and failures map to the same domain errors."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from server.storage import (
    InvalidParts,
    S3Credentials,
    Storage,
    StorageUnavailable,
    UploadNotFound,
    content_disposition,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from tests.support.seaweed import SeaweedService

KEY = "uploads/someone/Rapport final für été ~ 2026 (v2)+.txt"  # spaces, unicode, reserved characters
PART = b"x" * (5 * 1024 * 1024)
LAST = b"the end\n"


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedService, s3: S3Client) -> str:
    name = seaweed.new_bucket_name("direct")
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def storage(seaweed: SeaweedService, bucket: str) -> Storage:
    return Storage(endpoint_url=seaweed.endpoint_url, bucket=bucket, credentials=seaweed.credentials)


def test_an_upload_through_the_direct_calls_is_what_the_client_sees(
    storage: Storage, s3: S3Client, bucket: str
) -> None:
    upload_id = storage.create_multipart(KEY, "text/plain", file_name="été 2026.txt", checksum_algorithm="SHA256")
    checksums = {1: _sha256(PART), 2: _sha256(LAST)}
    etags = {
        n: s3.upload_part(
            Bucket=bucket, Key=KEY, UploadId=upload_id, PartNumber=n, Body=body, ChecksumSHA256=checksums[n]
        )["ETag"]
        for n, body in ((1, PART), (2, LAST))
    }

    listed = storage.list_parts(KEY, upload_id)
    by_client = s3.list_parts(Bucket=bucket, Key=KEY, UploadId=upload_id)["Parts"]
    assert [(p.number, p.etag, p.size, p.last_modified) for p in listed] == [
        (p["PartNumber"], p["ETag"], p["Size"], p["LastModified"]) for p in by_client
    ]
    assert [p.etag for p in listed] == [etags[1], etags[2]]

    assembled = storage.complete(KEY, upload_id, sorted(etags.items()), checksums)
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert assembled.etag == head["ETag"]
    assert assembled.checksum_sha256 is not None
    assert assembled.checksum_sha256.split("-")[0] == head["ChecksumSHA256"].split("-")[0]
    assert head["ContentType"] == "text/plain"
    assert head["ContentDisposition"] == content_disposition("été 2026.txt")
    assert head["Metadata"] == {"file-name": "%C3%A9t%C3%A9%202026.txt"}

    assert storage.read_head(KEY, 10) == PART[:10]
    assert storage.read_head(KEY, len(PART) + 100) == PART + LAST  # shorter than asked: all of it


def test_failures_map_to_the_same_domain_errors(storage: Storage, s3: S3Client, bucket: str) -> None:
    with pytest.raises(UploadNotFound):
        storage.list_parts("uploads/nobody/none", "no-such-upload")

    upload_id = storage.create_multipart("uploads/someone/refused", "application/octet-stream")
    s3.upload_part(Bucket=bucket, Key="uploads/someone/refused", UploadId=upload_id, PartNumber=1, Body=LAST)
    with pytest.raises(InvalidParts) as refused:
        storage.complete("uploads/someone/refused", upload_id, [(1, '"0123456789abcdef0123456789abcdef"')])
    assert refused.value.code == "InvalidPart"

    storage.abort("uploads/someone/refused", upload_id)
    with pytest.raises(UploadNotFound):
        storage.complete("uploads/someone/refused", upload_id, [(1, '"0123456789abcdef0123456789abcdef"')])


def test_a_store_nobody_answers_is_unavailable() -> None:
    unreachable = Storage(
        endpoint_url="http://127.0.0.1:9", bucket="any", credentials=S3Credentials("key", "secret", "us-east-1")
    )
    with pytest.raises(StorageUnavailable):
        unreachable.create_multipart("uploads/someone/x", "text/plain")
    with pytest.raises(StorageUnavailable):
        unreachable.list_parts("uploads/someone/x", "id")


class _Meddling(http.server.BaseHTTPRequestHandler):
    """Forwards to the store (``Host`` unchanged, so signatures hold), but answers the first ``faults`` requests
    itself: S3's "200 OK with an error inside" for a complete, 503 ServiceUnavailable for anything else."""

    store: tuple[str, int]
    faults: int
    seen: list[str]

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(f"{self.command} {self.path}")
        if len(self.seen) <= self.faults:
            complete = self.command == "POST" and "uploadId=" in self.path
            status, code = (200, "InternalError") if complete else (503, "ServiceUnavailable")
            answer = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        else:
            connection = http.client.HTTPConnection(*self.store, timeout=30)
            connection.request(self.command, self.path, body, dict(self.headers))
            response = connection.getresponse()
            status, answer = response.status, response.read()
            connection.close()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _any

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("faults", [2, 3])
def test_transient_answers_are_retried_three_attempts_in_all(
    seaweed: SeaweedService, s3: S3Client, bucket: str, faults: int
) -> None:
    store = urlsplit(seaweed.endpoint_url)
    seen: list[str] = []
    handler = type("Handler", (_Meddling,), {"store": (store.hostname, store.port), "faults": 0, "seen": seen})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            meddled = Storage(
                endpoint_url=f"http://127.0.0.1:{proxy.server_address[1]}",
                bucket=bucket,
                credentials=seaweed.credentials,
            )
            key = f"uploads/someone/meddled-{faults}"
            upload_id = meddled.create_multipart(key, "text/plain")
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=LAST)["ETag"]
            handler.faults, seen[:] = faults, []
            if faults < 3:
                assert meddled.complete(key, upload_id, [(1, etag)]).etag
                assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(LAST)
            else:
                with pytest.raises(StorageUnavailable, match="InternalError"):
                    meddled.complete(key, upload_id, [(1, etag)])
            assert len(seen) == 3
            seen[:] = []
            handler.faults = faults
            if faults < 3:
                assert meddled.read_head(key, 3) == LAST[:3]
            else:
                with pytest.raises(StorageUnavailable, match="ServiceUnavailable"):
                    meddled.read_head(key, 3)
            assert len(seen) == 3
        finally:
            proxy.shutdown()
