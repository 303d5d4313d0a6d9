"""Will a copy of the file fit in the browser's storage? Decided before staging, so a full disk fails fast and
says how much room is needed, instead of failing halfway through a long copy."""

from __future__ import annotations

#: Browsers count their own bookkeeping against the quota too: keep a margin rather than fill it to the byte.
HEADROOM = 16 * 1024 * 1024


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def space_shortfall(size: int, quota: int | None, usage: int | None) -> str | None:
    """A message for the user when ``size`` bytes do not fit in ``quota - usage``; None when they do or when the
    browser gave no estimate (then the copy is tried, and a failed write is reported)."""
    if quota is None or usage is None:
        return None
    free = max(0, quota - usage)
    if size + HEADROOM <= free:
        return None
    return (
        f"not enough space in this browser to save the file: it needs {megabytes(size + HEADROOM)}, "
        f"{megabytes(free)} are free; free some space or use another browser profile"
    )
