"""The application factory: wires settings, database, storage and identity into one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server import log_redaction, logs, ratelimit, validation
from server.body_limit import BodyLimit
from server.browser_storage import StorageKeys
from server.browser_storage import router as browser_storage_router
from server.db import Database
from server.host_tokens import HostTokenVerifier
from server.http_metrics import HttpMetrics
from server.identity import HostIdentify, Identity
from server.janitor import Janitor
from server.notify.service import NotificationService
from server.proxy import TrustedProxies
from server.ratelimit import RateLimited, RateLimits
from server.routers import account, files, health, metrics, notifications, support
from server.scan.clamd import ScannerUnavailable
from server.scan.worker import ScanWorker, scan_worker
from server.security_headers import OriginCheck, SecurityHeaders, origin_of
from server.settings import Settings, resolve_secret_key
from server.static import mount_web
from server.static import router as web_router
from server.storage import Storage, StorageError, StorageUnavailable, storage_for
from server.telemetry.router import router as telemetry_router
from server.uploads import problems
from server.uploads.router import router as uploads_router

log = logging.getLogger("server")


def _scanner(settings: Settings, database: Database, storage: Storage) -> ScanWorker | None:
    """The malware scanner ``SCAN`` asks for. ``auto`` scans when a clamd answers now, else says in one line that
    scanning is off (``make run`` on a machine without ClamAV); ``clamd`` requires one eventually (quarantined
    uploads wait for it, readiness reports it)."""
    if settings.scan == "off":
        return None
    worker = scan_worker(settings, database, storage)
    if settings.scan == "auto":
        try:
            worker.clamd.ping()
        except ScannerUnavailable as error:
            log.warning("Malware scanning is off (SCAN=auto): %s. Uploads are handed out unscanned.", error)
            return None
        log.info("Malware scanning is on: clamd at %s", worker.clamd.address)
    return worker


def create_app(
    settings: Settings | None = None, *, identify: HostIdentify | None = None, migrate: bool = True
) -> FastAPI:
    """Build the app. Nothing touches the network or disk until the lifespan starts.

    ``identify``: the host application's own identity function (a :class:`~server.identity.Principal` from the
    request, e.g. from its session), used instead of ``IDENTITY_MODE``; see :mod:`server.embed` to mount the app
    under a path of a host application. ``migrate=False``: the schema is current already (the parent of several
    worker processes migrated it before starting them, :mod:`server.workers`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        database = Database(settings.resolved_database_url)
        if migrate:
            await run_in_threadpool(database.migrate)
        storage = storage_for(settings)
        await run_in_threadpool(storage.ensure_bucket, settings.cors_origins, settings.abort_incomplete_days)
        app.state.database = database
        app.state.storage = storage
        secret_key = resolve_secret_key(settings)
        logs.set_user_key(secret_key)
        app.state.storage_keys = StorageKeys(secret_key)
        app.state.identity = Identity(
            secret_key,
            secure=settings.secure_cookies,
            upload_token_max_age=settings.session_max_age_seconds,
        )
        # Events and notifications: the outbox dispatcher and notifier run as background tasks of this process.
        app.state.notifications = NotificationService(settings, database)
        await app.state.notifications.start()
        janitor = Janitor(
            database,
            storage,
            timedelta(seconds=settings.session_max_idle_seconds),
            settings.janitor_interval_seconds,
            max_age=timedelta(seconds=settings.session_max_age_seconds),
        )
        janitor.start()
        scanner = await run_in_threadpool(_scanner, settings, database, storage)
        app.state.scanner, app.state.scanning = scanner, scanner is not None
        if scanner is not None and settings.scan_in_process:
            scanner.start()
        try:
            yield
        finally:
            if scanner is not None:
                await scanner.stop()
            await janitor.stop()
            await app.state.notifications.stop()
            database.dispose()

    app = FastAPI(
        title="Smartcat uploader",
        summary="Presigns S3 multipart uploads; the bytes go from the browser straight to S3.",
        version="0.1.0",
        lifespan=lifespan,
        # API docs only where enabled: they map the whole attack surface for anyone.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.settings = settings
    app.state.scanner, app.state.scanning = None, False
    log_redaction.install()
    app.state.host_tokens = HostTokenVerifier(settings) if settings.identity_mode == "jwt" else None
    app.state.host_identify = identify
    app.state.rate_limits = RateLimits(settings)
    app.include_router(uploads_router)
    app.include_router(notifications.router)
    app.include_router(account.router)
    app.include_router(browser_storage_router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(telemetry_router)
    app.include_router(support.router)
    app.include_router(web_router)
    mount_web(app, settings.web_dir, settings.runtime_dir)

    app.add_exception_handler(problems.UploadProblem, problems.answer)
    app.add_exception_handler(RateLimited, ratelimit.answer)
    app.add_exception_handler(RequestValidationError, validation.answer)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(OriginCheck, allowed_origins=settings.cors_origins)
    app.add_middleware(
        SecurityHeaders, connect_origins=[origin_of(settings.part_url_origin)], https=settings.secure_cookies
    )
    app.add_middleware(HttpMetrics)  # counts every answer, refusals by the others included
    app.add_middleware(logs.RequestIds)  # every log line of a request carries its id
    app.add_middleware(TrustedProxies, trusted=settings.forwarded_allow_ips)  # outermost: all see the real client

    @app.exception_handler(StorageUnavailable)
    async def storage_unavailable(_request: Request, error: StorageUnavailable) -> JSONResponse:
        log.warning("storage unavailable: %s", error)
        return JSONResponse(
            {"detail": "storage is unavailable; retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(StorageError)
    async def storage_error(_request: Request, error: StorageError) -> JSONResponse:
        log.error("storage error: %s", error)
        return JSONResponse({"detail": f"storage error: {error}"}, status_code=status.HTTP_502_BAD_GATEWAY)

    return app
