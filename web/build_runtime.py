"""Build what the worker loads from the app's own origin into ``build/runtime/``.

- ``pyodide/<version>/``: the Pyodide core from the npm package (``web/node_modules/pyodide``, installed by ``npm ci``).
- ``engine/smartcat_engine-<version>+<hash>-py3-none-any.whl``: the engine, built with pip/hatchling from
  ``browser_py`` (without the CPython-only modules); the source hash in the version makes the URL content-addressed,
  so it can be cached as immutable.
- ``runtime.json``: where the two are, read by the server's ``/api/runtime``.

Usage: ``python web/build_runtime.py [--out build/runtime]``. Idempotent: unchanged inputs rebuild nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYODIDE_PACKAGE = ROOT / "web" / "node_modules" / "pyodide"
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
ENGINE_SOURCE = ROOT / "browser_py"
# Modules that need CPython-only libraries (httpx) stay out of the browser wheel.
ENGINE_EXCLUDED = ("browser_py/adapters/cpython.py", "browser_py/cli.py")
ENGINE_VERSION = "0.1.0"

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
packages = ["browser_py"]
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
        if not dest.exists() or dest.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, dest)
    return f"/runtime/pyodide/{version}/"


def engine_sources() -> list[Path]:
    excluded = {ROOT / name for name in ENGINE_EXCLUDED}
    return sorted(p for p in ENGINE_SOURCE.rglob("*.py") if p not in excluded and "__pycache__" not in p.parts)


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
        shutil.copytree(ENGINE_SOURCE, project / "browser_py", ignore=shutil.ignore_patterns("__pycache__"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "runtime")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    runtime = {
        "pyodide_version": pyodide_version(),
        "pyodide_url": copy_pyodide(out),
        "engine_wheel_url": build_engine_wheel(out),
    }
    (out / "runtime.json").write_text(json.dumps(runtime, indent=2) + "\n")
    print(f"runtime ready in {out}: {runtime['engine_wheel_url']}")


if __name__ == "__main__":
    main()
