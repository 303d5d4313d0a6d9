"""The real app served by uvicorn in a background thread, on a real port, against a real S3."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from server.app import create_app
from server.content_policy import DEFAULT_ALLOWED_TYPES
from server.settings import Settings
from tests.support.ports import free_port
from tests.support.seaweed import SeaweedService


class IsolatedSettings(Settings):
    """Settings from constructor arguments only: no environment variables, no ``.env`` (tests stay hermetic)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def isolated_settings(**values: Any) -> Settings:
    """``Settings(**values)`` ignoring the environment. Field names are the lower-case setting names."""
    return IsolatedSettings(**values)


def settings_for(seaweed: SeaweedService, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server on ``seaweed``: a fresh bucket, a free port, data in ``data_dir``.

    Any field can be overridden, e.g. ``s3_public_endpoint_url="http://127.0.0.1:PROXY"`` (presigned URLs then
    name the proxy's host, as SigV4 requires) or ``presign_ttl_seconds=2``.
    """
    port = int(overrides.pop("port", 0)) or free_port()
    values: dict[str, Any] = {
        "s3_endpoint_url": seaweed.endpoint_url,
        "s3_access_key_id": seaweed.access_key_id,
        "s3_secret_access_key": seaweed.secret_access_key,
        "s3_region": seaweed.region,
        "s3_bucket": seaweed.new_bucket_name(data_dir.name),
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": port,
        "public_origin": f"http://127.0.0.1:{port}",
        "secret_key": "test-secret-key-that-is-long-enough",
        "embedded_s3": False,
        "web_dir": data_dir / "web",
        "runtime_dir": data_dir / "runtime",
        # Most API tests drive sessions without part checksums, as plain clients; the production default (required)
        # is tested in tests/server/test_plan_limits.py and by the engine in e2e/test_identity.py.
        "require_checksums": False,
        # Every test client comes from 127.0.0.1 and many are new users: tests/server/test_rate_limits.py sets
        # real limits where it tests them.
        "rate_limit_create": "100000/minute",
        "rate_limit_urls": "100000/minute",
        "rate_limit_new_identity": "100000/minute",
        # Test files are random bytes (often named .bin, or .pdf in journeys): any type, no sniffing. The content
        # policy is tested with real file heads in tests/server/test_content_policy.py.
        "allowed_content_types": [*DEFAULT_ALLOWED_TYPES, "application/octet-stream"],
        "sniff_content": False,
    }
    values.update(overrides)
    return isolated_settings(**values)


class LiveServer:
    """``create_app(settings)`` under uvicorn in a daemon thread. ``restart()`` builds a new app on the same port
    and database, like restarting the process.

    Build settings with :func:`settings_for` (free port, matching ``public_origin``, fresh bucket). Given
    ``port=0`` directly, a free port is picked but ``public_origin`` is left as it is.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.port == 0:
            settings = settings.model_copy(update={"port": free_port()})
        self.settings = settings
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 90.0) -> LiveServer:
        """Start and wait until it serves. Start-up migrates the database and sets up the bucket; on a loaded
        2-core machine running two test runs at once that took longer than 20 s, so the bound is generous."""
        if self.running:
            return self
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            proxy_headers=False,  # as `python -m server`: FORWARDED_ALLOW_IPS is the app's (server/proxy.py)
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"live-server-{self.settings.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"server on {self.base_url} failed to start (see its log above)")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"server on {self.base_url} did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: Any) -> httpx.Client:
        """A new httpx client on this server with its own cookie jar (so: its own anonymous user)."""
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MakeLiveServer(Protocol):
    """The ``make_live_server`` fixture: ``make_live_server(**settings_overrides) -> LiveServer`` (started)."""

    def __call__(self, **overrides: Any) -> LiveServer: ...
