"""The nginx launcher against the real store: a presigned part PUT through the store route lands with its checksum;
requests that try to leave the route, the bucket or the method are refused before the store sees them."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.nginx import Nginx, NginxConfig, NginxError
from server.storage import Storage
from tests.support.live_server import LiveServer
from tests.support.ports import free_port
from tests.support.seaweed import SeaweedService


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedService) -> str:
    name = seaweed.new_bucket_name("nginx")
    seaweed.client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def proxy(
    seaweed: SeaweedService, live_server: LiveServer, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    app = live_server.base_url
    dead = f"127.0.0.1:{free_port()}"  # an app instance that is down: GETs fail over to the live one
    config = NginxConfig(
        work_dir=tmp_path_factory.mktemp("nginx"),
        app_upstreams=[dead, app],
        store_endpoint_url=seaweed.endpoint_url,
        bucket=bucket,
        listen_port=free_port(),
        new_session=False,
    )
    with Nginx(config) as nginx:
        yield nginx


@pytest.fixture(scope="module")
def storage(seaweed: SeaweedService, bucket: str) -> Storage:
    return Storage(endpoint_url=seaweed.endpoint_url, bucket=bucket, credentials=seaweed.credentials)


def _through_proxy(url: str, proxy: Nginx, store: str) -> str:
    assert url.startswith(store + "/")
    return proxy.config.store_base_url + url.removeprefix(store)


def _raw(proxy: Nginx, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """A request with exactly this target on the wire (httpx would normalise dot segments away)."""
    connection = http.client.HTTPConnection(proxy.config.listen_host, proxy.config.listen_port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_presigned_part_put_through_the_store_route_lands_with_its_checksum(
    proxy: Nginx, storage: Storage, seaweed: SeaweedService, bucket: str
) -> None:
    key = "uploads/someone/a b:c"  # a space and a colon: percent-encoded in the path, passed on byte for byte
    upload_id = storage.create_multipart(key, "application/octet-stream", checksum_algorithm="SHA256")
    data = os.urandom(5 * 1024 * 1024)
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    url = storage.presign_part(key, upload_id, 1, 60, checksum, content_length=len(data))
    response = httpx.put(
        _through_proxy(url, proxy, seaweed.endpoint_url),
        content=data,
        headers={"x-amz-checksum-sha256": checksum, "Cookie": "smartcat=secret"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"]
    assert response.headers["cache-control"] == "no-store"
    # S3 checked the checksum the URL signed: a flipped byte is refused through the proxy too.
    flipped = bytes([data[0] ^ 1]) + data[1:]
    bad = httpx.put(
        _through_proxy(url, proxy, seaweed.endpoint_url), content=flipped, headers={"x-amz-checksum-sha256": checksum}
    )
    assert bad.status_code == 400 and "BadDigest" in bad.text
    storage.complete(key, upload_id, [(1, response.headers["etag"])], {1: checksum})
    stored = seaweed.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    # The signature never reaches the access log.
    assert "X-Amz-Signature" not in (proxy.config.work_dir / "access.log").read_text()


def test_the_app_route_reaches_a_live_instance_when_another_is_down(proxy: Nginx) -> None:
    for _ in range(4):
        assert httpx.get(proxy.origin + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("target", "statuses"),
    [
        ("/store/../api/uploads", {404, 405}),  # merged to /api/...: the app's answer, never the store's
        ("/store/{bucket}/../other/k?uploadId=1&partNumber=1&X-Amz-Signature=x", {400, 404}),
        ("/store/{bucket}/%2e%2e/other/k?uploadId=1&partNumber=1&X-Amz-Signature=x", {400, 404}),
        ("/store/{bucket}/k%2f..%2f..%2fother?uploadId=1&partNumber=1&X-Amz-Signature=x", {400, 404}),
        ("/store/{bucket}/k%2fx?uploadId=1&partNumber=1&X-Amz-Signature=x", {400}),
        ("/store/other-bucket/k?uploadId=1&partNumber=1&X-Amz-Signature=x", {404}),
        ("/store/{bucket}/k?X-Amz-Signature=x", {403}),  # not a part upload
        ("/store/{bucket}/k?uploadId=1&partNumber=1", {403}),  # not presigned
        ("/store/{bucket}//k?uploadId=1&partNumber=1&X-Amz-Signature=x", {400}),
    ],
)
def test_requests_that_leave_the_store_route_are_refused(
    proxy: Nginx, bucket: str, target: str, statuses: set[int]
) -> None:
    status, _ = _raw(proxy, "PUT", target.format(bucket=bucket), b"x")
    assert status in statuses


def test_only_put_passes_the_store_route(proxy: Nginx, storage: Storage, seaweed: SeaweedService) -> None:
    key = "uploads/someone/listing"
    upload_id = storage.create_multipart(key, "application/octet-stream")
    url = _through_proxy(storage.presign_part(key, upload_id, 1, 60, content_length=1), proxy, seaweed.endpoint_url)
    for method in ("GET", "DELETE", "POST"):
        assert httpx.request(method, url).status_code == 403


def test_a_bad_config_is_refused_before_nginx_runs(tmp_path: Path) -> None:
    with pytest.raises(NginxError, match="bucket"):
        NginxConfig(
            work_dir=tmp_path, app_upstreams=["127.0.0.1:1"], store_endpoint_url="http://127.0.0.1:2", bucket="a;b"
        )
    with pytest.raises(NginxError, match="host:port"):
        NginxConfig(
            work_dir=tmp_path,
            app_upstreams=["127.0.0.1:1; include /etc/passwd"],
            store_endpoint_url="http://127.0.0.1:2",
            bucket="ok-bucket",
        )
