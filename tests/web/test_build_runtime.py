"""The runtime build's pure parts: the sparse page encoding of the memory snapshot (the worker decodes it), the
precompressed variants the server negotiates, and the stdlib repacked stored."""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import brotli
import pytest

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


def test_encodings_are_written_when_they_save_and_only_then(tmp_path: Path) -> None:
    build = _build_runtime()
    text = tmp_path / "a.mjs"
    text.write_bytes(b"export const x = 1;\n" * 500)
    sizes = build.write_encodings(text)
    assert brotli.decompress((tmp_path / "a.mjs.br").read_bytes()) == text.read_bytes()
    assert gzip.decompress((tmp_path / "a.mjs.gz").read_bytes()) == text.read_bytes()
    assert sizes == {"br": (tmp_path / "a.mjs.br").stat().st_size, "gzip": (tmp_path / "a.mjs.gz").stat().st_size}
    # Random bytes do not compress: a variant left from an earlier build of that name is removed, not served.
    text.write_bytes(os.urandom(20000))
    os.utime(text, (text.stat().st_atime, (tmp_path / "a.mjs.br").stat().st_mtime + 10))
    assert build.write_encodings(text) == {}
    assert not (tmp_path / "a.mjs.br").exists() and not (tmp_path / "a.mjs.gz").exists()


def test_stdlib_repacked_stored_keeps_every_member() -> None:
    build = _build_runtime()
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("json/__init__.py", "import sys\n" * 50)
        archive.writestr("asyncio/", "")
        archive.writestr("os.py", "x = 1\n")
    repacked = zipfile.ZipFile(io.BytesIO(build.stored_zip(source.getvalue())))
    original = zipfile.ZipFile(source)
    assert [i.filename for i in repacked.infolist()] == [i.filename for i in original.infolist()]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in repacked.infolist())
    assert all(repacked.read(i.filename) == original.read(i.filename) for i in original.infolist())
    assert build.stored_zip(source.getvalue()) == build.stored_zip(source.getvalue())  # the snapshot key is stable


def test_the_wasm_gets_brotli_at_its_best_whatever_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every visit downloads the wasm and it changes only with Pyodide: it is worth quality 11 where a file of its
    size remade by every engine change (the snapshot) is not."""
    build = _build_runtime()
    monkeypatch.setattr(build, "BROTLI_SMALL", 0)  # every file counts as large here
    text = b"(module (func $f (param i32) (result i32) local.get 0))\n" * 4000
    for name in ("pyodide.asm.wasm", "key.bin"):
        (tmp_path / "v" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "v" / name).write_bytes(text)
    build.compress_runtime(tmp_path)
    best = brotli.compress(text, quality=build.BROTLI_BEST, lgwin=build.BROTLI_WINDOW)
    usual = brotli.compress(text, quality=build.BROTLI_QUALITY, lgwin=build.BROTLI_WINDOW)
    assert best != usual
    assert (tmp_path / "v" / "pyodide.asm.wasm.br").read_bytes() == best
    assert (tmp_path / "v" / "key.bin.br").read_bytes() == usual
