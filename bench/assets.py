"""What the benchmark pages need: npm packages (installed from the lock files), esbuild bundles of the Uppy
generations, and a web directory the server can serve: the real app plus ``/static/bench/``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WEB = ROOT / "web"
BUILD = ROOT / "build" / "bench"
# Each Uppy generation peers a different @uppy/core major: separate npm projects keep both installable.
NPM_PROJECTS = (BENCH, BENCH / "uppy5", BENCH / "uppy6")
BUNDLES = ("uppy5", "uppy6")


def npm_install() -> None:
    """``npm ci`` where node_modules is missing or older than the lock file (a fresh clone installs everything)."""
    for project in NPM_PROJECTS:
        stamp = project / "node_modules" / ".package-lock.json"
        lock = project / "package-lock.json"
        if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
            continue
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=project, check=True
        )


def bundle() -> None:
    """One ESM bundle per Uppy generation, resolved against that generation's own node_modules."""
    BUILD.mkdir(parents=True, exist_ok=True)
    esbuild = BENCH / "node_modules" / ".bin" / "esbuild"
    for name in BUNDLES:
        subprocess.run(
            [str(esbuild), str(BENCH / name / "entry.mjs"), "--bundle", "--format=esm", "--minify",
             "--log-level=warning", f"--outfile={BUILD / (name + '.js')}"],
            check=True,
        )


def web_dir(target: Path, source: Path = WEB) -> Path:
    """The app's web files (served as they are; ``source``: another version of web/ for an A/B) plus the bench
    pages and bundles under ``bench/``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "*.py", "package*.json"))
    pages = target / "bench"
    shutil.copytree(BENCH / "web", pages)
    for name in BUNDLES:
        shutil.copyfile(BUILD / f"{name}.js", pages / f"{name}.js")
    return target


def versions() -> dict[str, str]:
    """Versions of the peers as installed (from their package.json files)."""
    found: dict[str, str] = {}
    for project, package in ((BENCH / "uppy5", "@uppy/aws-s3"), (BENCH / "uppy6", "@uppy/aws-s3"),
                             (BENCH, "esbuild"), (WEB, "pyodide")):
        path = project / "node_modules" / package / "package.json"
        if path.exists():
            label = f"{package} ({project.name})" if project.name.startswith("uppy") else package
            found[label] = str(json.loads(path.read_text())["version"])
    return found


def prepare() -> None:
    npm_install()
    bundle()
