"""Wheel build hook: the wheel carries the web assets a host serves, so ``pip install`` is all a host needs.

Into the ``server`` package go ``web/`` (the element, the client API and their declarations, the worker, the app's
pages; not the build scripts or node_modules) as ``server/web``, the built runtime (``build/runtime``: Pyodide, the
engine wheel, the memory snapshot, ``runtime.json``) as ``server/runtime`` and the React bindings as
``server/clients/react``; ``server.settings`` finds them there when the package is installed rather than run from a
checkout. ``make dist`` builds the runtime first.
"""

from __future__ import annotations

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
        # The React bindings beside them: `npm install <site-packages>/server/clients/react` (its types import
        # ../../web/client.js, which is server/web/client.js there as in the repository).
        for name in ("package.json", "index.mjs", "index.d.ts"):
            force_include[str(root / "clients" / "react" / name)] = f"server/clients/react/{name}"
