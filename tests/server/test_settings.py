"""Settings from the environment, and the generated secret key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from server.settings import REPO_ROOT, Settings, resolve_secret_key
from tests.support.live_server import isolated_settings


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9000/")
    monkeypatch.setenv("CORS_EXTRA_ORIGINS", "http://a.test, http://b.test,,http://127.0.0.1:8000")
    monkeypatch.setenv("PRESIGN_TTL_SECONDS", "60")
    monkeypatch.setenv("EMBEDDED_S3", "false")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.presign_endpoint_url == "http://127.0.0.1:9000"
    assert settings.s3_port == 9000
    assert settings.cors_origins == ["http://127.0.0.1:8000", "http://a.test", "http://b.test"]
    assert settings.presign_ttl_seconds == 60
    assert settings.embedded_s3 is False
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'uploads.sqlite3'}"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = isolated_settings()
    assert settings.s3_endpoint_url == "http://127.0.0.1:8333"
    assert settings.s3_bucket == "uploads"
    assert settings.part_size_bytes == 8 * 1024 * 1024
    assert settings.url_batch_size == 16
    assert settings.presign_ttl_seconds == 900
    assert settings.embedded_s3 is True
    assert settings.web_dir == REPO_ROOT / "web"
    assert settings.runtime_dir == REPO_ROOT / "build" / "runtime"
    assert isolated_settings(s3_public_endpoint_url="http://proxy:1/").presign_endpoint_url == "http://proxy:1"


def test_dot_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("S3_BUCKET", raising=False)
    (tmp_path / ".env").write_text("S3_BUCKET=from-dotenv\nPORT=8123\n")
    settings = Settings()
    assert settings.s3_bucket == "from-dotenv" and settings.port == 8123


@pytest.mark.parametrize(
    "values",
    [{"presign_ttl_seconds": 0}, {"presign_ttl_seconds": 8 * 24 * 3600}, {"url_batch_size": 0}, {"s3_bucket": "x"}],
)
def test_invalid_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        isolated_settings(**values)


def test_secret_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    settings = isolated_settings(data_dir=tmp_path / "data")
    key = resolve_secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_secret_key(settings) == key  # reused, not regenerated
    assert resolve_secret_key(isolated_settings(data_dir=tmp_path / "data", secret_key="given")) == "given"


def test_env_example_documents_every_setting_and_gives_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = (REPO_ROOT / ".env.example").read_text()
    documented = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert documented == {name.upper() for name in Settings.model_fields}
    monkeypatch.chdir(tmp_path)
    for name in documented:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(example)
    assert Settings() == Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("port", [55536, 60000, 65535])
def test_an_s3_port_the_embedded_store_cannot_use_is_refused_naming_the_setting(port: int) -> None:
    """The embedded SeaweedFS also listens on the S3 port + 10000 (gRPC): a port above 55535 cannot work."""
    with pytest.raises(ValidationError, match="S3_ENDPOINT_URL") as refused:
        isolated_settings(s3_endpoint_url=f"http://127.0.0.1:{port}", embedded_s3=True)
    assert "55535" in str(refused.value)
    # An S3 that is not started here may listen anywhere.
    assert isolated_settings(s3_endpoint_url=f"http://127.0.0.1:{port}", embedded_s3=False).s3_port == port


@pytest.mark.parametrize("url", ["http://127.0.0.1:70000", "127.0.0.1:8333", "ftp://127.0.0.1:8333"])
def test_a_malformed_s3_endpoint_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationError, match="S3_ENDPOINT_URL"):
        isolated_settings(s3_endpoint_url=url, embedded_s3=False)


def test_make_run_with_an_unusable_s3_port_stops_with_a_clear_message(tmp_path: Path) -> None:
    """``python -m server`` (what ``make run`` starts) refuses at once, without a traceback, naming the setting."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "SEAWEED_", "DATABASE_URL"))},
        "S3_ENDPOINT_URL": "http://127.0.0.1:60000",
        "EMBEDDED_S3": "true",
        "DATA_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "server"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "S3_ENDPOINT_URL" in done.stderr and "55535" in done.stderr, done.stderr
