"""The words users read: sizes, speeds and time estimates, decided once in Python so every page says the same."""

from __future__ import annotations

_UNITS = ("B", "KB", "MB", "GB", "TB")


def size_text(n: float) -> str:
    """Decimal units, as file managers show them: 1.5 GB, 640 MB, 12 KB."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000
        i += 1
    return f"{n:.1f} {_UNITS[i]}" if i and n < 10 else f"{n:.0f} {_UNITS[i]}"


def speed_text(bytes_per_s: float | None) -> str:
    return f"{size_text(bytes_per_s)}/s" if bytes_per_s else ""


def _unit(seconds: float) -> tuple[float, str]:
    if seconds < 90:
        return 1.0, "s"
    if seconds < 90 * 60:
        return 60.0, "min"
    return 3600.0, "h"


def eta_text(eta: tuple[float, float, float] | None) -> str:
    """ "about 4 min (3–6)": the likely time, and the range while it is still uncertain."""
    if eta is None:
        return ""
    low, likely, high = eta
    if likely < 5:
        return "a few seconds left"
    scale, unit = _unit(likely)
    lo, mid, hi = (max(1, round(v / scale)) for v in (low, likely, high))
    if unit == "h":
        lo_s, mid_s, hi_s = (f"{v / scale:.1f}".rstrip("0").rstrip(".") for v in (low, likely, high))
        return f"about {mid_s} h ({lo_s}–{hi_s})" if lo_s != hi_s else f"about {mid_s} h"
    if lo == hi:
        return f"about {mid} {unit}"
    return f"about {mid} {unit} ({lo}–{hi})"


def summary_text(active: int, percent: float) -> str:
    """The header indicator: "2 uploads · 45%"; empty when nothing is going on."""
    if active == 0:
        return ""
    noun = "upload" if active == 1 else "uploads"
    return f"{active} {noun} · {int(percent)}%"


def completed_text(file_name: str) -> str:
    return f"{file_name} has been uploaded"


def blocked_text(file_name: str, verdict: str) -> str:
    """The toast for an upload its malware scan blocked (``verdict``: "Blocked: malware found (…)")."""
    return f"{file_name} — {verdict}"


def not_the_same_file(picked: str, picked_size: int, wanted: str, wanted_size: int) -> str:
    """A file chosen to continue an upload that is not the one it was sending: refused, and why."""
    if picked_size != wanted_size:
        have, want = size_text(picked_size), size_text(wanted_size)
        if have == want:
            have, want = f"{picked_size:,} bytes", f"{wanted_size:,} bytes"
        why = f"it is {have}, {wanted} is {want}"
    else:
        why = "its name, date or contents differ"
    return f"{picked} is not the file this upload was sending ({why}); choose {wanted} to continue"
