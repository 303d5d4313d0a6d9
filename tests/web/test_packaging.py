"""The wheel carries what a host serves (hatch_build.py), and an installed server finds it in its package."""

from __future__ import annotations

import importlib.util
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
    for name in ("element.mjs", "element.css", "client.mjs", "client.d.ts", "wire.js", "wire.d.ts", "worker.mjs"):
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
