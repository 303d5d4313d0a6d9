"""Keys kept in ``DATA_DIR`` (the master secret, the VAPID key, the webhook secret): generated once, then reused.

Several processes may start at once on one ``DATA_DIR`` (instances started together). Each writes its candidate to
a private temporary file (mode 0600) and links it into place: the link either creates the key file whole or fails
because another process's is there, so the first one wins, the others read it, and nobody ever reads a key file
that was created but not yet written (an empty key).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; when it is missing or empty, ``make()``'s, written with mode 0600 (first writer wins)."""
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        existing = b""
    if existing.strip():
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            winner = path.read_bytes()
            if winner.strip():
                return winner
            os.replace(temporary, path)  # an empty file left by a crash: ours takes its place
        return data
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
