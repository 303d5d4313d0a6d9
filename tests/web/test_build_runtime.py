"""The runtime build's pure parts: the sparse page encoding of the memory snapshot (the worker decodes it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _build_runtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_runtime", ROOT / "web" / "build_runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_runtime", module)
    spec.loader.exec_module(module)
    return module


def _restore(runs: list[list[int]], payload: bytes, size: int, page: int) -> bytes:
    """What worker.mjs does: write the listed pages back into a zeroed buffer."""
    out = bytearray(size)
    at = 0
    for first, count in runs:
        start = first * page
        length = min(count * page, size - start)
        out[start : start + length] = payload[at : at + length]
        at += length
    assert at == len(payload)
    return bytes(out)


def test_sparse_pages_round_trip_and_drop_zero_pages() -> None:
    build = _build_runtime()
    page = 16
    zero = bytes(page)
    data = zero + b"a" * page + zero + zero + bytes(7) + b"b" + bytes(8) + b"c" * page + b"tail"  # last page partial
    runs, payload = build.sparse_pages(data, page)
    assert runs == [[1, 1], [4, 3]]
    assert len(payload) < len(data)
    assert _restore(runs, payload, len(data), page) == data


def test_sparse_pages_of_all_zeros_and_of_nothing() -> None:
    build = _build_runtime()
    assert build.sparse_pages(bytes(100), 16) == ([], b"")
    assert build.sparse_pages(b"", 16) == ([], b"")
