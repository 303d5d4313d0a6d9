"""``python -m server``: start the embedded SeaweedFS (unless ``EMBEDDED_S3=false``), then serve the app."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from server import logs
from server.app import create_app
from server.seaweed import SeaweedConfig, SeaweedError, SeaweedFS
from server.settings import Settings


class _AnnouncingServer(uvicorn.Server):
    """Prints the one line people look for, once the port is really bound (not before)."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"Smartcat uploader running at {self.url}", flush=True)


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
    """Whether browsers may hand the rest of an upload to Background Fetch here, and why not: ``make run`` serves the
    app alone (no proxy in front, so no store route on its origin), and that is said at start rather than found out."""
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


def main() -> int:
    # uvicorn handles SIGINT/SIGTERM itself, then re-raises them once it has shut down: let them end us cleanly.
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings (environment or .env):\n{_problems(error)}", file=sys.stderr)
        return 2
    logs.configure(json=settings.log_json)
    print(hand_off_note(settings), flush=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # SeaweedFS readiness polls
    seaweed: SeaweedFS | None = None
    if settings.embedded_s3:
        seaweed = SeaweedFS(SeaweedConfig.from_settings(settings))
        print(f"Starting SeaweedFS (S3 at {seaweed.endpoint_url}, data in {seaweed.config.data_dir}) ...", flush=True)
        try:
            seaweed.start()
        except SeaweedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    try:
        # log_config=None: uvicorn's lines go through our handler (JSON, request ids, redaction).
        # proxy_headers=False: forwarded headers are believed by the app alone (server/proxy.py, FORWARDED_ALLOW_IPS).
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="info",
            log_config=None,
            proxy_headers=False,
        )
        _AnnouncingServer(config, f"http://{settings.host}:{settings.port}").run()
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if seaweed is not None:
            print("Stopping SeaweedFS ...", flush=True)
            seaweed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
