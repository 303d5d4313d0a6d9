"""A real SeaweedFS for tests: its own temp dir, free ports, fixed credentials, and a boto3 client."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from server.seaweed import ClusterConfig, SeaweedCluster, SeaweedConfig, SeaweedError, SeaweedFS
from server.storage import S3Credentials, make_client
from tests.support.ports import free_seaweed_ports

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

TEST_ACCESS_KEY_ID = "smartcat-test"
TEST_SECRET_ACCESS_KEY = "smartcat-test-secret"
TEST_REGION = "us-east-1"


@dataclass
class SeaweedService:
    """A running SeaweedFS: where it listens, how to sign in, and the process (to stop, kill or restart it)."""

    instance: SeaweedFS | SeaweedCluster
    access_key_id: str = TEST_ACCESS_KEY_ID
    secret_access_key: str = TEST_SECRET_ACCESS_KEY
    region: str = TEST_REGION
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return self.instance.endpoint_url

    @property
    def credentials(self) -> S3Credentials:
        return S3Credentials(self.access_key_id, self.secret_access_key, self.region)

    @cached_property
    def client(self) -> S3Client:
        """A boto3 S3 client (SigV4, path style) on this SeaweedFS, shared by the tests; thread-safe."""
        return make_client(self.endpoint_url, self.credentials)

    def new_bucket_name(self, hint: str = "t") -> str:
        """A unique, valid bucket name (the server creates it on start)."""
        cleaned = "".join(ch if ch.isalnum() else "-" for ch in hint.lower()).strip("-")[:40] or "t"
        name = f"{cleaned}-{secrets.token_hex(4)}"
        self.buckets.append(name)
        return name

    def restart(self, timeout: float = 30.0) -> None:
        """Graceful stop then start on the same ports and data: multipart uploads in flight survive."""
        self.instance.restart(timeout)

    def stop(self) -> None:
        self.instance.stop()

    def start(self, timeout: float = 30.0) -> None:
        self.instance.start(timeout)


def start_seaweed(base_dir: Path, *, allowed_origins: Sequence[str] = ("http://127.0.0.1",)) -> SeaweedService:
    """Start SeaweedFS with data under ``base_dir`` on free ports; the caller stops it (``.stop()``).

    ``allowed_origins`` is SeaweedFS's fallback CORS for buckets without their own rule; the server always
    writes a rule for its bucket, so this only matters for buckets a test makes by hand.
    """
    s3, master, volume, filer, admin = free_seaweed_ports(5)
    config = SeaweedConfig(
        data_dir=base_dir,
        access_key_id=TEST_ACCESS_KEY_ID,
        secret_access_key=TEST_SECRET_ACCESS_KEY,
        s3_port=s3,
        master_port=master,
        volume_port=volume,
        filer_port=filer,
        admin_port=admin,
        allowed_origins=list(allowed_origins),
        # A session of tests makes hundreds of buckets, each growing volumes of its own: with SeaweedFS's default
        # (free disk ÷ 128 MB: ~500 here) the store answered "no free volumes left" late in a run. Volumes are
        # sparse files, so a high count costs no disk.
        max_volumes=5000,
        # In the test run's process group: a `timeout` or Ctrl-C that ends the run ends SeaweedFS too.
        new_session=False,
    )
    instance = SeaweedFS(config)
    instance.start()
    return SeaweedService(instance=instance)


def start_seaweed_cluster(base_dir: Path, *, volume_servers: int = 3, replication: str = "001") -> SeaweedService:
    """A SeaweedFS cluster (one master, ``volume_servers`` volume servers keeping ``replication`` copies, one filer
    with S3) under ``base_dir`` on free ports, in the test run's process group; the caller stops it.

    Its 2 * (3 + ``volume_servers``) ports are checked free, yet one may become an outgoing connection's local port
    before its process binds it (the gRPC twins lie in the kernel's ephemeral range): then it starts again on
    fresh ports, at most twice more.
    """
    for attempt in range(3):
        s3, master, filer, *volumes = free_seaweed_ports(3 + volume_servers)
        config = ClusterConfig(
            data_dir=base_dir / f"attempt-{attempt}",
            access_key_id=TEST_ACCESS_KEY_ID,
            secret_access_key=TEST_SECRET_ACCESS_KEY,
            s3_port=s3,
            master_port=master,
            filer_port=filer,
            volume_ports=tuple(volumes),
            replication=replication,
            new_session=False,
        )
        cluster = SeaweedCluster(config)
        try:
            cluster.start()
        except SeaweedError as error:
            if "address already in use" not in str(error) or attempt == 2:
                raise
            continue
        return SeaweedService(instance=cluster)
    raise AssertionError("unreachable")
