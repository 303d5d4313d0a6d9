"""The manifest: everything needed to resume an upload after every tab (or the terminal) is gone.

It is written after each confirmed part, so at most the parts in flight are lost with the page. It is plain data with
a JSON form that is versioned and validated on load: a damaged manifest is reported, never half-trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wire.plan import PartPlan, PlanError

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A stored manifest could not be read back (damaged, from an unknown version, or inconsistent)."""


@dataclass(slots=True)
class Manifest:
    local_id: str
    file_name: str
    size: int
    content_type: str
    fingerprint: str
    last_modified_ms: int = 0
    created_at: float = 0.0
    staged: bool = False  # the local copy (OPFS) holds every byte; until then only the picked file does
    session_id: str | None = None
    upload_token: str = ""
    object_key: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    parts: dict[int, str] = field(default_factory=dict)  # part number -> ETag of its latest successful PUT
    checksums: dict[int, str] = field(default_factory=dict)  # part number -> base64 SHA-256 of its bytes
    completed: bool = False
    # The parts handed to the browser's Background Fetch under this registration id (engine/handoff.py): the engine
    # sends none of them until a page says the registration has ended.
    background_id: str | None = None

    @property
    def plan(self) -> PartPlan | None:
        if self.part_size is None or self.part_count is None:
            return None
        return PartPlan(self.size, self.part_size, self.part_count)

    @property
    def bytes_confirmed(self) -> int:
        """Read several times for every event the machine handles: a count, not a sum over the parts (that made each
        event cost O(parts), ~10 ms at 400 parts in CPython and more in the worker)."""
        if self.part_size is None or self.part_count is None:
            return 0
        last = self.part_count
        # Every part is part_size long but the last, which holds what is left (a 0-byte file's one part holds 0).
        short = self.part_size - (self.size - (last - 1) * self.part_size) if last in self.parts else 0
        return len(self.parts) * self.part_size - short

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "v": MANIFEST_VERSION,
            "local_id": self.local_id,
            "file_name": self.file_name,
            "size": self.size,
            "content_type": self.content_type,
            "fingerprint": self.fingerprint,
            "last_modified_ms": self.last_modified_ms,
            "created_at": self.created_at,
            "staged": self.staged,
            "session_id": self.session_id,
            "upload_token": self.upload_token,
            "object_key": self.object_key,
            "part_size": self.part_size,
            "part_count": self.part_count,
            "parts": {str(n): etag for n, etag in sorted(self.parts.items())},
            "checksums": {str(n): c for n, c in sorted(self.checksums.items())},
            "completed": self.completed,
            "background_id": self.background_id,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ManifestError(f"manifest is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ManifestError("manifest is not a JSON object")
        if data.get("v") != MANIFEST_VERSION:
            raise ManifestError(f"manifest version {data.get('v')!r} is not {MANIFEST_VERSION}")
        try:
            manifest = cls(
                local_id=_typed(data, "local_id", str),
                file_name=_typed(data, "file_name", str),
                size=_typed(data, "size", int),
                content_type=_typed(data, "content_type", str),
                fingerprint=_typed(data, "fingerprint", str),
                last_modified_ms=_typed(data, "last_modified_ms", int),
                created_at=float(_typed(data, "created_at", (int, float))),
                staged=_typed(data, "staged", bool),
                session_id=_optional(data, "session_id", str),
                upload_token=str(data.get("upload_token") or ""),
                object_key=_optional(data, "object_key", str),
                part_size=_optional(data, "part_size", int),
                part_count=_optional(data, "part_count", int),
                parts={int(n): str(etag) for n, etag in _typed(data, "parts", dict).items()},
                checksums={int(n): str(c) for n, c in (data.get("checksums") or {}).items()},
                completed=_typed(data, "completed", bool),
                background_id=_optional(data, "background_id", str),
            )
            plan = manifest.plan
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest is damaged: {exc}") from exc
        if manifest.size < 0:
            raise ManifestError("manifest has a negative size")
        if plan is not None:
            bad = [n for n in manifest.parts if not 1 <= n <= plan.part_count]
            if bad:
                raise ManifestError(f"manifest lists parts outside 1..{plan.part_count}: {bad[:5]}")
        elif manifest.parts:
            raise ManifestError("manifest lists parts but has no part plan")
        return manifest


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data[key]
    # bool is an int in Python; refuse it where a number is meant.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise TypeError(f"{key} has the wrong type ({type(value).__name__})")
    return value


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    return None if data.get(key) is None else _typed(data, key, kind)


__all__ = ["MANIFEST_VERSION", "Manifest", "ManifestError", "PlanError"]
