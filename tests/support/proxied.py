"""An app server behind a private nginx (server/nginx.py) that also routes the store on the app's origin, as
``PART_URL_BASE`` expects: what Background Fetch needs (it sends only same-origin PUTs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.nginx import Nginx, NginxConfig
from tests.support.live_server import LiveServer
from tests.support.ports import free_port

STORE_PREFIX = "/store/"


@dataclass
class ProxiedServer:
    """The app (``server``) and the proxy in front of it (``nginx``); browsers use ``origin``."""

    server: LiveServer
    nginx: Nginx

    @property
    def origin(self) -> str:
        return self.nginx.origin

    def stop(self) -> None:
        self.nginx.stop()
        self.server.stop()


def start_proxied(make: Callable[..., LiveServer], work_dir: Path, **overrides: Any) -> ProxiedServer:
    """A server (``make(**settings)``, e.g. ``make_live_server``) whose public origin is a fresh nginx on a free
    port, with part URLs on that origin; the caller stops both (``make_live_server`` stops the server itself)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    server = make(public_origin=origin, part_url_base=origin + STORE_PREFIX.rstrip("/"), **overrides)
    settings = server.settings
    nginx = Nginx(
        NginxConfig(
            work_dir=work_dir,
            app_upstreams=[server.base_url],
            # Where the part URLs are signed for: the store, or a proxy in front of it (its Host is kept).
            store_endpoint_url=settings.presign_endpoint_url,
            bucket=settings.s3_bucket,
            store_prefix=STORE_PREFIX,
            listen_port=port,
            new_session=False,
        )
    )
    try:
        nginx.start()
    except BaseException:
        server.stop()
        raise
    return ProxiedServer(server, nginx)
