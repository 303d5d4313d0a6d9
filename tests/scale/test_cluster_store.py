"""A clustered store: SeaweedFS with three volume servers keeping two copies of every chunk (replication 001).

A volume server dies (SIGKILL) while the terminal uploader is sending; the upload still completes with the exact
bytes, because every part already stored has a copy on a live server and new parts go to the two that are left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_py.adapters.cpython import upload_file
from browser_py.engine.upload import EngineConfig
from server.seaweed import GRPC_OFFSET, ClusterConfig, SeaweedCluster
from tests.conftest import database_overrides
from tests.integration.test_cpython_upload import CountingTransport, no_multipart_left, only_object, sha256_of_object
from tests.support.files import random_file, sha256_file
from tests.support.live_server import LiveServer, settings_for
from tests.support.seaweed import SeaweedService, start_seaweed_cluster
from wire.plan import MIN_PART_SIZE


def test_cluster_command_lines_are_local_and_replicated(tmp_path: Path) -> None:
    config = ClusterConfig(
        data_dir=tmp_path,
        access_key_id="k",
        secret_access_key="s",
        s3_port=20001,
        master_port=20002,
        filer_port=20004,
        volume_ports=(20011, 20012),
        replication="001",
        binary="/bin/weed",
    )
    commands = SeaweedCluster(config).commands()
    assert list(commands) == ["master", "volume-0", "volume-1", "filer"], "the master first, the S3 door last"
    for command in commands.values():
        assert command[:2] == ["/bin/weed", f"-logdir={tmp_path.resolve() / 'logs'}"]
        assert {"-ip=127.0.0.1", "-ip.bind=127.0.0.1"} <= set(command)
    assert {"-telemetry=false", "-defaultReplication=001", "-peers=none"} <= set(commands["master"])
    assert {"-port=20012", f"-port.grpc={20012 + GRPC_OFFSET}", "-mserver=127.0.0.1:20002"} <= set(commands["volume-1"])
    assert {f"-s3.config={tmp_path.resolve() / 's3.json'}", "-s3.port=20001", "-master=127.0.0.1:20002"} <= set(
        commands["filer"]
    )
    assert sorted(config.ports) == sorted(
        [20001, 20002, 20004, 20011, 20012, *(p + GRPC_OFFSET for p in (20001, 20002, 20004, 20011, 20012))]
    )


def busiest_volume_server(store: SeaweedCluster) -> int:
    """The volume server whose volume files hold the most bytes: the one holding the parts stored so far."""
    sizes = [
        sum(path.stat().st_size for path in (store.config.data_dir / "data" / f"volume-{index}").glob("*.dat"))
        for index in range(len(store.config.volume_ports))
    ]
    return sizes.index(max(sizes))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedService]:
    service = start_seaweed_cluster(tmp_path_factory.mktemp("cluster"), volume_servers=3, replication="001")
    try:
        yield service
    finally:
        service.stop()


async def test_a_volume_server_killed_mid_upload_loses_nothing(
    cluster: SeaweedService, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = cluster.instance
    assert isinstance(store, SeaweedCluster)
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    settings = settings_for(
        cluster,
        data_dir,
        part_size_bytes=MIN_PART_SIZE,
        adaptive_part_size=False,
        **database_overrides(request, data_dir),
    )
    source = random_file(tmp_path / "source.bin", 8 * MIN_PART_SIZE + 4321)
    transport = CountingTransport()
    with LiveServer(settings) as server:
        upload = asyncio.ensure_future(
            upload_file(
                source,
                server.base_url,
                tmp_path / "state",
                config=EngineConfig(concurrency=2, adaptive_concurrency=False),
                storage_transport=transport,
            )
        )
        while len(transport.sent) < 2:
            transport.part_done.clear()
            await transport.part_done.wait()
        victim = busiest_volume_server(store)
        await asyncio.to_thread(store.kill_volume, victim)
        stored_before_kill = len(transport.sent)
        try:
            result = await upload
            assert result.ok, result.view
            assert len(transport.sent) > stored_before_kill, "parts were sent after the kill"
            assert store.volume_servers() == 2, "the master saw one volume server go"
            bucket = settings.s3_bucket
            key = only_object(cluster.client, bucket)
            # Read with one of three servers down: every chunk has its second copy on a live one.
            assert sha256_of_object(cluster.client, bucket, key) == sha256_file(source)
            assert no_multipart_left(cluster.client, bucket)
        finally:
            await asyncio.to_thread(store.start_volume, victim)
