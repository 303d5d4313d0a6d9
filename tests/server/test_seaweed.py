"""The embedded SeaweedFS: safe flags, clear failures, restarts that keep uploads, and ``python -m server``."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.seaweed import GRPC_OFFSET, SeaweedConfig, SeaweedError, SeaweedFS
from tests.support.live_server import LiveServer
from tests.support.ports import free_port, free_seaweed_ports, port_is_free
from tests.support.seaweed import SeaweedService
from tests.support.server_process import server_environment, stop
from tests.support.uploads import create_session, part_bytes, put_part

SAFE_FLAGS = [
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    "-master.telemetry=false",
    "-webdav=false",
    "-admin.ui=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
]


def test_command_line_is_local_and_quiet(tmp_path: Path) -> None:
    config = SeaweedConfig(
        data_dir=tmp_path,
        access_key_id="k",
        secret_access_key="s",
        s3_port=20001,
        master_port=20002,
        volume_port=20003,
        filer_port=20004,
        admin_port=20005,
        allowed_origins=["http://127.0.0.1:8000", "http://localhost:8000"],
        binary="/bin/weed",
    )
    command = SeaweedFS(config).command()
    assert command[:3] == ["/bin/weed", f"-logdir={tmp_path.resolve() / 'logs'}", "mini"]
    for flag in SAFE_FLAGS:
        assert flag in command
    assert f"-s3.config={tmp_path.resolve() / 's3.json'}" in command
    assert "-s3.allowedOrigins=http://127.0.0.1:8000,http://localhost:8000" in command
    assert f"-dir={tmp_path.resolve() / 'data'}" in command
    for name, port in [("s3", 20001), ("master", 20002), ("volume", 20003), ("filer", 20004), ("admin", 20005)]:
        assert f"-{name}.port={port}" in command
        assert f"-{name}.port.grpc={port + GRPC_OFFSET}" in command
    assert "-volume.max=0" in command, "by default as many volumes as free disk allows (SeaweedFS's own rule)"
    # Unix sockets we can name go in the data dir.
    assert f"-filer.localSocket={tmp_path.resolve() / 'filer.sock'}" in command
    assert f"-s3.localSocket={tmp_path.resolve() / 's3.sock'}" in command


def test_a_taken_port_fails_clearly_without_starting(seaweed: SeaweedService, tmp_path: Path) -> None:
    taken = seaweed.instance.config.s3_port
    master, volume, filer, admin = free_seaweed_ports(4)
    instance = SeaweedFS(
        SeaweedConfig(
            data_dir=tmp_path,
            access_key_id="k",
            secret_access_key="s",
            s3_port=taken,
            master_port=master,
            volume_port=volume,
            filer_port=filer,
            admin_port=admin,
        )
    )
    with pytest.raises(SeaweedError, match=f"port {taken} on 127.0.0.1 is taken"):
        instance.start()
    assert instance.process is None


def test_restart_keeps_uploads_and_outage_is_503(seaweed: SeaweedService, live_server: LiveServer) -> None:
    data = os.urandom(6 * 1024 * 1024)
    with live_server.client() as http:
        session = create_session(http, len(data), part_size=5 * 1024 * 1024)
        sid = session["session_id"]
        urls = {u["part_number"]: u["url"] for u in session["urls"]}
        e1 = put_part(urls[1], part_bytes(data, 5 * 1024 * 1024, 1))

        seaweed.stop()
        try:
            down = http.get(f"/api/uploads/{sid}")
            assert down.status_code == 503
            assert down.headers["retry-after"] == "2"
            assert "retry" in down.json()["detail"]
        finally:
            seaweed.start()

        state = http.get(f"/api/uploads/{sid}").json()
        assert [(p["part_number"], p["etag"]) for p in state["parts"]] == [(1, e1)]
        # URLs signed before the restart still work.
        e2 = put_part(urls[2], part_bytes(data, 5 * 1024 * 1024, 2))
        done = http.post(
            f"/api/uploads/{sid}/complete",
            json={"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}]},
        )
        assert done.status_code == 200, done.text


def test_python_dash_m_server_runs_seaweed_and_the_app(tmp_path: Path) -> None:
    port = free_port()
    # The app alone on PORT (tests/server/test_main_proxy.py: nginx in front).
    env, s3 = server_environment(tmp_path, port, EMBEDDED_PROXY="false")
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Smartcat uploader running at" in line:
                break
        assert f"Smartcat uploader running at http://127.0.0.1:{port}\n" in lines, "".join(lines)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            response = client.post(
                "/api/uploads", json={"file_name": "a.txt", "size": 1, "checksum_algorithm": "SHA256"}
            )
            assert response.status_code == 201, response.text
            one = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
            urls = client.post(
                f"/api/uploads/{response.json()['session_id']}/urls",
                json={"parts": [{"part_number": 1, "checksum_sha256": one}]},
            )
            assert urls.json()["urls"][0]["url"].startswith(f"http://127.0.0.1:{s3}/uploads/")
        assert (tmp_path / "var" / "secret_key").exists()
    finally:
        stop(process, signal.SIGINT)
    assert process.returncode == 0, "".join(lines)
    # SeaweedFS went down with it.
    deadline = time.monotonic() + 5
    while not port_is_free(s3) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(s3)


def test_an_orphan_on_the_same_data_dir_is_stopped_first(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves SeaweedFS running; the next start on that data dir stops it."""
    s3, master, volume, filer, admin = free_seaweed_ports(5)
    config = SeaweedConfig(
        data_dir=tmp_path,
        access_key_id="k",
        secret_access_key="s",
        s3_port=s3,
        master_port=master,
        volume_port=volume,
        filer_port=filer,
        admin_port=admin,
        new_session=False,
    )
    orphan = SeaweedFS(config)
    orphan.start()
    forgotten = orphan.process
    assert forgotten is not None
    orphan.process = None  # as if its parent had died

    successor = SeaweedFS(config)
    try:
        successor.start()
        assert forgotten.wait(5) is not None
        assert successor.running
        assert httpx.get(successor.endpoint_url + "/").status_code == 403  # S3 answers (unsigned: refused)
    finally:
        successor.stop()
        if forgotten.poll() is None:
            forgotten.kill()
    assert not (tmp_path / "weed.pid").exists()


def test_a_binary_that_dies_at_start_fails_with_its_output(tmp_path: Path) -> None:
    script = tmp_path / "weed"
    script.write_text("#!/bin/sh\necho 'cannot open volume: disk on fire' >&2\nexit 3\n")
    script.chmod(0o755)
    s3, master, volume, filer, admin = free_seaweed_ports(5)
    instance = SeaweedFS(
        SeaweedConfig(
            data_dir=tmp_path / "data",
            access_key_id="k",
            secret_access_key="s",
            s3_port=s3,
            master_port=master,
            volume_port=volume,
            filer_port=filer,
            admin_port=admin,
            binary=str(script),
        )
    )
    with pytest.raises(SeaweedError, match=r"exited with code 3 during start-up\n.*disk on fire"):
        instance.start(timeout=10)
    assert not instance.running
