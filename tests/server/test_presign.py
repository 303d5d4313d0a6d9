"""Part URLs from :class:`server.presign.PartSigner` are the URLs boto3's ``generate_presigned_url`` gives: same path,
same query, same signed headers, same signature (S3 accepting them is what every upload test shows)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import pytest

from server.presign import PartSigner
from server.storage import S3Credentials, make_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CREDENTIALS = S3Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-3")
CHECKSUM = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@functools.cache
def _client(endpoint: str) -> S3Client:
    return make_client(endpoint, CREDENTIALS)


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _both(endpoint: str, key: str, upload_id: str, checksum: str | None) -> tuple[str, str]:
    """The client's URL and the signer's, signed within the same second (SigV4 dates have seconds)."""
    client = _client(endpoint)
    signer = PartSigner(
        endpoint, "my-bucket", CREDENTIALS.access_key_id, CREDENTIALS.secret_access_key, CREDENTIALS.region
    )
    params: dict[str, str | int] = {
        "Bucket": "my-bucket",
        "Key": key,
        "UploadId": upload_id,
        "PartNumber": 7,
        "ContentLength": 5_242_880,
    }
    if checksum is not None:
        params["ChecksumSHA256"] = checksum
    for _attempt in range(3):  # a second boundary between the two signatures: sign both again
        expected = client.generate_presigned_url("upload_part", Params=params, ExpiresIn=900, HttpMethod="PUT")
        actual = signer.upload_part(key, upload_id, 7, 900, 5_242_880, checksum)
        if _query(expected)["X-Amz-Date"] == _query(actual)["X-Amz-Date"]:
            return expected, actual
    raise AssertionError("three second boundaries in a row")


@pytest.mark.parametrize(
    ("endpoint", "key", "upload_id", "checksum"),
    [
        ("http://127.0.0.1:8333", "uploads/u1/0f3c/report.pdf", "upload-1", CHECKSUM),
        ("https://s3.example.com/prefix/", "uploads/ü ser+x/a~b%c d.bin", "abc/=+ÿ", CHECKSUM),
        ("http://127.0.0.1:8333", "uploads/u1/plain", "id", None),
    ],
)
def test_part_urls_are_the_clients_urls(endpoint: str, key: str, upload_id: str, checksum: str | None) -> None:
    expected, actual = _both(endpoint, key, upload_id, checksum)
    want, got = urlsplit(expected), urlsplit(actual)
    assert (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path)
    assert sorted(parse_qsl(got.query)) == sorted(parse_qsl(want.query))
    signed = _query(actual)["X-Amz-SignedHeaders"].split(";")
    assert signed == (["content-length", "host", "x-amz-checksum-sha256"] if checksum else ["content-length", "host"])
