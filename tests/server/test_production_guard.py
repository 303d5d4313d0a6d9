"""Production guard: served beyond this machine, the server refuses development secrets; the embedded store answers
only on its S3 port; the database and key files are private to the server's user."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from server.settings import REPO_ROOT
from tests.support.live_server import MakeLiveServer, isolated_settings
from tests.support.seaweed import SeaweedService

PUBLIC = "https://uploads.example.com"


def test_a_public_origin_with_the_development_s3_keys_is_refused_naming_them() -> None:
    with pytest.raises(ValidationError) as refused:
        isolated_settings(public_origin=PUBLIC)
    message = str(refused.value)
    assert "S3_ACCESS_KEY_ID is the development default" in message
    assert "S3_SECRET_ACCESS_KEY is the development default" in message
    with pytest.raises(ValidationError, match="SECRET_KEY is shorter than 32"):
        isolated_settings(
            public_origin=PUBLIC, s3_access_key_id="k" * 20, s3_secret_access_key="s" * 40, secret_key="x"
        )


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_loopback_origins_may_use_the_development_defaults(origin: str) -> None:
    assert isolated_settings(public_origin=origin).s3_access_key_id == "smartcat-dev"


def test_real_credentials_start() -> None:
    settings = isolated_settings(
        public_origin=PUBLIC, s3_access_key_id="AKIA" + "X" * 16, s3_secret_access_key="s" * 40
    )
    assert settings.public_origin == PUBLIC


def test_smtp_never_logs_in_without_tls() -> None:
    with pytest.raises(ValidationError, match="SMTP_SECURITY=starttls or tls"):
        isolated_settings(smtp_username="mailer", smtp_password="pw")
    assert isolated_settings(smtp_username="mailer", smtp_password="pw", smtp_security="starttls").smtp_username


def test_python_dash_m_server_refuses_to_start_with_development_keys(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "SEAWEED_", "DATABASE_URL", "SECRET"))},
        "PUBLIC_ORIGIN": PUBLIC,
        "DATA_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "server"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "S3_ACCESS_KEY_ID is the development default" in done.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was created


def test_the_embedded_store_serves_objects_only_through_s3(seaweed: SeaweedService) -> None:
    """Its filer and volume HTTP ports (on loopback, so open to every local user) demand a JWT only SeaweedFS has."""
    seaweed.client.create_bucket(Bucket="guarded")
    seaweed.client.put_object(Bucket="guarded", Key="secret.txt", Body=b"secret bytes")
    config = seaweed.instance.config
    filer = httpx.get(f"http://127.0.0.1:{config.filer_port}/buckets/guarded/secret.txt", timeout=10)
    assert filer.status_code == 401
    assert b"secret bytes" not in filer.content
    listing = httpx.get(f"http://127.0.0.1:{config.filer_port}/buckets/guarded/", timeout=10)
    assert listing.status_code == 401
    assert httpx.get(f"http://127.0.0.1:{config.volume_port}/1,01", timeout=10).status_code == 401
    assert seaweed.client.get_object(Bucket="guarded", Key="secret.txt")["Body"].read() == b"secret bytes"
    security = config.data_dir / "security.toml"
    assert stat.S_IMODE(security.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700


def test_database_and_key_files_are_private(make_live_server: MakeLiveServer, tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    # The default database, an SQLite file in the data dir, also when the suite runs with --db=postgresql.
    server = make_live_server(data_dir=data, secret_key=None, database_url=None)
    with server.client() as client:
        assert client.get("/api/uploads").status_code == 200
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("uploads.sqlite3", "secret_key", "vapid_private_key.pem"):
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {oct(mode)}"
    for wal in data.glob("uploads.sqlite3-*"):
        assert stat.S_IMODE(wal.stat().st_mode) & 0o077 == 0, wal.name
