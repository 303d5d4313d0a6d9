"""The wheel carries what a host serves (hatch_build.py), and an installed server finds it in its package."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from server import settings

ROOT = Path(__file__).resolve().parents[2]


def _hook_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hatch_build", module)
    spec.loader.exec_module(module)
    return module


def _force_include(root: Path) -> dict[str, str]:
    hook = _hook_module().WebAssetsHook(str(root), {}, None, None, str(root / "dist"), "wheel")
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("standard", build_data)
    included: dict[str, str] = build_data["force_include"]
    return included


def test_the_wheel_carries_the_element_the_client_the_runtime_and_the_hook(tmp_path: Path) -> None:
    (tmp_path / "build" / "runtime").mkdir(parents=True)
    (tmp_path / "build" / "runtime" / "runtime.json").write_text("{}")
    (tmp_path / "web").symlink_to(ROOT / "web")
    (tmp_path / "clients").symlink_to(ROOT / "clients")
    targets = set(_force_include(tmp_path).values())
    for name in ("element.mjs", "element.css", "client.mjs", "client.d.ts", "wire.js", "wire.d.ts", "worker.mjs",
                 "restore.mjs"):
        assert f"server/web/{name}" in targets
    assert "server/runtime" in targets and "server/clients/react/index.mjs" in targets
    assert not [t for t in targets if "node_modules" in t or t.endswith(("build_runtime.py", "snapshot.mjs"))]


def test_a_wheel_without_a_built_runtime_is_refused_with_the_command_that_builds_it(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    with pytest.raises(RuntimeError, match="make assets"):
        _force_include(tmp_path)


def test_an_installed_server_serves_the_assets_in_its_package(tmp_path: Path) -> None:
    checkout, packaged = tmp_path / "checkout", tmp_path / "packaged"
    assert settings._packaged_or(checkout, packaged) == checkout
    packaged.mkdir()
    assert settings._packaged_or(checkout, packaged) == packaged


def test_the_react_package_in_the_wheel_needs_nothing_outside_itself(tmp_path: Path) -> None:
    """What `npm install --install-links <site-packages>/server/clients/react` gives an app: a copy of the files npm
    packs (asked of npm itself) beside the app's own React. Every module they import must be among them or be React
    (the peer dependency): the types used to import ../../web/client.js, outside the package, and an installed link
    into site-packages finds no React. (tsc compiles the same declarations in test_client_types.)"""
    package = tmp_path / "package"
    _hook_module().react_package(ROOT, package)
    packed = subprocess.run(["npm", "pack", "--dry-run", "--json"], cwd=package, capture_output=True, text=True,
                            timeout=120, check=True)
    files = sorted(f["path"] for f in json.loads(packed.stdout)[0]["files"])
    assert files == ["client.d.ts", "index.d.ts", "index.mjs", "package.json", "wire.d.ts"]
    manifest = json.loads((package / "package.json").read_text())
    assert "devDependencies" not in manifest and set(manifest["peerDependencies"]) == {"react"}
    for name in files:
        for target in re.findall(r'(?:from|import)\s*\(?\s*"([^"]+)"', (package / name).read_text()):
            if target.startswith("."):
                resolved = (package / target).resolve()
                assert resolved.parent == package.resolve(), f"{name} imports {target}, outside the package"
                assert {resolved.name, resolved.name.removesuffix(".js") + ".d.ts"} & set(files), (name, target)
            else:
                assert target == "react", f"{name} imports {target!r}, which an app does not have"
