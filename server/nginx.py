"""A reverse proxy in front of the app and the store: runs Debian's ``nginx`` as a child process, like
:mod:`server.seaweed` runs SeaweedFS.

Why: Background Fetch only sends same-origin PUTs (it does no CORS preflight), so part URLs must be on the app's
origin. The proxy serves two routes on one origin:

- ``/`` goes round-robin to one or more app instances (no sticky sessions). Passive failover: a request that met a
  connection error, a timeout or a 502/503/504 is tried on the next instance, and nginx's default already limits that
  to idempotent methods (``non_idempotent`` is deliberately not given), so a POST is never sent twice.
- the store route (``/store/<bucket>/…``) goes to the S3 endpoint. The URL is presigned for the store, so the path
  after the prefix is passed on byte for byte (from ``$request_uri``, never nginx's decoded form) with the ``Host``
  the signature was made for. Only ``PUT`` of a presigned part into the one bucket passes: dot segments, encoded
  dots or slashes, other buckets and other methods are refused here, before the store sees them. Bodies stream
  (request buffering off) up to the largest part, nothing is cached, the app's cookies never reach the store, and the
  access log leaves out query strings (they carry signatures).

Everything nginx writes (pid, temp files, access log) is in the work directory; the error log goes to stderr (a file
in the work directory unless told otherwise). No port below 1024 and no system path is needed; under root the
workers keep root's identity rather than switching to ``nobody`` (who could not read a private work directory).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx

from server.child import check_port_free, tail, terminate, wait_until_ready
from wire.plan import MAX_PART_SIZE

__all__ = ["Nginx", "NginxConfig", "NginxError", "find_nginx"]

#: Where Debian puts the binary (``/usr/sbin`` is not on every user's PATH).
_DEBIAN_NGINX = "/usr/sbin/nginx"
#: What a bucket name may be (S3's rules, loosely): it is written into the config and a regular expression.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: An upstream address: ``host:port`` with a literal IPv4 address or a plain host name.
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")


class NginxError(RuntimeError):
    """nginx could not be found, configured, started, or did not answer in time."""


def find_nginx() -> str:
    """Debian's ``nginx`` (``make nginx`` installs it), else one on PATH."""
    if os.access(_DEBIAN_NGINX, os.X_OK):
        return _DEBIAN_NGINX
    found = shutil.which("nginx")
    if found:
        return found
    raise NginxError("nginx not found: install Debian's `nginx` package (make nginx)")


def _host_port(url_or_address: str) -> str:
    """``127.0.0.1:8333`` from ``http://127.0.0.1:8333`` (or from itself), checked before it goes into the config."""
    netloc = urlsplit(url_or_address).netloc if "://" in url_or_address else url_or_address
    if not _HOST_PORT.fullmatch(netloc):
        raise NginxError(f"not a host:port address nginx can proxy to: {url_or_address!r}")
    return netloc


@dataclass(frozen=True)
class NginxConfig:
    """What the proxy listens on and where it sends each route."""

    work_dir: Path
    #: App instances (``host:port`` or ``http://host:port``), round-robin.
    app_upstreams: Sequence[str]
    #: The S3 endpoint nginx forwards store requests to.
    store_endpoint_url: str
    #: The only bucket the store route reaches.
    bucket: str
    #: The ``Host`` the part URLs were presigned for; by default the store endpoint's own.
    store_host: str | None = None
    #: The path prefix of the store route (``/store/`` → ``/store/<bucket>/<key>?<presigned query>``).
    store_prefix: str = "/store/"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    #: The largest body the store route takes: one part.
    max_part_bytes: int = MAX_PART_SIZE
    #: The largest body an app request may have (the app refuses more itself; nginx refuses it earlier).
    max_app_body_bytes: int = 1024 * 1024
    #: An app instance that failed this many times within ``fail_timeout`` is left out for ``fail_timeout``.
    max_fails: int = 1
    fail_timeout_seconds: int = 5
    #: How long a store PUT may go without a byte moving either way before nginx gives up on it.
    idle_timeout_seconds: int = 300
    binary: str | None = None
    #: Where nginx's stderr (its error log) goes; ``None``: ``nginx.err`` in the work directory.
    stderr: IO[bytes] | None = None
    #: Run in a session of its own (``python -m server``), or in ours so a killed test run takes it along.
    new_session: bool = True

    def __post_init__(self) -> None:
        if not self.app_upstreams:
            raise NginxError("nginx needs at least one app upstream")
        if not _BUCKET.fullmatch(self.bucket):
            raise NginxError(f"not a bucket name the store route can carry: {self.bucket!r}")
        if not re.fullmatch(r"/[A-Za-z0-9_-]+/", self.store_prefix):
            raise NginxError(f"the store prefix must look like /store/, not {self.store_prefix!r}")
        for address in (*self.app_upstreams, self.store_endpoint_url, self.store_host or self.store_endpoint_url):
            _host_port(address)
        if not 0 < self.listen_port < 65536:
            raise NginxError(f"not a port: {self.listen_port}")

    @property
    def origin(self) -> str:
        """The origin browsers see (the app and the store route both live on it)."""
        return f"http://{self.listen_host}:{self.listen_port}"

    @property
    def store_base_url(self) -> str:
        """Part URLs presigned for the store start with this instead of the store's endpoint."""
        return self.origin + self.store_prefix.rstrip("/")


def render(config: NginxConfig) -> str:
    """The whole ``nginx.conf`` for ``config`` (paths absolute, so nginx's own prefix never matters)."""
    work = config.work_dir.resolve()
    apps = "\n".join(
        f"        server {_host_port(address)} max_fails={config.max_fails} "
        f"fail_timeout={config.fail_timeout_seconds}s;"
        for address in config.app_upstreams
    )
    store = _host_port(config.store_endpoint_url)
    store_host = _host_port(config.store_host or config.store_endpoint_url)
    prefix = config.store_prefix
    bucket_prefix = f"{prefix}{config.bucket}/"
    bucket_re = re.escape(config.bucket)
    prefix_re = re.escape(prefix.rstrip("/"))
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    idle = config.idle_timeout_seconds
    return f"""# Rendered by server/nginx.py; changes here are overwritten on the next start.
{user}worker_processes 1;
pid {work}/nginx.pid;
error_log stderr warn;

events {{
    # Each client holds a keep-alive connection and each proxied request one more to its upstream: 1024 made nginx
    # cut idle client connections at 500 load-test users ("worker_connections are not enough", make load).
    worker_connections 8192;
}}

http {{
    # Query strings carry signatures and tokens: the log keeps only the path.
    log_format paths '$remote_addr [$time_local] "$request_method $uri" $status $body_bytes_sent $request_time';
    access_log {work}/access.log paths;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server_tokens off;
    types_hash_max_size 2048;

    # The store path from the raw request line (a map's capture is not re-escaped, unlike one taken by "set"),
    # the query after it as $args (raw too; a "?" inside a variable would be escaped).
    map $request_uri $store_uri {{
        "~^{prefix_re}(?<path>/{bucket_re}/[^?]+)\\?" $path;
        default "";
    }}

    upstream app {{
{apps}
        keepalive 16;
    }}

    upstream store {{
        server {store};
        keepalive 16;
    }}

    server {{
        listen {config.listen_host}:{config.listen_port};
        server_name _;

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # This nginx is the edge: it names the peer it sees and drops what a client wrote (appending would let a
            # client on an address the app trusts, e.g. this host's loopback, name any address it likes).
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            # The app is at / here: a client's own X-Forwarded-Prefix is dropped, never passed on as ours.
            proxy_set_header X-Forwarded-Prefix "";
            # Passive failover, for idempotent methods only (nginx's default without non_idempotent).
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries {len(config.app_upstreams)};
            proxy_connect_timeout 5s;
            client_max_body_size {config.max_app_body_bytes};
        }}

        # Anything under the prefix but outside the bucket (other buckets, dot segments nginx merged away).
        location ^~ {prefix} {{
            return 404;
        }}

        location ^~ {bucket_prefix} {{
            limit_except PUT {{
                deny all;
            }}
            # The raw request line, not nginx's decoded and merged $uri: the signature covers the exact bytes.
            # Dot segments, encoded dots or slashes and backslashes never come from a presigned part URL.
            if ($request_uri ~ "^[^?]*(%2[eEfF]|%5[cC]|\\x5c|//|/\\.\\.?(/|\\?|$))") {{
                return 400;
            }}
            if ($store_uri = "") {{
                return 403;
            }}
            if ($arg_uploadId = "") {{
                return 403;
            }}
            if ($arg_partNumber = "") {{
                return 403;
            }}
            if ($args !~ "(^|&)X-Amz-Signature=[^&]") {{
                return 403;
            }}
            proxy_pass http://store$store_uri?$args;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {store_host};
            proxy_set_header Cookie "";
            proxy_hide_header Set-Cookie;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_cache off;
            client_max_body_size {config.max_part_bytes};
            client_body_timeout {idle}s;
            proxy_send_timeout {idle}s;
            proxy_read_timeout {idle}s;
            add_header Cache-Control "no-store" always;
        }}
    }}
}}
"""


class Nginx:
    """One ``nginx -g 'daemon off;'`` process: ``start()`` waits until it answers, ``stop()`` ends it."""

    def __init__(self, config: NginxConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def conf_path(self) -> Path:
        return self.config.work_dir / "nginx.conf"

    @property
    def stderr_path(self) -> Path:
        return self.config.work_dir / "nginx.err"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        work = str(self.config.work_dir.resolve())
        binary = self.config.binary or find_nginx()
        # -e: the error log before the config is read (the default /var/log/nginx is not ours to write).
        return [binary, "-p", work + "/", "-e", "stderr", "-c", str(self.conf_path.resolve()), "-g", "daemon off;"]

    def start(self, timeout: float = 15.0) -> None:
        """Write the config, start nginx and return once it answers HTTP; raise with its stderr if it does not."""
        if self.running:
            return
        work = self.config.work_dir
        work.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_port_free(self.config.listen_host, self.config.listen_port, NginxError)
        self.conf_path.write_text(render(self.config), encoding="utf-8")
        stderr: IO[bytes] | int = self.config.stderr or self.stderr_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=work,
                start_new_session=self.config.new_session,
            )
        finally:
            if self.config.stderr is None and not isinstance(stderr, int):
                stderr.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Poll until nginx answers HTTP on its port (any status: the app behind it may not be up yet)."""
        assert self.process is not None
        with httpx.Client(timeout=2.0) as client:
            wait_until_ready(
                f"nginx at {self.origin}", {"nginx": self.process},
                lambda: client.get(self.origin + self.config.store_prefix).status_code > 0, timeout,
                error=NginxError, report=self.log_tail, transient=(httpx.TransportError,),
            )  # fmt: skip

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (nginx's fast shutdown), then SIGKILL if it has not exited after ``timeout`` seconds."""
        process, self.process = self.process, None
        terminate(process, timeout)

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.stderr_path, lines)

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
