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


#: Ports for the tests' servers: below the kernel's ephemeral range (32768-60999 here), so that no outgoing
#: connection (a browser's, a client's) takes one between our check and the server's bind, and below the
#: SeaweedFS picks (20000-54999). Random picks keep two test runs at once (make test runs two) apart.
SERVER_PORTS = range(10_000, 20_000)


def free_port(host: str = "127.0.0.1") -> int:
    """A random port of ``SERVER_PORTS`` that binds now (someone may still take it right after)."""
    rng = random.Random()
    for _ in range(1_000):
        port = rng.choice(SERVER_PORTS)
        if port_is_free(port, host):
            return port
    raise RuntimeError(f"no free port in {SERVER_PORTS.start}-{SERVER_PORTS.stop - 1}")


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
