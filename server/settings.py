"""Configuration from environment variables (and an optional ``.env`` file), validated once at start-up."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from limits.storage import SCHEMES as LIMITS_STORAGE_SCHEMES  # type: ignore[attr-defined]  # what storage_from_string knows
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import make_url

from server.content_policy import DEFAULT_ALLOWED_TYPES
from server.keyfiles import read_or_create
from server.proxy import is_plain_prefix
from wire.plan import DEFAULT_PART_SIZE

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent


def _packaged_or(checkout: Path, packaged: Path) -> Path:
    """The web assets inside the installed package when the wheel carries them, else the checkout's."""
    return packaged if packaged.is_dir() else checkout


#: Presigned URLs may live at most 7 days (SigV4 limit).
MAX_PRESIGN_TTL_SECONDS = 7 * 24 * 3600
#: SeaweedFS's own rule: a component's gRPC port is its HTTP port + 10000 (its admin worker assumes it).
GRPC_OFFSET = 10000
#: The highest HTTP port of an embedded SeaweedFS component whose gRPC twin still is a TCP port.
MAX_SEAWEED_HTTP_PORT = 65535 - GRPC_OFFSET


#: The development S3 credentials (also the embedded SeaweedFS's identity unless changed).
DEV_S3_ACCESS_KEY_ID = "smartcat-dev"
DEV_S3_SECRET_ACCESS_KEY = "smartcat-dev-secret"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback_origin(origin: str) -> bool:
    """Whether browsers reach the app only from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(origin).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every knob of the service; field names map to upper-case environment variables (``S3_BUCKET``...)."""

    # Empty values mean "default", so a copied .env.example with blanks behaves like no .env at all.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    s3_endpoint_url: str = "http://127.0.0.1:8333"
    #: The endpoint written into presigned URLs. SigV4 signs the Host header, so a URL must be signed for the
    #: host the browser actually talks to (a proxy or a public name), which may differ from the server's own.
    s3_public_endpoint_url: str | None = None
    #: Hand out part URLs under this base instead (e.g. ``https://app.example/store``): still presigned for
    #: ``S3_PUBLIC_ENDPOINT_URL``, whose scheme and host are replaced by this base; a proxy there (server/nginx.py,
    #: a CDN or an ingress rule) forwards ``<base>/<bucket>/<key>?<query>`` to that host unchanged. On the app's own
    #: origin it lets the browser send parts from Background Fetch (which does no CORS) and saves a preflight a part.
    part_url_base: str | None = None
    s3_access_key_id: str = DEV_S3_ACCESS_KEY_ID
    s3_secret_access_key: str = DEV_S3_SECRET_ACCESS_KEY
    s3_bucket: str = Field(default="uploads", min_length=3, max_length=63)
    s3_region: str = "us-east-1"

    data_dir: Path = Path("var")
    #: Defaults to a SQLite file under ``data_dir``.
    database_url: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Worker processes ``python -m server`` runs for the app (one Python process uses one core). They share the
    #: listening socket, the database and the store; the schema is migrated once before they start.
    workers: int = Field(default=1, ge=1, le=64)
    public_origin: str = "http://127.0.0.1:8000"
    #: The path the uploader is served under on ``PUBLIC_ORIGIN`` (``""``: at the root). Links made outside any
    #: request (emails, pushes, the confirmation link) carry it; ``mount_uploader`` sets it to its mount path.
    public_path: str = ""
    #: Serve the OpenAPI schema and the interactive docs at /openapi.json and /docs.
    api_docs: bool = False
    #: ``/metrics`` answers only requests with ``Authorization: Bearer <METRICS_TOKEN>``. Unset: only when
    #: ``PUBLIC_ORIGIN`` is loopback (development); in production nobody can read it without a token.
    metrics_token: str | None = Field(default=None, min_length=16)
    #: Log lines as JSON objects (request id, session id, hashed user id; server/logs.py); false: plain text.
    log_json: bool = True
    #: More browser origins allowed by the bucket CORS rule (comma-separated in the environment).
    cors_extra_origins: Annotated[list[str], NoDecode] = []
    #: The reverse proxies whose ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Prefix`` are believed
    #: (comma-separated addresses or networks, ``*`` for any; server/proxy.py). Empty: none, so nobody can claim
    #: another client address (rate limits) or another path prefix (URLs in pages and the runtime manifest).
    forwarded_allow_ips: Annotated[list[str], NoDecode] = []

    #: The master secret: every token purpose (cookie, upload token, file link, email confirmation) signs with a key
    #: derived from it (server/tokens.py). When unset, one is generated into ``data_dir/secret_key`` and reused.
    secret_key: str | None = None

    #: Links in emails (``/files/<id>?token=...``) work this long; owners can revoke them sooner.
    link_token_max_age_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # ---- identity (server/identity.py, server/host_tokens.py) ----
    #: ``anonymous``: a signed random id in a cookie (the embedded demo); ``jwt``: the host application (Smartcat)
    #: issues a JWT, sent as ``Authorization: Bearer`` or in the ``JWT_COOKIE_NAME`` cookie; no token is a 401.
    identity_mode: Literal["anonymous", "jwt"] = "anonymous"
    #: Where the host publishes its signing keys (RS256/ES256/EdDSA...); keys are cached and refetched on an unknown
    #: ``kid`` (rotation), at most once per ``JWT_JWKS_MIN_REFRESH_SECONDS``.
    jwt_jwks_url: str | None = None
    #: Or a shared HMAC secret (HS256/384/512) instead of a JWKS URL; never both.
    jwt_secret: str | None = None
    #: Accepted ``alg`` values; empty means RS256+ES256 with a JWKS URL, HS256 with a shared secret.
    jwt_algorithms: Annotated[list[str], NoDecode] = []
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_cookie_name: str = "smartcat_token"
    jwt_user_claim: str = "sub"
    #: Claim holding the tenant (account) id; empty: a single-tenant host (every user in tenant "").
    jwt_tenant_claim: str = "tenant_id"
    jwt_roles_claim: str = "roles"
    #: A user with this role may see support views.
    jwt_admin_role: str = "uploads-admin"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_jwks_cache_seconds: int = Field(default=300, ge=1)
    jwt_jwks_min_refresh_seconds: float = Field(default=10.0, ge=0)

    presign_ttl_seconds: int = Field(default=900, ge=1, le=MAX_PRESIGN_TTL_SECONDS)
    #: Lifetime of the part URLs handed to the browser's Background Fetch (browser_py/engine/handoff.py): they are
    #: signed all at once and sent one after another with no page open, so they must outlive the queue. Each still
    #: writes only its own part (its length and checksum are signed), and none outlives the session's maximum age.
    background_presign_ttl_seconds: int = Field(default=24 * 3600, ge=1, le=MAX_PRESIGN_TTL_SECONDS)
    part_size_bytes: int = Field(default=DEFAULT_PART_SIZE, gt=0)
    #: How many part URLs come with a new session; the client asks for the rest in batches.
    url_batch_size: int = Field(default=16, ge=1, le=100)
    #: A session with no activity for this long is expired and its multipart upload aborted on S3.
    session_max_idle_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: Above this estimated time (seconds) users are told they can leave, and asked about notifications.
    leave_threshold_seconds: float = Field(default=45.0, ge=0)
    #: Files uploading at once per browser; more wait as "Queued" (their copy is saved in the browser meanwhile).
    parallel_uploads: int = Field(default=2, ge=1, le=16)
    #: The engine moves its parts in flight (1-6) with the goodput and failures it measures.
    adaptive_concurrency: bool = True
    #: A browser sizes a new upload's parts from the rate earlier uploads measured (PART_SIZE_BYTES until then).
    adaptive_part_size: bool = True
    #: An upload session older than this is expired by the janitor however active it is, and gets no more URLs:
    #: asking for URLs cannot keep a session (and its stored parts) alive for ever.
    session_max_age_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: The bucket's lifecycle rule aborts multipart uploads older than this many days (a backstop for the janitor;
    #: set on start-up where the store supports it). Empty: the whole days of SESSION_MAX_AGE_SECONDS, plus one.
    s3_abort_incomplete_days: int | None = Field(default=None, ge=1)
    #: Every part must carry a SHA-256 signed into its URL and verified by S3 (sessions without are refused).
    require_checksums: bool = True
    #: Types accepted (comma-separated in the environment); a file the browser gives no type gets the one its name
    #: implies. Default: what a translation platform takes (server/content_policy.py).
    allowed_content_types: Annotated[list[str], NoDecode] = list(DEFAULT_ALLOWED_TYPES)
    #: At completion, the object's first bytes must be what its type says (else the upload fails with the reason).
    sniff_content: bool = True
    #: The largest file accepted, bytes (S3's own limit is 5 TiB).
    max_file_size: int = Field(default=100 * 1024**3, ge=0, le=5 * 1024**4)
    #: Per user: uploads in progress at once, and their declared bytes together.
    max_open_sessions_per_user: int = Field(default=20, ge=1)
    max_bytes_in_progress_per_user: int = Field(default=200 * 1024**3, ge=1)
    #: Rate limits (``limits`` notation: "N/second|minute|hour", ";"-separated for several windows), counted per
    #: identity and per client address; more answer 429 with Retry-After.
    rate_limit_create: str = "30/minute;300/hour"
    rate_limit_urls: str = "600/minute"
    #: Telemetry batches from browsers (``POST /api/telemetry``), per identity and address.
    rate_limit_telemetry: str = "12/minute;200/hour"
    #: New anonymous identities per client address.
    rate_limit_new_identity: str = "20/minute;200/hour"
    #: Where the counters live: ``memory://`` (this process), or e.g. ``redis://host:6379`` so several server
    #: processes share them (any storage URI of the ``limits`` package).
    rate_limit_storage_uri: str = "memory://"
    #: Request bodies larger than this are refused (413) before they are read in full.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: How often the janitor looks for idle sessions.
    janitor_interval_seconds: float = Field(default=600.0, gt=0)

    #: ``python -m server`` starts SeaweedFS itself (the dev and default runtime).
    embedded_s3: bool = True
    #: With the embedded SeaweedFS, ``python -m server`` also puts Debian's nginx (server/nginx.py) on HOST:PORT in
    #: front of the app and a ``/store/`` route, so part URLs are same-origin and Background Fetch may take uploads
    #: over. ``auto``: when nginx is installed (``make nginx``); ``true``: refuse to start without it; ``false``: never.
    embedded_proxy: Literal["auto", "true", "false"] = "auto"
    #: The nginx binary of the embedded proxy; unset: Debian's ``/usr/sbin/nginx``, else one on PATH.
    nginx_binary: str | None = None
    #: Ports of the embedded SeaweedFS besides S3 (whose port comes from ``s3_endpoint_url``). Each gRPC port is
    #: the HTTP port + 10000, SeaweedFS's own convention, which its admin worker assumes.
    seaweed_master_port: int = Field(default=9333, ge=1, le=MAX_SEAWEED_HTTP_PORT)
    seaweed_volume_port: int = Field(default=9340, ge=1, le=MAX_SEAWEED_HTTP_PORT)
    seaweed_filer_port: int = Field(default=8888, ge=1, le=MAX_SEAWEED_HTTP_PORT)
    seaweed_admin_port: int = Field(default=23646, ge=1, le=MAX_SEAWEED_HTTP_PORT)

    #: A checkout serves web/ and build/runtime; an installed wheel carries them in the package (hatch_build.py).
    web_dir: Path = _packaged_or(REPO_ROOT / "web", PACKAGE_DIR / "web")
    runtime_dir: Path = _packaged_or(REPO_ROOT / "build" / "runtime", PACKAGE_DIR / "runtime")

    # ---- malware scanning (server/scan/) ----
    #: ``clamd``: completed objects wait in quarantine until ClamAV's daemon clears them (no download link, no
    #: ``upload_completed`` before); ``off``: released at once, unscanned; ``auto`` (what ``make run`` uses):
    #: ``clamd`` when one answers at start, else ``off`` (said in one line). Production sets ``clamd``.
    scan: Literal["clamd", "off", "auto"] = "off"
    clamd_host: str = "127.0.0.1"
    clamd_port: int = Field(default=3310, ge=1, le=65535)
    #: One INSTREAM (the whole object) may take this long before the attempt is retried.
    clamd_timeout_seconds: float = Field(default=600.0, gt=0)
    #: Objects up to this size are scanned; clamd's StreamMaxLength, MaxScanSize and MaxFileSize must be at least
    #: this (clamd cannot take a stream of 4 GiB or more).
    scan_max_bytes: int = Field(default=4000 * 1024**2, ge=1, lt=4 * 1024**3)
    #: A larger object is ``block``ed (kept in quarantine, ``upload_blocked``) or ``release``d unscanned (marked so).
    scan_oversize: Literal["block", "release"] = "block"
    #: Run the scanner in this server process; ``false`` leaves the scanning to separate ``python -m server.scan``
    #: processes (any number of them, and of servers: sessions are leased while scanned).
    scan_in_process: bool = True
    #: A scan not finished within this long (its process died) is started again by any scanner.
    scan_lease_seconds: float = Field(default=1800.0, gt=0)

    # ---- events and notifications (server/outbox.py, server/webhooks.py, server/notify/) ----
    #: Every upload event is POSTed here, signed; empty: no webhook.
    webhook_url: str | None = None
    #: HMAC-SHA256 key of webhook signatures. When unset, generated into ``data_dir/webhook_secret``.
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Run the outbox dispatcher and the notifier in this process (several processes may; rows are leased).
    outbox_dispatcher: bool = True
    #: How often pending events and notifications are looked at when nothing wakes the loops earlier.
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    outbox_retry_base_seconds: float = Field(default=2.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=600.0, gt=0)
    outbox_max_attempts: int = Field(default=20, ge=1)
    #: A delivery not finished within this long (its process died) is taken up again.
    outbox_lease_seconds: float = Field(default=120.0, gt=0)
    #: VAPID private key (base64url raw 32 bytes, or base64 DER). When unset, generated into ``data_dir``.
    vapid_private_key: str | None = None
    #: Contact for push services, in every VAPID JWT (``mailto:`` or ``https:``).
    vapid_subject: str = "mailto:uploads@localhost"
    push_ttl_seconds: int = Field(default=86400, ge=0, le=28 * 24 * 3600)
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Push service hosts (and their subdomains) the server may POST to; subscriptions elsewhere are refused.
    push_allowed_hosts: Annotated[list[str], NoDecode] = [
        "fcm.googleapis.com",
        "android.googleapis.com",
        "push.services.mozilla.com",
        "notify.windows.com",
        "push.apple.com",
    ]
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = "Smartcat uploads <uploads@localhost>"
    #: An address gets completion emails only after its owner opened the confirmation link sent to it.
    email_confirmation_required: bool = True
    #: How long a confirmation link works, seconds.
    email_confirmation_max_age_seconds: int = Field(default=2 * 24 * 3600, ge=60)
    #: Confirmation emails per user and per address (``limits`` notation): the server cannot be made to mail
    #: someone over and over.
    rate_limit_confirmation_email: str = "3/hour;10/day"
    #: Completions of one user within this many seconds go out as one message.
    notify_batch_seconds: float = Field(default=10.0, ge=0)
    #: At most this many messages per user and channel in any ``notify_rate_window_seconds`` (more wait, batched).
    notify_rate_limit: int = Field(default=6, ge=1)
    notify_rate_window_seconds: float = Field(default=3600.0, gt=0)

    @field_validator(
        "cors_extra_origins",
        "forwarded_allow_ips",
        "push_allowed_hosts",
        "jwt_algorithms",
        "allowed_content_types",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept ``a,b`` from the environment as well as a real list."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "rate_limit_create",
        "rate_limit_urls",
        "rate_limit_new_identity",
        "rate_limit_confirmation_email",
        "rate_limit_telemetry",
    )
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        """Refused at start: ``limits`` notation such as ``30/minute;300/hour``."""
        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(f"not a rate limit like '30/minute;300/hour': {value!r}") from error
        return value

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _a_counter_storage(cls, value: str) -> str:
        """Refused at start, not at the first request: a scheme the ``limits`` package has a storage for."""
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in LIMITS_STORAGE_SCHEMES:
            raise ValueError(
                f"RATE_LIMIT_STORAGE_URI must be a storage URI of the limits package such as memory:// or "
                f"redis://host:6379, not {value!r}"
            )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        """Each an IP address, a network or ``*``: a typo would otherwise trust nobody without a word."""
        for item in value:
            try:
                _ = item == "*" or ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"FORWARDED_ALLOW_IPS: {item!r} is not an IP address, a network or '*'") from None
        return value

    @field_validator("public_path")
    @classmethod
    def _a_plain_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if not is_plain_prefix(value):
            raise ValueError(f"PUBLIC_PATH must be empty or /-led plain path segments (e.g. /uploader), not {value!r}")
        return value

    @property
    def public_base(self) -> str:
        """Where the uploader's own pages are for someone outside a request: origin and path."""
        return f"{self.public_origin}{self.public_path}"

    @field_validator("public_origin", "s3_endpoint_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("s3_endpoint_url")
    @classmethod
    def _an_http_url_with_a_valid_port(cls, value: str) -> str:
        """Refused at start rather than at the first S3 call (or the embedded store's bind)."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"S3_ENDPOINT_URL must be an http(s) URL with a host, not {value!r}")
        try:
            _ = parts.port
        except ValueError as error:
            raise ValueError(f"S3_ENDPOINT_URL has no valid port (1-65535): {value!r}") from error
        return value

    @model_validator(mode="after")
    def _embedded_ports_fit(self) -> Settings:
        """The embedded SeaweedFS listens on the S3 port and on that port + 10000 (gRPC): both must be TCP ports."""
        if self.embedded_s3 and self.s3_port > MAX_SEAWEED_HTTP_PORT:
            raise ValueError(
                f"S3_ENDPOINT_URL port {self.s3_port} is too high for the embedded SeaweedFS (EMBEDDED_S3=true), "
                f"which also listens on port + {GRPC_OFFSET} for gRPC: use a port of at most {MAX_SEAWEED_HTTP_PORT}, "
                "or EMBEDDED_S3=false for an S3 you run yourself"
            )
        return self

    @model_validator(mode="after")
    def _workers_share_one_database(self) -> Settings:
        """An in-memory SQLite database is private to its process: several workers would each have their own."""
        url = self.resolved_database_url
        if self.workers > 1 and url.startswith("sqlite") and make_url(url).database in (None, "", ":memory:"):
            raise ValueError(f"WORKERS={self.workers} needs a database the workers share, not in-memory SQLite")
        return self

    @model_validator(mode="after")
    def _embedded_proxy_needs_the_embedded_store(self) -> Settings:
        """The embedded proxy fronts the embedded store; asking for it without one is a mistake, said at start."""
        if self.embedded_proxy == "true" and not self.embedded_s3:
            raise ValueError("EMBEDDED_PROXY=true needs EMBEDDED_S3=true (it fronts the embedded SeaweedFS)")
        return self

    @model_validator(mode="after")
    def _no_development_defaults_in_production(self) -> Settings:
        """Served beyond this machine (a non-loopback ``PUBLIC_ORIGIN``), the server refuses to start with the
        development S3 credentials or other known secrets, naming each one to change."""
        if is_loopback_origin(self.public_origin):
            return self
        problems = []
        if self.s3_access_key_id == DEV_S3_ACCESS_KEY_ID:
            problems.append("S3_ACCESS_KEY_ID is the development default")
        if self.s3_secret_access_key == DEV_S3_SECRET_ACCESS_KEY:
            problems.append("S3_SECRET_ACCESS_KEY is the development default")
        if self.secret_key is not None and len(self.secret_key) < 32:
            problems.append("SECRET_KEY is shorter than 32 characters")
        if self.webhook_url and self.webhook_secret is not None and len(self.webhook_secret) < 32:
            problems.append("WEBHOOK_SECRET is shorter than 32 characters")
        if problems:
            raise ValueError(
                f"PUBLIC_ORIGIN {self.public_origin} is not on this machine, so the server refuses to start: "
                + "; ".join(problems)
            )
        return self

    @model_validator(mode="after")
    def _smtp_credentials_only_over_tls(self) -> Settings:
        """A password is never sent over a plain connection."""
        if (self.smtp_username or self.smtp_password) and self.smtp_security == "none":
            raise ValueError("SMTP_USERNAME/SMTP_PASSWORD need SMTP_SECURITY=starttls or tls (never a plain login)")
        return self

    @model_validator(mode="after")
    def _jwt_is_complete(self) -> Settings:
        """``IDENTITY_MODE=jwt`` needs exactly one key source, an issuer, an audience, and algorithms that fit the key
        source (an HMAC algorithm with public keys is the RS/HS confusion attack; ``none`` is never accepted)."""
        if self.identity_mode != "jwt":
            return self
        missing = [name for name in ("jwt_issuer", "jwt_audience") if not getattr(self, name)]
        if missing:
            raise ValueError(f"IDENTITY_MODE=jwt needs {', '.join(m.upper() for m in missing)}")
        if bool(self.jwt_jwks_url) == bool(self.jwt_secret):
            raise ValueError("IDENTITY_MODE=jwt needs exactly one of JWT_JWKS_URL and JWT_SECRET")
        algorithms = self.jwt_algorithms or (["HS256"] if self.jwt_secret else ["RS256", "ES256"])
        if any(a.lower() == "none" for a in algorithms):
            raise ValueError("JWT_ALGORITHMS may not contain 'none'")
        hmac = [a for a in algorithms if a.upper().startswith("HS")]
        if self.jwt_jwks_url and hmac:
            raise ValueError(f"JWT_ALGORITHMS {hmac} are HMAC algorithms, which a JWKS of public keys cannot verify")
        if self.jwt_secret and len(hmac) != len(algorithms):
            raise ValueError("with JWT_SECRET, JWT_ALGORITHMS may only name HMAC algorithms (HS256/HS384/HS512)")
        if self.jwt_secret and len(self.jwt_secret.encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes")
        self.jwt_algorithms = algorithms
        return self

    @field_validator("s3_public_endpoint_url")
    @classmethod
    def _optional_no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @field_validator("part_url_base")
    @classmethod
    def _a_base_url(cls, value: str | None) -> str | None:
        """An http(s) URL with a host and a path at most: a query or fragment would end up inside every part URL."""
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"PART_URL_BASE must be an http(s) URL with a host and no query, not {value!r}")
        return value.rstrip("/")

    @property
    def abort_incomplete_days(self) -> int:
        """Days after which the bucket's lifecycle rule aborts a multipart upload: never before the janitor would."""
        return self.s3_abort_incomplete_days or -(-self.session_max_age_seconds // 86400) + 1

    @property
    def presign_endpoint_url(self) -> str:
        """The endpoint part URLs are signed for (the ``Host`` S3 checks)."""
        return self.s3_public_endpoint_url or self.s3_endpoint_url

    @property
    def background_hand_off(self) -> bool:
        """Background Fetch sends only same-origin requests (no CORS preflight): the rest of an upload may go to it
        only when part URLs are on the app's own origin."""
        base = self.part_url_base
        return base is not None and _origin(base) == _origin(self.public_origin)

    @property
    def part_url_origin(self) -> str:
        """Where browsers send their PUTs: the CSP's connect-src needs it."""
        return self.part_url_base or self.presign_endpoint_url

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'uploads.sqlite3').resolve()}"

    @property
    def cors_origins(self) -> list[str]:
        """Origins the bucket lets browsers PUT from, without duplicates, in order."""
        origins = [self.public_origin, *self.cors_extra_origins]
        return list(dict.fromkeys(origin.rstrip("/") for origin in origins))

    @property
    def s3_port(self) -> int:
        parts = urlsplit(self.s3_endpoint_url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80

    @property
    def secure_cookies(self) -> bool:
        return self.public_origin.startswith("https://")


def resolve_secret_key(settings: Settings) -> str:
    """Return ``SECRET_KEY`` or a key kept in ``DATA_DIR/secret_key``, so cookies survive restarts."""
    if settings.secret_key:
        return settings.secret_key
    key = read_or_create(settings.data_dir / "secret_key", lambda: secrets.token_urlsafe(48).encode("ascii"))
    return key.decode("ascii").strip()
