"""CPU time and memory of Chromium's processes, read from /proc by a sampling thread (Linux only).

CPU is a monotone counter (the last utime+stime seen of every process of the browser, alive or gone), so the CPU
of an interval is the difference of two readings; a timeline of readings gives the CPU between any two moments.
Memory is the peak, over samples, of the largest renderer process's RSS: a page of our origin and its SharedWorker
share one renderer process, while the others are idle helpers (a spare renderer, one lingering from a closed tab;
the browser's own WebUI renderer is left out), so the largest one is the contender's. A sum would count the helpers,
which come and go between runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
T = TypeVar("T")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS bytes) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid, utime, stime, rss_pages = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
    return ppid, (utime + stime) / TICKS, rss_pages * PAGE


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process under it, from a pid -> parent pid map."""
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def members(root: int) -> set[int]:
    """The processes of the browser whose main process is ``root`` (it and everything under it)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    return descendants(root, parents)


def find_browser(marker: str) -> int | None:
    """The main Chromium process: the one whose command line names our profile directory."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            line = _cmdline(int(entry.name))
            if marker in line and "--type=" not in line:
                return int(entry.name)
    return None


@dataclass
class Sample:
    cpu_s: float
    renderer_rss: int
    renderers: int


@dataclass
class ProcessSampler:
    """Samples the process tree under ``root`` every ``interval`` seconds until stopped."""

    root: int
    interval: float = 0.1
    _cpu: dict[int, float] = field(default_factory=dict)
    _peak_rss: int = 0
    _peak_renderers: int = 0
    _timeline: list[tuple[float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="proc-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _tree(self) -> dict[int, tuple[int, float, int]]:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat is not None:
                    stats[int(entry.name)] = stat
        tree = descendants(self.root, {pid: ppid for pid, (ppid, _, _) in stats.items()})
        return {pid: stats[pid] for pid in tree if pid in stats}

    def sample(self) -> Sample:
        tree = self._tree()
        rss = 0
        renderers = 0
        with self._lock:
            for pid, (_, cpu, resident) in tree.items():
                self._cpu[pid] = max(cpu, self._cpu.get(pid, 0.0))
                # Read every time: a renderer forked from the zygote shows the zygote's command line at first.
                line = _cmdline(pid)
                helper = "--top-chrome-webui" in line or "--extension-process" in line
                if "--type=renderer" in line and not helper:
                    rss = max(rss, resident)
                    renderers += 1
            self._peak_rss = max(self._peak_rss, rss)
            self._peak_renderers = max(self._peak_renderers, renderers)
            total = sum(self._cpu.values())
            self._timeline.append((time.time(), total))
            if len(self._timeline) > 100_000:
                del self._timeline[:50_000]
            return Sample(total, rss, renderers)

    def cpu_at(self, when: float) -> float:
        """The CPU counter at wall-clock time ``when`` (epoch seconds), interpolated between samples."""
        with self._lock:
            line = list(self._timeline)
        before = [(t, c) for t, c in line if t <= when]
        after = [(t, c) for t, c in line if t >= when]
        if not before:
            return after[0][1] if after else 0.0
        if not after:
            return before[-1][1]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (when - t0) / (t1 - t0)

    def cpu(self) -> float:
        """Fresh reading of the CPU counter (seconds)."""
        return self.sample().cpu_s

    def reset_peak(self) -> None:
        with self._lock:
            self._peak_rss = 0
            self._peak_renderers = 0
        self.sample()

    def peak(self) -> tuple[int, int]:
        """(peak RSS of the largest renderer process, most renderer processes at once) since the last reset."""
        self.sample()
        with self._lock:
            return self._peak_rss, self._peak_renderers


def wait_until(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition()`` until truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
