"""The bucket's CORS rule: browsers on our origins may PUT parts to S3 and read the ETag back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.uploads import create_session

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

EXTRA = "http://localhost:5173"


def test_bucket_cors_rule(make_live_server: MakeLiveServer, s3: S3Client) -> None:
    server: LiveServer = make_live_server(cors_extra_origins=[EXTRA])
    rules = s3.get_bucket_cors(Bucket=server.settings.s3_bucket)["CORSRules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["AllowedOrigins"] == [server.settings.public_origin, EXTRA]
    assert set(rule["AllowedMethods"]) == {"GET", "PUT", "POST", "HEAD"}
    assert rule["AllowedHeaders"] == ["*"]
    assert set(rule["ExposeHeaders"]) == {"ETag", "x-amz-checksum-sha256"}
    assert rule["MaxAgeSeconds"] == 3000

    with server.client() as http:
        url = create_session(http, 10)["urls"][0]["url"]
    origin = server.settings.public_origin

    # The browser's preflight for a part PUT.
    preflight = httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-amz-checksum-sha256",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers and "x-amz-checksum-sha256" in allowed_headers

    # The PUT itself: the ETag must be readable from script.
    put = httpx.put(url, content=b"0123456789", headers={"Origin": EXTRA})
    assert put.status_code == 200
    assert put.headers["access-control-allow-origin"] == EXTRA
    assert "etag" in put.headers["access-control-expose-headers"].lower()

    # Any other origin gets no CORS grant.
    stranger = httpx.options(url, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert "access-control-allow-origin" not in stranger.headers


def test_restart_rewrites_the_rule(make_live_server: MakeLiveServer, s3: S3Client) -> None:
    """A changed origin list takes effect on the next start (the rule is written on every start)."""
    server: LiveServer = make_live_server()
    bucket = server.settings.s3_bucket
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == [server.settings.public_origin]
    server.stop()
    server.settings = server.settings.model_copy(update={"cors_extra_origins": [EXTRA]})
    server.start()
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == [server.settings.public_origin, EXTRA]
