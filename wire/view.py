"""What pages show: the view model of one upload and of all of them, decided in Python and rendered by JavaScript.

Pages, the notification offer, e2e tests and the benchmark read these fields by name; ``web/wire.js`` holds the same
shapes as JSDoc typedefs, generated from these classes (``python -m wire.jsdoc``) and checked by a test, so a renamed
field fails the build instead of a page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import quote

#: Actions a card can offer; the engine lists the ones that apply now in ``UploadView.actions``.
Action = Literal["pause", "resume", "retry", "cancel", "dismiss", "copy", "choose"]

#: What each action's button says.
ACTION_TEXT: dict[str, str] = {
    "pause": "Pause",
    "resume": "Resume",
    "retry": "Retry",
    "cancel": "Cancel",
    "dismiss": "Dismiss",
    "copy": "Copy link",
    "choose": "Choose the file again",  # the page opens a file picker for this card and posts a ChooseFile
}

#: The engine's own state, as the page header says it.
ENGINE_TEXT: dict[str, str] = {
    "starting": "Starting upload engine…",
    "ready": "Upload engine ready",
    "failed": "Upload engine failed to start",
}

#: The completion-notification offer (web/notify.mjs renders it in ``<smartcat-uploader>`` when a card's
#: ``offer_notification`` turns true).
NOTIFY_TEXT: dict[str, str] = {
    "offer": "This will take a while. Want us to tell you when it's done, even if you close this tab?",
    "push_button": "Notify me in this browser",
    "email_button": "Email me instead",
    "push_working": "Turning on browser notifications…",
    "push_on": "We'll notify you in this browser when your upload is done. You can close this tab.",
    "push_off": "Browser notifications are off for your uploads.",
    "push_off_failed": "Could not turn notifications off.",
    "push_unavailable": "Browser notifications aren't available here.",
    "push_blocked": "Browser notifications are turned off for this site.",
    "push_unsupported": "This browser can't show notifications.",
    "turn_off": "Turn off",
    "try_again": "Try again",
    "email_label": "Email me when it's done:",
    "email_submit": "Email me",
    "email_invalid": "That address doesn't look right.",
    "email_save_failed": "Could not save; try again.",
    "email_on": "We'll email {address} when your upload is done. You can close this tab.",
    "email_confirm": "We sent a link to {address}: open it to confirm the address, and we'll email you there when "
    "your upload is done. You can close this tab.",
    "email_change": "Change",
    "email_stop": "Stop emails",
    "email_off": "We won't email you about your uploads.",
    "region_label": "Completion notifications",
    "email_address": "Email address",
    "email_placeholder": "you@example.com",
}


#: What the embeddable element ``<smartcat-uploader>`` (web/element.mjs) says around the cards.
ELEMENT_TEXT: dict[str, str] = {
    "drop": "Drop files here or choose files",
    "drop_hint": "Files are saved in this browser first, so you can keep working — or close the tab — while they "
    "upload.",
    "uploads": "Uploads",
    "empty": "No uploads yet.",
    "banner_label": "You can leave",
    "got_it": "Got it",
    "open": "Open",
    "link_copied": "Link copied",
    "copy_prompt": "Copy this link",
}


#: What a completed upload's card, status page and notifications say about its malware scan, by the server's
#: ``scan_status`` (``{signature}``: the name the scanner gave what it found). One table for every place it is read.
SCAN_TEXT: dict[str, str] = {
    "pending": "Checking for viruses…",
    "infected": "Blocked: malware found ({signature})",
    "too_large": "Blocked: too large to check for viruses",
    "unscanned": "Uploaded in full — not checked for viruses (too large to scan)",
}
#: Verdicts that keep a file in quarantine for good: no link to it, no completion announced.
BLOCKED_SCANS = frozenset({"infected", "too_large"})


def scan_text(status: str, signature: str | None = None) -> str:
    """The words for a scan state (a key of :data:`SCAN_TEXT`)."""
    return SCAN_TEXT[status].format(signature=signature or "unnamed")


#: The last words of the browser's own progress UI for a hand-off (Background Fetch): its Service Worker (web/sw.js,
#: plain JavaScript) shows the ``title`` of the server's answer to its report (``/api/uploads/<id>/finish``).
BACKGROUND_TEXT: dict[str, str] = {
    "completed": "Upload complete: {name}",
    "checking": "Uploaded, checking for viruses: {name}",
    "blocked": "{scan}: {name}",
    "unfinished": "Not finished: open Smartcat to send the rest of {name}",
}


def background_title(
    file_name: str, completed: bool, scan_status: str | None = None, signature: str | None = None
) -> str:
    """What the browser's Background Fetch UI says when the browser's part of an upload has ended."""
    if not completed:
        key = "unfinished"
    elif scan_status == "pending":
        key = "checking"
    else:
        key = "blocked" if scan_status in BLOCKED_SCANS else "completed"
    scan = scan_text(scan_status, signature) if scan_status in BLOCKED_SCANS else ""
    return BACKGROUND_TEXT[key].format(name=file_name, scan=scan)


#: Where the status pages live (the list of the user's uploads, and ``/files/<id>`` for one).
FILES_PATH = "/files"


def status_page_path(session_id: str) -> str:
    """The placeholder page of an upload: where a shared link, a toast, a push and an email point. The one place
    that spells it, for the engine's cards and the server's pages, emails and pushes alike."""
    return f"{FILES_PATH}/{quote(session_id, safe='')}"


@dataclass(frozen=True, slots=True)
class UploadView:
    """One upload's card. Every text a user reads is here already worded."""

    local_id: str
    session_id: str | None
    file_name: str
    size: int
    phase: str
    label: str  # the state in words: "Uploading", "Paused (by you)", "Action needed: …"
    bytes_confirmed: int
    percent: float
    parts_done: int
    part_count: int | None
    in_flight: int
    concurrency: int
    speed_bps: float | None
    eta_seconds: float | None
    error: str | None
    error_kind: str | None
    resumed: bool
    saved: bool  # the browser holds a complete copy: closing every tab is safe from here on
    long_wait: bool  # the ETA passed the leave threshold
    offer_notification: bool  # worth offering to tell the user when it is done (a long wait, still going)
    eta_text: str
    speed_text: str
    bytes_text: str
    size_text: str
    banner: str | None  # "you can leave" text, while it applies
    bytes_sent_this_run: int
    actions: tuple[Action, ...]  # buttons the card shows, in order
    link: str | None  # the status page, once the server knows the upload

    @property
    def finished(self) -> bool:
        return self.phase in ("completed", "cancelled", "blocked")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = list(self.actions)
        return data


@dataclass(frozen=True, slots=True)
class Summary:
    """The header indicator on every page: "2 uploads · 45%"."""

    active: int
    percent: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
