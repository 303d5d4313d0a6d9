"""Link profiles: the bench run again inside a network namespace whose loopback is shaped like a user's uplink.

The namespace (created here, removed afterwards; root only) has its own loopback at MTU 1500, limited with
``tc … tbf`` (this kernel has no ``netem``). SeaweedFS, the server and Chromium all run inside it, so every byte a
contender sends, and every byte of a first visit, crosses the limited link (both directions share it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: What ``tc`` takes as a rate, and nothing else (it goes on a command line).
RATE = re.compile(r"^[1-9][0-9]{0,5}(k|m|g)?bit$")
MTU = 1500


def check_rate(rate: str) -> str:
    if not RATE.match(rate):
        raise ValueError(f"link rate {rate!r}: expected a tc rate such as 20mbit or 100mbit")
    return rate


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def shaped_namespace(rate: str) -> Iterator[str]:
    """A fresh namespace ``smartcat-bench-<pid>`` whose loopback is up at MTU 1500 and limited to ``rate`` (and which
    the browser sees as online)."""
    if os.geteuid() != 0:
        raise RuntimeError("link profiles need root (ip netns, tc): run make bench as root, or --no-links")
    name = f"smartcat-bench-{os.getpid()}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "mtu", str(MTU))
        _ip("-n", name, "link", "set", "lo", "up")
        # With only a loopback, Chromium calls itself offline (navigator.onLine false): Uppy 6 then waits for the
        # network and never sends. A veth pair inside the namespace, one end with an address, makes it online; it
        # leads nowhere (both ends are here), so the namespace stays cut off from everything else.
        _ip("-n", name, "link", "add", "online0", "type", "veth", "peer", "name", "online1")
        _ip("-n", name, "link", "set", "online1", "up")
        _ip("-n", name, "link", "set", "online0", "up")
        _ip("-n", name, "addr", "add", "10.254.0.1/30", "dev", "online0")
        subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "replace", "dev", "lo", "root", "tbf", "rate",
                        check_rate(rate), "burst", "64kb", "latency", "100ms"], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def run_shaped(rate: str, argv: list[str]) -> int:
    """``python -m bench ARGV`` inside a namespace shaped to ``rate``; its exit status."""
    with shaped_namespace(rate) as name:
        command = ["ip", "netns", "exec", name, sys.executable, "-m", "bench", *argv, "--inside-link", rate]
        return subprocess.run(command, check=False).returncode
