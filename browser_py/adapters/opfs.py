"""Staged copies and manifests in the Origin Private File System (Pyodide-only: imports ``js``).

- Each owner's uploads have a folder of their own (``uploads`` for the profile's shared storage, ``uploads-<key>``
  for a host's user: browser_py/engine/owner.py).
- The picked ``File`` is copied into OPFS (``uploads/<local_id>.bin``) in Blob slices: bytes go from Blob to OPFS
  without entering Python.
- Manifests are JSON files beside the staged copies (``uploads/<local_id>.json``), replaced atomically by OPFS's
  ``createWritable()``/``close()``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import js
from pyodide.ffi import JsException

from ..engine.manifest import Manifest, ManifestError
from ..engine.owner import SHARED_DIR
from ..engine.space import space_shortfall
from .fetch import js_object

log = logging.getLogger(__name__)

#: Bytes per write while copying into OPFS: larger slices mean fewer turns of the worker's event loop, where the
#: copy queues behind hashing and PUT bookkeeping (bench/saved.py measures pick → saved).
STAGE_SLICE = 32 * 1024 * 1024


class OpfsStore:
    """Staged copies and manifests in the Origin Private File System."""

    def __init__(self, directory: Any, root: Any = None) -> None:
        self._dir = directory
        self._root = root

    @classmethod
    async def open(cls, directory: str = SHARED_DIR) -> OpfsStore:
        """The store of one owner's uploads (``directory``: :attr:`~browser_py.engine.owner.Someone.directory`)."""
        root = await js.navigator.storage.getDirectory()
        return cls(await root.getDirectoryHandle(directory, js_object({"create": True})), root)

    async def read_note(self, name: str) -> str | None:
        """A small file of the engine's own beside the uploads folder (which holds only uploads), or None."""
        if self._root is None:
            return None
        try:
            handle = await self._root.getFileHandle(name)
            return str(await (await handle.getFile()).text())
        except JsException:
            return None

    async def write_note(self, name: str, text: str) -> None:
        if self._root is None:
            return
        handle = await self._root.getFileHandle(name, js_object({"create": True}))
        writable = await handle.createWritable()
        await writable.write(text)
        await writable.close()

    async def _write(self, name: str, data: Any) -> None:
        handle = await self._dir.getFileHandle(name, js_object({"create": True}))
        writable = await handle.createWritable()
        await writable.write(data)
        await writable.close()

    async def save(self, local_id: str, manifest_json: str) -> None:
        await self._write(f"{local_id}.json", manifest_json)

    async def discard(self, local_id: str) -> None:
        for name in (f"{local_id}.bin", f"{local_id}.json"):
            with contextlib.suppress(JsException):
                await self._dir.removeEntry(name)

    async def names(self) -> list[str]:
        names = []
        async for name in self._dir.keys():
            names.append(str(name))
        return names

    async def load_manifests(self) -> tuple[list[Manifest], list[str]]:
        """Every readable manifest, plus the names of damaged ones (reported, then removed)."""
        manifests, damaged = [], []
        for name in await self.names():
            if not name.endswith(".json"):
                continue
            try:
                handle = await self._dir.getFileHandle(name)
                text = str(await (await handle.getFile()).text())
                manifests.append(Manifest.from_json(text))
            except (JsException, ManifestError) as exc:
                log.warning("manifest %s unreadable: %s", name, exc)
                damaged.append(name)
        return manifests, damaged

    async def remove_orphans(self, keep: set[str]) -> None:
        """Staged copies whose manifest is gone can never be resumed: reclaim the space."""
        for name in await self.names():
            stem = name.rsplit(".", 1)[0]
            if stem not in keep:
                with contextlib.suppress(JsException):
                    await self._dir.removeEntry(name)

    async def space_shortfall(self, size: int) -> str | None:
        """A message when the browser's storage quota cannot hold a copy of the file, else None."""
        try:
            estimate = await js.navigator.storage.estimate()
            quota, usage = int(estimate.quota), int(estimate.usage)
        except (JsException, AttributeError, TypeError, ValueError):
            return None  # no estimate: try, and report a write failure if it comes
        return space_shortfall(size, quota, usage)

    async def staged_file(self, local_id: str) -> Any:
        handle = await self._dir.getFileHandle(f"{local_id}.bin")
        return await handle.getFile()

    async def stage(self, local_id: str, file: Any, cancelled: Callable[[], bool]) -> Any:
        """Copy ``file`` into OPFS slice by slice (no bytes through Python); return the staged ``File``.

        Returns None when ``cancelled()`` turns true meanwhile (the partial copy is dropped).
        """
        handle = await self._dir.getFileHandle(f"{local_id}.bin", js_object({"create": True}))
        writable = await handle.createWritable()
        try:
            size = int(file.size)
            offset = 0
            while offset < size:
                if cancelled():
                    await writable.abort()
                    return None
                end = min(size, offset + STAGE_SLICE)
                await writable.write(file.slice(offset, end))
                offset = end
            await writable.close()
        except BaseException:
            with contextlib.suppress(JsException):
                await writable.abort()
            raise
        return await handle.getFile()


class MemoryStore:
    """Manifests kept in memory only: for browsers without OPFS, where closing the tab loses the upload anyway."""

    async def save(self, local_id: str, manifest_json: str) -> None:
        return None

    async def discard(self, local_id: str) -> None:
        return None


