"""Build what the worker loads from the app's own origin into ``build/runtime/``.

- ``pyodide/<version>/``: the Pyodide core from the npm package (``web/node_modules/pyodide``, installed by ``npm ci``).
- ``engine/smartcat_engine-<version>+<hash>-py3-none-any.whl``: the engine, built with pip/hatchling from
  ``browser_py`` and ``wire`` (without the CPython-only modules); the source hash in the version makes the URL
  content-addressed, so it can be cached as immutable.
- ``snapshot/<key>.bin``: a Pyodide memory snapshot with the engine installed and imported (made by
  ``web/snapshot.mjs`` under Node), stored as its difference (XOR) from the memory a fresh instance holds before the
  restore (the wasm's data segments, which the browser has already), non-zero pages only; the key hashes every input,
  so it is immutable too. Restoring it makes the worker ready in under a second instead of ~5 s. Beside it
  ``snapshot/<key>.zip``: the standard library it restores with, trimmed to the modules imported when it was made
  (1.9 -> 0.64 MB over the wire); a plain boot uses Pyodide's whole one. Skipped (the worker then boots plainly)
  with ``--no-snapshot`` or when Node is missing.
- ``<file>.br`` and ``<file>.gz`` beside every runtime file that compresses (the wasm, the JS, the snapshot, the
  stdlib): the server answers with one of them and ``Content-Encoding`` when the browser accepts it
  (``server/static.py``), so a first visit downloads about half the bytes and the browser decodes them off the
  worker's thread. The stdlib zip is repacked with its files stored, not deflated, so that brotli sees the text.
- ``runtime.json``: where they are, read by the server's ``/api/runtime``.

Usage: ``python web/build_runtime.py [--out build/runtime] [--no-snapshot]``. Idempotent: unchanged inputs rebuild
nothing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import brotli

ROOT = Path(__file__).resolve().parent.parent
PYODIDE_PACKAGE = ROOT / "web" / "node_modules" / "pyodide"
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
ENGINE_PACKAGES = ("browser_py", "wire")  # the engine and the contract it shares with the server
# Modules that need CPython-only libraries (httpx) stay out of the browser wheel.
ENGINE_EXCLUDED = ("browser_py/adapters/cpython.py", "browser_py/cli.py")
ENGINE_VERSION = "0.1.0"
SNAPSHOT_SCRIPT = ROOT / "web" / "snapshot.mjs"
RESTORE_SCRIPT = ROOT / "web" / "restore.mjs"  # the XOR both sides apply
# Everything a snapshot depends on: it only restores into the same wasm build and the same stdlib zip bytes.
SNAPSHOT_INPUTS = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
SNAPSHOT_PAGE = 64 * 1024  # wasm page size
# How the worker decodes the snapshot file: non-zero pages of the snapshot XOR the fresh memory (web/restore.mjs).
SNAPSHOT_ENCODING = "pages-xor-base"
STDLIB = "python_stdlib.zip"
# Runtime files worth compressing, by suffix (the wheel is a deflated zip already; the stdlib is repacked stored).
COMPRESSIBLE = (".wasm", ".mjs", ".js", ".json", ".zip", ".bin")
# Brotli quality 6 with a 16 MiB window: within ~15% of quality 11's size at a small fraction of its CPU (the wasm:
# 3.20 MB in 1.3 CPU s; quality 11: 2.77 MB in minutes; every engine change rebuilds the snapshot). Quality 6 saves
# ~3% over 5 for ~1.5x its time; 7-9 save 1-2% more for 4-10x.
BROTLI_QUALITY = 6
BROTLI_WINDOW = 24
# Quality 11 for files up to this size: the trimmed stdlib (4.6 MB) 0.75 -> 0.64 MB for ~13 CPU s, pyodide.asm.mjs
# 0.24 -> 0.21 MB for ~3 s; the snapshot (12 MB, remade by every engine change) would take minutes.
BROTLI_SMALL = 5 * 1024 * 1024
BROTLI_BEST = 11
# ...and for the wasm, whatever its size: every visit downloads it, and it changes only with the Pyodide version
# (copied with its date, so the variant made once is kept by later builds): 3.20 -> 2.77 MB, the largest cut left
# in a first visit, for ~41 CPU s once per build directory. (The full stdlib beside it serves only the plain boot.)
BEST_ALWAYS = frozenset({"pyodide.asm.wasm"})
# A variant is kept only when it saves at least this fraction of the file.
MIN_SAVING = 0.1

ENGINE_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "smartcat-engine"
version = "{version}"
description = "Smartcat upload engine (browser build)"
requires-python = ">=3.11"

[tool.hatch.build.targets.wheel]
packages = ["browser_py", "wire"]
exclude = {excluded}
"""


def pyodide_version() -> str:
    package = json.loads((PYODIDE_PACKAGE / "package.json").read_text())
    return str(package["version"])


def copy_pyodide(out: Path) -> str:
    if not PYODIDE_PACKAGE.is_dir():
        sys.exit("web/node_modules/pyodide is missing: run `npm ci --prefix web` first")
    version = pyodide_version()
    target = out / "pyodide" / version
    target.mkdir(parents=True, exist_ok=True)
    for name in PYODIDE_FILES:
        source, dest = PYODIDE_PACKAGE / name, target / name
        if name == STDLIB:
            if not (dest.exists() and _all_stored(dest)):
                _write_atomic(dest, stored_zip(source.read_bytes()))
        elif not dest.exists() or dest.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, dest)
    return f"/runtime/pyodide/{version}/"


def stored_zip(data: bytes) -> bytes:
    """The same zip with every member stored (no deflate): 9.7 MB instead of 2.5, but brotli takes it to ~1.6 MB
    (deflated members barely compress again), and zipimport reads stored members without inflating them."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            target.writestr(copy, source.read(info), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def _all_stored(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())


def write_encodings(path: Path, best: bool = False) -> dict[str, int]:
    """``path.br`` and ``path.gz`` when they save at least MIN_SAVING (a stale or useless one is removed); brotli at
    its best quality when ``best`` or the file is small.

    Returns the sizes written, by encoding. Idempotent: a variant newer than its file is kept as it is.
    """
    sizes: dict[str, int] = {}
    data: bytes | None = None
    for encoding, suffix in (("br", ".br"), ("gzip", ".gz")):
        variant = path.with_name(path.name + suffix)
        if variant.exists() and variant.stat().st_mtime >= path.stat().st_mtime:
            sizes[encoding] = variant.stat().st_size
            continue
        data = path.read_bytes() if data is None else data
        if encoding == "br":
            quality = BROTLI_BEST if best or len(data) <= BROTLI_SMALL else BROTLI_QUALITY
            packed = brotli.compress(data, quality=quality, lgwin=BROTLI_WINDOW)
        else:
            packed = gzip.compress(data, compresslevel=9, mtime=0)
        if len(packed) <= len(data) * (1 - MIN_SAVING):
            _write_atomic(variant, packed)
            sizes[encoding] = len(packed)
        else:
            variant.unlink(missing_ok=True)
    return sizes


def compress_runtime(out: Path) -> dict[str, dict[str, int]]:
    """Precompressed variants of every compressible runtime file; the sizes by URL path, for the manifest."""
    found: dict[str, dict[str, int]] = {}
    for path in sorted(out.glob("*/**/*")):  # not runtime.json: the server answers /api/runtime itself
        if path.is_file() and path.suffix in COMPRESSIBLE and not path.name.startswith("."):
            sizes = write_encodings(path, best=path.name in BEST_ALWAYS)
            if sizes:
                found["/runtime/" + path.relative_to(out).as_posix()] = {"identity": path.stat().st_size, **sizes}
    return found


def engine_sources() -> list[Path]:
    excluded = {ROOT / name for name in ENGINE_EXCLUDED}
    sources = (p for package in ENGINE_PACKAGES for p in (ROOT / package).rglob("*.py"))
    return sorted(p for p in sources if p not in excluded and "__pycache__" not in p.parts)


def engine_hash() -> str:
    digest = hashlib.sha256()
    for path in engine_sources():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build_engine_wheel(out: Path) -> str:
    version = f"{ENGINE_VERSION}+{engine_hash()}"
    wheel_dir = out / "engine"
    name = f"smartcat_engine-{version}-py3-none-any.whl"
    if (wheel_dir / name).exists():
        return f"/runtime/engine/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "engine"
        for package in ENGINE_PACKAGES:
            shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
        excluded = json.dumps(list(ENGINE_EXCLUDED))
        (project / "pyproject.toml").write_text(ENGINE_PYPROJECT.format(version=version, excluded=excluded))
        built = Path(tmp) / "dist"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(built),
             str(project)],
            check=True,
        )
        (wheel,) = built.glob("*.whl")
        if wheel.name != name:
            raise SystemExit(f"unexpected wheel name {wheel.name}, wanted {name}")
        shutil.rmtree(wheel_dir, ignore_errors=True)
        wheel_dir.mkdir(parents=True)
        shutil.copyfile(wheel, wheel_dir / name)
    return f"/runtime/engine/{name}"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def sparse_pages(data: bytes, page: int = 0) -> tuple[list[list[int]], bytes]:
    """Runs ``[first_page, count]`` of pages holding a non-zero byte, and those pages concatenated.

    About half of the snapshot (a wasm heap) is zero pages: leaving them out halves the gzip the worker decodes,
    which is ~100 ms of its cold start on a slow core. The worker writes the pages back into a zeroed buffer.
    """
    page = page or SNAPSHOT_PAGE
    runs: list[list[int]] = []
    payload = bytearray()
    for number, offset in enumerate(range(0, len(data), page)):
        chunk = data[offset : offset + page]
        if chunk.count(0) == len(chunk):
            continue
        if runs and runs[-1][0] + runs[-1][1] == number:
            runs[-1][1] += 1
        else:
            runs.append([number, 1])
        payload += chunk
    return runs, bytes(payload)


def snapshot_key(pyodide_dir: Path, wheel: Path) -> str:
    digest = hashlib.sha256()
    for path in [*(pyodide_dir / name for name in SNAPSHOT_INPUTS), wheel, SNAPSHOT_SCRIPT, RESTORE_SCRIPT]:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def build_snapshot(out: Path, runtime: dict[str, Any]) -> dict[str, Any] | None:
    """Snapshot the booted interpreter with the engine imported; None (plain boot) if Node cannot make one."""
    pyodide_dir = out / "pyodide" / runtime["pyodide_version"]
    wheel = out / "engine" / Path(runtime["engine_wheel_url"]).name
    key = snapshot_key(pyodide_dir, wheel)
    snap_dir = out / "snapshot"
    target = snap_dir / f"{key}.bin"
    meta_path = snap_dir / f"{key}.json"
    if not (target.exists() and target.with_suffix(".zip").exists() and meta_path.exists()):
        node = shutil.which("node")
        if node is None:
            print("warning: node not found; no memory snapshot (the worker boots without one, ~5 s)", file=sys.stderr)
            return None
        snap_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw, trimmed = Path(tmp) / "snapshot.bin", Path(tmp) / "stdlib.zip"
            done = subprocess.run(
                [node, str(SNAPSHOT_SCRIPT), str(pyodide_dir), str(wheel), str(raw), str(trimmed), key],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0 or not raw.exists() or not trimmed.exists():
                tail = (done.stderr or done.stdout)[-2000:]
                print(f"warning: snapshot build failed; the worker boots without one:\n{tail}", file=sys.stderr)
                return None
            report = json.loads(done.stdout.strip().splitlines()[-1])
            data = raw.read_bytes()
            stdlib = trimmed.read_bytes()
        for stale in snap_dir.iterdir():
            stale.unlink(missing_ok=True)
        pages, payload = sparse_pages(data)
        # Written aside then renamed, so a server reading the directory meanwhile never serves half a file. The
        # server sends it compressed (write_encodings); the browser decodes it before the worker sees a byte.
        _write_atomic(target.with_suffix(".zip"), stdlib)
        _write_atomic(target, payload)
        meta = {"key": key, "size": len(data), "page_size": SNAPSHOT_PAGE, "pages": pages, "base": report["base"],
                "stdlib_kept": report["stdlib_kept"], "stdlib_removed": report["stdlib_removed"],
                "skipped_modules": report.get("skipped", {})}
        _write_atomic(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
    meta = json.loads(meta_path.read_text())
    return {
        "url": f"/runtime/snapshot/{target.name}",
        "key": key,
        "encoding": SNAPSHOT_ENCODING,
        "size": meta["size"],
        "page_size": meta["page_size"],
        "pages": meta["pages"],
        "base": meta["base"],
        "stdlib": target.with_suffix(".zip").name,  # beside the snapshot: relative to its URL
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "runtime")
    parser.add_argument("--no-snapshot", action="store_true", help="leave the memory snapshot out (plain boot)")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    runtime: dict[str, Any] = {
        "pyodide_version": pyodide_version(),
        "pyodide_url": copy_pyodide(out),
        "engine_wheel_url": build_engine_wheel(out),
    }
    if not args.no_snapshot:
        snapshot = build_snapshot(out, runtime)
        if snapshot is not None:
            runtime["snapshot"] = snapshot
    runtime["encoded_sizes"] = compress_runtime(out)
    (out / "runtime.json").write_text(json.dumps(runtime, indent=2) + "\n")
    print(f"runtime ready in {out}: {runtime['engine_wheel_url']}")


if __name__ == "__main__":
    main()
