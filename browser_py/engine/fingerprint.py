"""A file's fingerprint: finds an unfinished upload of the same file without hashing the whole file.

Name, size and modification time catch the common case; hashes of the first and last MiB tell apart files that share
those by chance (exports with fixed timestamps, renamed copies).
"""

from __future__ import annotations

import hashlib

SAMPLE_BYTES = 1024 * 1024


def sample_ranges(size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The byte ranges to hash: the first and the last MiB (overlapping or empty for small files)."""
    head = (0, min(size, SAMPLE_BYTES))
    tail = (max(0, size - SAMPLE_BYTES), size)
    return head, tail


def fingerprint(name: str, size: int, last_modified_ms: int, head: bytes, tail: bytes) -> str:
    digest = hashlib.sha256()
    for field in (name.encode(), str(size).encode(), str(last_modified_ms).encode()):
        digest.update(len(field).to_bytes(8, "big") + field)
    digest.update(hashlib.sha256(head).digest())
    digest.update(hashlib.sha256(tail).digest())
    return "fp1-" + digest.hexdigest()
