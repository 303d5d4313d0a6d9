"""Source files for uploads: random bytes (incompressible, like real media) and their SHA-256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def random_file(path: Path, size: int) -> Path:
    """``size`` random bytes at ``path``; a file already there with that size is reused (the bench's big sources)."""
    if path.exists() and path.stat().st_size == size:
        return path
    with path.open("wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 24))
            f.write(chunk)
            remaining -= len(chunk)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()
