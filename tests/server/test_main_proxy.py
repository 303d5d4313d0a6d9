"""``python -m server`` (what ``make run`` starts) with nginx in front: one public URL for the app and the store
route, so the Background Fetch hand-off is on; and a clear refusal when ``EMBEDDED_PROXY=true`` finds no nginx."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import boto3
import httpx
import pytest
from pydantic import ValidationError

from server.__main__ import main, proxy_binary
from server.nginx import find_nginx
from server.settings import DEV_S3_ACCESS_KEY_ID, DEV_S3_SECRET_ACCESS_KEY
from tests.support.live_server import isolated_settings
from tests.support.ports import free_port, port_is_free
from tests.support.server_process import main_in_process, server_environment, start, stop
from tests.support.uploads import create_session, put_part, sha256


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until true (the children exit on their own schedule after ours does)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_make_run_serves_app_and_store_through_nginx_and_stops_all_three(tmp_path: Path) -> None:
    try:
        find_nginx()
    except RuntimeError:
        pytest.fail("nginx is not installed: make nginx")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env, s3 = server_environment(tmp_path, port)
    process, lines = start(tmp_path, env)
    try:
        output = "".join(lines)
        assert f"Background Fetch hand-off: on (part URLs under {origin}/store)\n" in lines, output
        assert f"Smartcat uploader running at {origin}\n" in lines, output
        nginx_pid = int((tmp_path / "var" / "nginx" / "nginx.pid").read_text())
        app_port = int(next(line for line in lines if "(app at 127.0.0.1:" in line).rsplit(":", 1)[1].rstrip(") .\n"))
        with httpx.Client(base_url=origin, timeout=30) as client:
            page = client.get("/")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert client.get("/api/runtime").json()["engine"]["background_fetch"] is True
            data = os.urandom(150 * 1024).hex().encode()
            session = create_session(client, len(data), file_name="notes.txt", checksum_algorithm="SHA256")
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
            signed = client.post(
                f"/api/uploads/{session['session_id']}/urls",
                json={"parts": [{"part_number": 1, "checksum_sha256": checksum}]},
            )
            url = signed.json()["urls"][0]["url"]
            assert url.startswith(f"{origin}/store/uploads/"), url
            parts = [{"part_number": 1, "etag": put_part(url, data, **{"x-amz-checksum-sha256": checksum})}]
            done = client.post(f"/api/uploads/{session['session_id']}/complete", json={"parts": parts})
            assert done.status_code == 200, done.text
        s3_client = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{s3}", region_name="us-east-1",
            aws_access_key_id=DEV_S3_ACCESS_KEY_ID, aws_secret_access_key=DEV_S3_SECRET_ACCESS_KEY,
        )  # fmt: skip
        stored = s3_client.get_object(Bucket="uploads", Key=session["object_key"])["Body"].read()
        assert sha256(stored) == sha256(data)
        # The store route carries presigned part PUTs only: not a read of what was stored.
        assert httpx.get(f"{origin}/store/uploads/{session['object_key']}").status_code == 403
    finally:
        stop(process, signal.SIGTERM)
    assert process.returncode == 0, "".join(lines) + (process.stdout.read() if process.stdout else "")
    _wait_for(lambda: not _alive(nginx_pid), "nginx outlived python -m server")
    for what, freed in (("nginx", port), ("the app", app_port), ("SeaweedFS", s3)):
        _wait_for(partial(port_is_free, freed), f"{what} still holds port {freed}")


def test_embedded_proxy_true_without_nginx_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process ``main()`` (the refusal comes before anything starts; a child would spend its time importing)."""
    port = free_port()
    missing = str(tmp_path / "no-such-nginx")
    env, s3 = server_environment(tmp_path, port, EMBEDDED_PROXY="true", NGINX_BINARY=missing)
    assert main_in_process(tmp_path, env, monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"EMBEDDED_PROXY=true but nginx was not found at NGINX_BINARY={missing}" in err
    assert "make nginx" in err
    assert not (tmp_path / "var" / "seaweedfs").exists() and port_is_free(s3) and port_is_free(port), "nothing started"


def test_nginx_that_cannot_start_stops_the_app_and_seaweedfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone else holds PORT: nginx cannot listen there, so ``main()`` says why and exits 1, leaving nothing up."""
    port = free_port()
    env, s3 = server_environment(tmp_path, port, EMBEDDED_PROXY="true", LOG_JSON="false")
    for name in os.environ:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    sigterm, root = signal.getsignal(signal.SIGTERM), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with socket.create_server(("127.0.0.1", port)):
        try:
            assert main() == 1
        finally:
            signal.signal(signal.SIGTERM, sigterm)
            root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr()
    assert f"error: nginx did not start: port {port} on 127.0.0.1 is taken" in err, out + err
    assert "Smartcat uploader running at" not in out
    app_port = int(out.split("(app at 127.0.0.1:", 1)[1].split(")", 1)[0])
    assert "Stopping SeaweedFS" in out
    for freed in (s3, app_port):
        _wait_for(partial(port_is_free, freed), f"port {freed} still held")


def test_embedded_proxy_settings_that_cannot_work_are_refused_naming_them() -> None:
    with pytest.raises(ValidationError, match="EMBEDDED_PROXY=true needs EMBEDDED_S3=true"):
        isolated_settings(embedded_proxy="true", embedded_s3=False)
    with pytest.raises(ValidationError, match="embedded_proxy"):
        isolated_settings(embedded_proxy="sometimes")
    # Without the embedded store there is nothing for the embedded proxy to front: auto means none.
    assert proxy_binary(isolated_settings(embedded_s3=False)) is None
    assert proxy_binary(isolated_settings(embedded_proxy="false")) is None
