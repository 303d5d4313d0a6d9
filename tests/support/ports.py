"""Free TCP ports on 127.0.0.1 (a port is free when we can bind it; someone may take it right after)."""

from __future__ import annotations

import random
import socket

from server.seaweed import GRPC_OFFSET


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel picks from its ephemeral range."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def free_seaweed_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` HTTP ports whose gRPC twins (port + 10000) are free too, away from SeaweedFS's defaults.

    Random picks from 20000-44999 (twins in 30000-54999), checked by binding; the kernel could still hand one
    out as an outgoing connection's port before SeaweedFS binds it, which start-up then reports clearly.
    """
    rng = random.Random()
    chosen: list[int] = []
    for _ in range(10_000):
        port = rng.randrange(20_000, 45_000)
        if port in chosen or port + GRPC_OFFSET in chosen or port - GRPC_OFFSET in chosen:
            continue
        if port_is_free(port, host) and port_is_free(port + GRPC_OFFSET, host):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("could not find free ports for SeaweedFS")
