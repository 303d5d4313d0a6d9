"""``python -m server``: start the embedded SeaweedFS (unless ``EMBEDDED_S3=false``), then the app, then (with the
embedded store, when nginx is there; ``EMBEDDED_PROXY``) nginx on HOST:PORT in front of both, so part URLs are on
the app's origin and browsers may hand uploads to Background Fetch. They stop in reverse order. ``WORKERS`` > 1: the
app runs in that many worker processes (:mod:`server.workers`)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import sys
from functools import partial
from types import FrameType

import uvicorn
from pydantic import ValidationError

from server import logs, workers
from server.app import create_app
from server.nginx import Nginx, NginxConfig, NginxError, find_nginx
from server.seaweed import SeaweedConfig, SeaweedError, SeaweedFS
from server.settings import Settings


def _open(url: str, proxy: Nginx | None) -> bool:
    """Once the app serves: start the proxy in front (if any), then print the one line people look for. False
    when the proxy did not start (the instance then stops, exit status 1)."""
    if proxy is not None:
        try:
            proxy.start()
        except NginxError as error:
            print(f"error: nginx did not start: {error}", file=sys.stderr, flush=True)
            return False
    print(f"Smartcat uploader running at {url}", flush=True)
    return True


class _AnnouncingServer(uvicorn.Server):
    """One process: :func:`_open` once the app's port is bound (the proxy is stopped before the app)."""

    def __init__(self, config: uvicorn.Config, url: str, proxy: Nginx | None = None) -> None:
        super().__init__(config)
        self.url = url
        self.proxy = proxy
        self.proxy_failed = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        if not await asyncio.to_thread(_open, self.url, self.proxy):
            self.proxy_failed = self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.proxy is not None:
            await asyncio.to_thread(self.proxy.stop)
        await super().shutdown(sockets)


class _Terminated(Exception):
    """SIGTERM, turned into an exception so ``finally`` blocks run and SeaweedFS is not left behind."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated


def _problems(error: ValidationError) -> str:
    """One line per refused setting, named as in the environment (no traceback: the message is the help)."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]).upper()
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}" if where and where not in message else f"  {message}")
    return "\n".join(lines)


def hand_off_note(settings: Settings) -> str:
    """Whether browsers may hand the rest of an upload to Background Fetch here, and why not (no proxy in front, so
    no store route on the app's origin): said at start rather than found out."""
    base = settings.part_url_base
    if settings.background_hand_off:
        return f"Background Fetch hand-off: on (part URLs under {base})"
    if base is not None:
        return (
            f"Background Fetch hand-off: off (PART_URL_BASE {base} is not on PUBLIC_ORIGIN {settings.public_origin}; "
            "Background Fetch sends only same-origin requests)"
        )
    return (
        "Background Fetch hand-off: off (part URLs go straight to the store; to turn it on, serve the app and a "
        "/store/ route to the store on one origin, as server/nginx.py does, and set PART_URL_BASE to <origin>/store)"
    )


def proxy_binary(settings: Settings) -> str | None:
    """The nginx to put in front of the app, or ``None`` for none; raises when ``EMBEDDED_PROXY=true`` finds none."""
    if not settings.embedded_s3 or settings.embedded_proxy == "false":
        return None
    if settings.nginx_binary is not None:
        found = shutil.which(settings.nginx_binary)
        where = f" at NGINX_BINARY={settings.nginx_binary}"
    else:
        try:
            found = find_nginx()
        except NginxError:
            found = None
        where = ""
    if found is None and settings.embedded_proxy == "true":
        raise NginxError(
            f"EMBEDDED_PROXY=true but nginx was not found{where}: install Debian's nginx (make nginx, or "
            "apt-get install nginx), or set EMBEDDED_PROXY=auto to serve without it (no Background Fetch hand-off)"
        )
    return found


def behind_proxy(settings: Settings) -> Settings:
    """The app's settings behind the embedded nginx: part URLs under ``<PUBLIC_ORIGIN>/store`` (same origin, so the
    hand-off is on), and nginx's loopback address believed for X-Forwarded-For, so rate limits see real clients."""
    return Settings(
        **{
            **settings.model_dump(),
            "part_url_base": settings.part_url_base or f"{settings.public_origin}/store",
            "forwarded_allow_ips": [*settings.forwarded_allow_ips, _APP_HOST],
        }
    )


#: Where the app listens when nginx fronts it: loopback only, on a port the kernel picks.
_APP_HOST = "127.0.0.1"


def main() -> int:
    # uvicorn handles SIGINT/SIGTERM itself, then re-raises them once it has shut down: let them end us cleanly.
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings (environment or .env):\n{_problems(error)}", file=sys.stderr)
        return 2
    try:
        nginx_binary = proxy_binary(settings)
    except NginxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app_settings = settings if nginx_binary is None else behind_proxy(settings)
    logs.configure(json=settings.log_json)
    print(hand_off_note(app_settings), flush=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # SeaweedFS and nginx readiness polls
    seaweed: SeaweedFS | None = None
    if settings.embedded_s3:
        seaweed = SeaweedFS(SeaweedConfig.from_settings(settings))
        print(f"Starting SeaweedFS (S3 at {seaweed.endpoint_url}, data in {seaweed.config.data_dir}) ...", flush=True)
        try:
            seaweed.start()
        except SeaweedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    proxy: Nginx | None = None
    app_socket: socket.socket | None = None
    try:
        if nginx_binary is not None:
            # The app on a loopback port of its own, bound here so no other process can take it before uvicorn does.
            app_socket = socket.create_server((_APP_HOST, 0))
            proxy = Nginx(
                NginxConfig(
                    work_dir=settings.data_dir / "nginx",
                    app_upstreams=[f"{_APP_HOST}:{app_socket.getsockname()[1]}"],
                    store_endpoint_url=settings.s3_endpoint_url,
                    bucket=settings.s3_bucket,
                    store_host=settings.presign_endpoint_url,
                    listen_host=settings.host,
                    listen_port=settings.port,
                    max_app_body_bytes=settings.max_request_body_bytes,
                    binary=nginx_binary,
                )
            )
            print(f"Starting nginx on {proxy.origin} (app at {proxy.config.app_upstreams[0]}) ...", flush=True)
        # log_config=None: uvicorn's lines go through our handler (JSON, request ids, redaction).
        # proxy_headers=False: forwarded headers are believed by the app alone (server/proxy.py, FORWARDED_ALLOW_IPS).
        config = partial(
            uvicorn.Config,
            host=_APP_HOST if app_socket is not None else settings.host,
            port=app_socket.getsockname()[1] if app_socket is not None else settings.port,
            log_level="info",
            log_config=None,
            proxy_headers=False,
        )
        url = f"http://{settings.host}:{settings.port}"
        if settings.workers > 1:
            stop_proxy = proxy.stop if proxy is not None else (lambda: None)
            return 0 if workers.serve(app_settings, config, app_socket, partial(_open, url, proxy), stop_proxy) else 1
        server = _AnnouncingServer(config(create_app(app_settings)), url, proxy)
        server.run(sockets=None if app_socket is None else [app_socket])
        if server.proxy_failed:
            return 1
    except NginxError as error:  # a config nginx cannot carry (an S3 endpoint without a port, a bucket name)
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if proxy is not None:
            proxy.stop()
        if app_socket is not None:
            app_socket.close()
        if seaweed is not None:
            print("Stopping SeaweedFS ...", flush=True)
            seaweed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
