"""Pure decisions and wording for notifications: rate limit, batching, what a push or an email says.

No I/O here, so the rules are tested with plain values and a made-up clock.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wire.view import FILES_PATH, status_page_path

_UNITS = ("B", "KB", "MB", "GB", "TB")
#: File names in message bodies are cut to this many characters (subjects and titles to 80).
MAX_NAME_IN_BODY = 120
#: Control characters (C0, DEL, C1) and the invisible ones that reorder or hide text (bidi embeddings, overrides
#: and isolates, zero-width marks, the BOM): a name like "invoice\u202egnp.exe" must not read as "invoiceexe.png".
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")


@dataclass(frozen=True, slots=True)
class CompletedFile:
    session_id: str
    file_name: str
    size: int
    completed_at: datetime | None = None
    #: Why the malware scan keeps it in quarantine ("Blocked: malware found (…)", wire.view.SCAN_TEXT); None: it
    #: was released. A blocked file is named with its verdict and never with a link.
    blocked: str | None = None


def human_size(n: int) -> str:
    """Decimal units, like the page shows them (``12.3 MB``)."""
    value, unit = float(n), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.{1 if unit and value < 10 else 0}f} {_UNITS[unit]}"


def one_line(text: str, limit: int = 80) -> str:
    """A user's file name made safe for a subject line, a message or a notification: no control or bidi
    characters, at most ``limit`` characters."""
    flat = _CONTROL.sub(" ", text).strip() or "file"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def next_allowed_at(sent: Sequence[float], now: float, limit: int, window: float) -> float:
    """When the next message may go out if at most ``limit`` may go out in any ``window`` seconds.

    ``sent`` holds the send times of earlier messages (any order, older ones are ignored). A held-back
    notification is not dropped: it waits, and whatever else completes meanwhile joins its batch.
    """
    recent = sorted(t for t in sent if t > now - window)
    if len(recent) < limit:
        return now
    return recent[len(recent) - limit] + window


def _names(files: Sequence[CompletedFile], shown: int = 3) -> str:
    names = [one_line(f.file_name, 60) for f in files]
    if len(names) == 1:
        return names[0]
    if len(names) <= shown:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:shown]) + f" and {len(names) - shown} more"


def _blocked_push(files: Sequence[CompletedFile]) -> tuple[str, str]:
    """Title and body of a push that names at least one blocked file (with its verdict)."""
    blocked = [f for f in files if f.blocked]
    if len(files) == 1:
        only = files[0]
        return "Upload blocked", f"{one_line(only.file_name)} ({human_size(only.size)}): {only.blocked}."
    released = [f for f in files if not f.blocked]
    title = f"{len(blocked)} upload{'s' if len(blocked) > 1 else ''} blocked"
    body = "; ".join(f"{one_line(f.file_name, 60)}: {f.blocked}" for f in blocked[:3])
    if len(blocked) > 3:
        body += f"; and {len(blocked) - 3} more blocked"
    if released:
        title += f", {len(released)} complete"
        body += f". {_names(released)} {'is' if len(released) == 1 else 'are'} uploaded."
    return title, body


def push_payload(files: Sequence[CompletedFile], path_prefix: str = "") -> dict[str, Any]:
    """The JSON a push carries; the Service Worker turns it into the notification (web/sw.js). One that names a
    blocked file opens the list of uploads, never the file. ``path_prefix``: where the uploader is served
    (``PUBLIC_PATH``), so the page opened is the uploader's under a host's mount."""
    if not files:
        raise ValueError("a notification needs at least one file")
    if any(f.blocked for f in files):
        title, body = _blocked_push(files)
        url = FILES_PATH
    elif len(files) == 1:
        only = files[0]
        title = "Upload complete"
        body = f"{one_line(only.file_name)} ({human_size(only.size)}) is uploaded."
        url = status_page_path(only.session_id)
    else:
        title = f"{len(files)} uploads complete"
        body = f"{_names(files)} are uploaded."
        url = FILES_PATH
    return {
        "type": "uploads_completed",
        "title": title,
        "body": body,
        "url": f"{path_prefix}{url}",
        # One tag per batch: a later batch adds a notification instead of silently replacing this one.
        "tag": f"upload-{files[0].session_id}",
        "files": [
            {
                "session_id": f.session_id,
                "file_name": one_line(f.file_name, MAX_NAME_IN_BODY),
                "size": f.size,
                **({"blocked": f.blocked} if f.blocked else {}),
            }
            for f in files
        ],
    }


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


#: What an email says of blocked files, after the list.
BLOCKED_NOTE = "A blocked file stays in quarantine: nobody can download it. Upload a clean copy if you need it shared."


def email_content(files: Sequence[CompletedFile], links: Sequence[str]) -> EmailContent:
    """Subject, plain-text and HTML bodies naming each file with its size and a link to its page; a blocked file
    with its verdict instead of a link."""
    if not files or len(files) != len(links):
        raise ValueError("one link per file, at least one file")
    blocked = sum(1 for f in files if f.blocked)
    if len(files) == 1:
        name = one_line(files[0].file_name)
        subject = f"Blocked: {name}" if blocked else f"Uploaded: {name}"
        intro = "Your file was uploaded but is blocked." if blocked else "Your file is uploaded in full."
    elif blocked:
        subject = f"{len(files)} files uploaded, {blocked} blocked"
        intro = f"Your {len(files)} files were uploaded; {blocked} of them {'is' if blocked == 1 else 'are'} blocked."
    else:
        subject = f"{len(files)} files uploaded"
        intro = f"Your {len(files)} files are uploaded in full."
    lines = [intro, ""]
    items: list[str] = []
    for file, link in zip(files, links, strict=True):
        name = one_line(file.file_name, MAX_NAME_IN_BODY)
        size = human_size(file.size)
        if file.blocked:
            lines += [f"- {name} ({size}): {file.blocked}"]
            verdict = html.escape(file.blocked)
            items.append(f"<li>{html.escape(name)} ({html.escape(size)}): <strong>{verdict}</strong></li>")
            continue
        lines += [f"- {name} ({size})", f"  {link}"]
        items.append(f'<li><a href="{html.escape(link)}">{html.escape(name)}</a> ({html.escape(size)})</li>')
    if blocked:
        lines += ["", BLOCKED_NOTE]
    lines += ["", "You are getting this because you asked to be told when your uploads finish.", ""]
    note = f"<p>{html.escape(BLOCKED_NOTE)}</p>" if blocked else ""
    body_html = (
        "<!doctype html><html><body>"
        f"<p>{html.escape(intro)}</p><ul>{''.join(items)}</ul>{note}"
        '<p style="color:#666">You are getting this because you asked to be told when your uploads finish.</p>'
        "</body></html>"
    )
    return EmailContent(subject=subject, text="\n".join(lines), html=body_html)
