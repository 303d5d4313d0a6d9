"""Wheel build hook: the wheel carries the web assets a host serves, so ``pip install`` is all a host needs.

Into the ``server`` package go ``web/`` (the element, the client API and their declarations, the worker, the app's
pages; not the build scripts or node_modules) as ``server/web``, the built runtime (``build/runtime``: Pyodide, the
engine wheel, the memory snapshot, ``runtime.json``) as ``server/runtime`` and the React bindings as
``server/clients/react`` (an npm package carrying the client's declarations it uses: :func:`react_package`); ``server.settings`` finds them there when the package is installed rather than run from a
checkout. ``make dist`` builds the runtime first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: What a browser loads from ``/static`` (everything else in web/ builds the runtime or is npm's).
WEB_SUFFIXES = frozenset({".mjs", ".js", ".css", ".html", ".ts"})
WEB_BUILD_ONLY = frozenset({"snapshot.mjs"})


def web_files(web: Path) -> list[Path]:
    return sorted(
        p for p in web.iterdir() if p.is_file() and p.suffix in WEB_SUFFIXES and p.name not in WEB_BUILD_ONLY
    )


#: The React package's own files, and the client's declarations its types use (web/client.d.ts, wire.d.ts).
REACT_FILES = ("package.json", "index.mjs", "index.d.ts")
REACT_TYPES = ("client.d.ts", "wire.d.ts")
#: In the repository the package's types import the client's from web/; installed, the package carries them itself.
REPO_CLIENT_TYPES = '"../../web/client.js"'


def react_package(root: Path, out: Path) -> list[Path]:
    """Write the React bindings as an npm package that needs nothing outside itself into ``out``; return its files.

    An app installs a copy (npm resolves ``react`` from the app's own node_modules only for a copy: a symlink into
    site-packages finds no React there), so the types the package imports from the client go in with it."""
    react, web = root / "clients" / "react", root / "web"
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((react / "package.json").read_text(encoding="utf-8"))
    manifest["files"] = [*REACT_FILES[1:], *REACT_TYPES]
    for name in ("devDependencies", "scripts"):  # the repository's build of the example, not the package's
        manifest.pop(name, None)
    (out / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out / "index.mjs").write_bytes((react / "index.mjs").read_bytes())
    types = (react / "index.d.ts").read_text(encoding="utf-8")
    if REPO_CLIENT_TYPES not in types:
        raise RuntimeError(f"clients/react/index.d.ts no longer imports {REPO_CLIENT_TYPES}: update hatch_build.py")
    (out / "index.d.ts").write_text(types.replace(REPO_CLIENT_TYPES, '"./client.js"'), encoding="utf-8")
    for name in REACT_TYPES:
        (out / name).write_bytes((web / name).read_bytes())
    return [out / name for name in (*REACT_FILES, *REACT_TYPES)]


class WebAssetsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            # An editable install (make install, before any runtime is built) serves web/ and build/ from the
            # checkout itself: nothing to carry.
            return
        root = Path(self.root)
        runtime = root / "build" / "runtime"
        if not (runtime / "runtime.json").is_file():
            raise RuntimeError(f"{runtime / 'runtime.json'} is missing: run `make assets` (or `make dist`) first")
        force_include: dict[str, str] = build_data["force_include"]
        for path in web_files(root / "web"):
            force_include[str(path)] = f"server/web/{path.name}"
        force_include[str(runtime)] = "server/runtime"
        # The React bindings beside them, as a package of their own (`npm install --install-links
        # <site-packages>/server/clients/react`): npm copies it into the app, whose React it then uses.
        for path in react_package(root, root / "build" / "react-package"):
            force_include[str(path)] = f"server/clients/react/{path.name}"
