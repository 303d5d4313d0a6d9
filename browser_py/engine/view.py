"""The card of one upload, worded: a pure function of the upload's state (reading it never changes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wire.view import Action, UploadView, scan_text, status_page_path

from .failures import FailureKind
from .handoff import finishes_within_grace
from .phase import Phase
from .wording import eta_text, size_text, speed_text

if TYPE_CHECKING:
    from .upload import Upload

LEAVE_BANNER = (
    "Saved. You can keep working — we're uploading in the background. "
    "You can even close this tab; we'll pick up where we left off next time."
)
#: The worker outlives its last page (SharedWorker ``extendedLifetime``) long enough for what is left.
LEAVE_BANNER_FINISHES = (
    "Saved. You can keep working or close this tab — the upload will finish even if you do, "
    "as long as the browser stays open."
)
#: It outlives its last page, but not for as long as the rest takes.
LEAVE_BANNER_FOR_A_WHILE = (
    "Saved. You can close this tab: we keep uploading for a few minutes "
    "and finish the rest the next time you open Smartcat."
)
#: The rest was handed to the browser (Background Fetch): it keeps sending with every tab closed.
LEAVE_BANNER_BROWSER = (
    "Saved. Your browser is sending the rest: you can close this tab, even every tab of Smartcat — the upload "
    "finishes as long as the browser runs, and it shows its own progress."
)

_LABELS = {
    Phase.QUEUED: "Queued",
    Phase.SAVING: "Saving to this browser",
    Phase.CREATING: "Starting upload",
    Phase.RESUMING: "Resuming upload",
    Phase.UPLOADING: "Uploading",
    Phase.COMPLETING: "Finishing",
    Phase.COMPLETED: "Completed",
    Phase.PAUSED: "Paused (by you)",
    Phase.OFFLINE: "Waiting for network",
    Phase.CANCELLED: "Cancelled",
    Phase.CHECKING: "Checking the file",
    Phase.BACKGROUND: "Uploading in the background (your browser shows the progress)",
}


def label(upload: Upload, percent: float) -> str:
    phase = upload.phase
    if phase in (Phase.RESUMING, Phase.UPLOADING) and upload.resumed_from is not None:
        return f"Resuming upload… {int(percent)}% complete"
    if phase in (Phase.FAILED, Phase.NEEDS_FILE):
        return f"Action needed: {upload.error.message if upload.error else 'unknown error'}"
    if phase in (Phase.SCANNING, Phase.BLOCKED) or (phase is Phase.COMPLETED and upload.scan_status == "unscanned"):
        return scan_text(upload.scan_status or "pending", upload.scan_signature)
    return _LABELS[phase]


def actions(upload: Upload) -> tuple[Action, ...]:
    """The buttons a card offers now: the only card actions the set of uploads turns into events."""
    phase = upload.phase
    offered: tuple[Action, ...] = ()
    if phase in (Phase.CREATING, Phase.RESUMING, Phase.UPLOADING, Phase.OFFLINE):
        offered = ("pause", "cancel")
    elif phase is Phase.PAUSED:
        offered = ("resume", "cancel")
    elif phase is Phase.FAILED:
        hopeless = upload.error is not None and upload.error.kind in (FailureKind.SESSION_GONE, FailureKind.SOURCE_LOST)
        offered = ("cancel",) if hopeless else ("retry", "cancel")
    elif phase is Phase.NEEDS_FILE:
        offered = ("choose", "cancel")  # one way on: the same file again (cancel throws away what S3 holds)
    elif phase in (Phase.QUEUED, Phase.SAVING, Phase.CHECKING, Phase.BACKGROUND):
        offered = ("cancel",)
    if shows_link(upload) and phase is not Phase.CANCELLED:
        offered += ("copy",)
    if phase in (Phase.COMPLETED, Phase.CANCELLED, Phase.FAILED, Phase.BLOCKED):
        offered += ("dismiss",)
    return offered


def shows_link(upload: Upload) -> bool:
    """The card links to the upload's page, except while the server holds the object in quarantine or has blocked
    it: nobody is handed a link to a file that may carry malware."""
    return upload.manifest.session_id is not None and upload.phase not in (Phase.SCANNING, Phase.BLOCKED)


def leave_banner(upload: Upload, eta_high: float | None) -> str:
    """What closing the tab will do, told truthfully: it depends on whether the worker outlives its last page (and
    for how long) and on the pessimistic end of the ETA."""
    if upload.phase is Phase.BACKGROUND:
        return LEAVE_BANNER_BROWSER
    grace = upload.keeps_running_for
    if grace is None:
        return LEAVE_BANNER
    if finishes_within_grace(eta_high, grace):
        return LEAVE_BANNER_FINISHES
    return LEAVE_BANNER_FOR_A_WHILE


def build_view(upload: Upload) -> UploadView:
    m = upload.manifest
    now = upload.now
    confirmed = m.bytes_confirmed if m.plan is not None else 0
    uploaded = (Phase.COMPLETED, Phase.SCANNING, Phase.BLOCKED)
    percent = 100.0 if upload.phase in uploaded else (confirmed / m.size * 100.0 if m.size else 0.0)
    uploading = upload.phase is Phase.UPLOADING
    rate = upload.meter.rate(now) if uploading else None
    eta = upload.meter.eta(now, m.size - confirmed) if uploading else None
    eta_range = upload.meter.eta_range(now, m.size - confirmed) if uploading else None
    still_going = upload.phase not in (*uploaded, Phase.CANCELLED, Phase.FAILED)
    long_wait = eta is not None and eta > upload.config.leave_threshold
    return UploadView(
        local_id=m.local_id,
        session_id=m.session_id,
        file_name=m.file_name,
        size=m.size,
        phase=upload.phase.value,
        label=label(upload, percent),
        bytes_confirmed=confirmed,
        percent=round(percent, 1),
        parts_done=len(m.parts),
        part_count=m.part_count,
        in_flight=len(upload.scheduler.in_flight),
        concurrency=upload.concurrency,
        speed_bps=rate,
        eta_seconds=eta,
        error=upload.error.message if upload.error else None,
        error_kind=upload.error.kind.value if upload.error else None,
        resumed=upload.resumed_from is not None,
        saved=m.staged,
        long_wait=long_wait,
        offer_notification=long_wait and still_going,
        eta_text=eta_text(eta_range),
        speed_text=speed_text(rate),
        bytes_text=f"{size_text(confirmed)} of {size_text(m.size)}",
        size_text=size_text(m.size),
        # Once the file is safe in the browser and the wait is long, tell the user they need not stay.
        banner=(
            leave_banner(upload, eta_range[2] if eta_range else None)
            if upload.told_to_leave and still_going and not upload.leave_hint_hidden
            else None
        ),
        bytes_sent_this_run=upload.bytes_sent_this_run,
        actions=actions(upload),
        link=status_page_path(m.session_id) if m.session_id and shows_link(upload) else None,
    )
