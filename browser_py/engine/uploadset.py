"""The set of uploads of one browser profile (or one terminal run), sans-I/O: the policy for many files.

It decides what happens when the same file is picked again, which queued uploads may start (a few at a time, oldest
first, none while offline), which card actions become which events, what the header indicator and the completion
toast say, how uploads found at boot are recovered, and how big a new upload's parts are. It returns *directives*
for its adapter, which owns the drivers, ports and storage; time is passed in.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from dataclasses import dataclass

from wire.view import Summary, UploadView

from .config import EngineConfig
from .events import (
    BackgroundEnded,
    Cancel,
    Connectivity,
    CopyIncomplete,
    Event,
    FileChosen,
    HandOffAnswered,
    HideLeaveHint,
    Pause,
    Resume,
    SourceLost,
    Start,
)
from .failures import FailureKind
from .link import LinkMemory
from .manifest import Manifest
from .phase import RUNNING, Phase
from .upload import Upload
from .wording import blocked_text, completed_text, not_the_same_file, summary_text

#: How long Chromium keeps a SharedWorker created with ``extendedLifetime`` after its last page closed (measured:
#: about 300 s in Chromium 156; an enterprise policy can turn it off, which no page can detect).
EXTENDED_LIFETIME_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Deliver:
    """Feed ``event`` to this upload's driver and make sure its loop runs."""

    local_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class Say:
    """A one-off message for the user (not an upload state): "already uploaded", "not enough space"..."""

    message: str
    local_id: str | None = None


#: The phases of an upload whose bytes the server has assembled (the scan may still hold the object back).
_UPLOADED = (Phase.SCANNING, Phase.COMPLETED, Phase.BLOCKED)


@dataclass(frozen=True, slots=True)
class Toast:
    """An upload has just completed: every open page says so. A file still waiting for its malware scan is not
    toasted (it is not usable yet), and one the scan blocked is said as a notice, never as a completion."""

    local_id: str
    message: str
    link: str | None


@dataclass(frozen=True, slots=True)
class ShowSummary:
    summary: Summary


@dataclass(frozen=True, slots=True)
class Forget:
    """The card is gone (dismissed): pages remove it, the adapter drops the upload's driver."""

    local_id: str


@dataclass(frozen=True, slots=True)
class SaveLinkNote:
    """Remember what was measured of the link (a hint for sizing later uploads' parts)."""

    text: str


@dataclass(frozen=True, slots=True)
class Attach:
    """The file just picked becomes this upload's source: parts are read from it, and it is copied into the browser
    when the upload says so (``SaveCopy``). Comes before the ``Deliver`` that tells the upload."""

    local_id: str


Directive = Deliver | Say | Toast | ShowSummary | Forget | SaveLinkNote | Attach

#: Card actions and the events they become; each only while the card offers it.
_ACTION_EVENTS: dict[str, type[Pause] | type[Resume] | type[Cancel]] = {
    "pause": Pause,
    "resume": Resume,
    "retry": Resume,
    "cancel": Cancel,
}


class UploadSet:
    def __init__(self, config: EngineConfig, link: LinkMemory | None = None, rng: random.Random | None = None) -> None:
        self.config = config
        self.link = link or LinkMemory()
        self.uploads: dict[str, Upload] = {}
        self.views: dict[str, UploadView] = {}
        self.online = True
        self.keeps_running_for: float | None = None  # see :meth:`outlives_pages`
        self.background_fetch = False  # see :meth:`browser_takes_over`
        self._rng = rng or random.Random()

    # ---------------------------------------------------------------- registering

    def same_file(self, fingerprint: str) -> Upload | None:
        """An unfinished upload of this very file (name, size, mtime, sampled bytes), if there is one."""
        for upload in self.uploads.values():
            if upload.manifest.fingerprint == fingerprint and upload.phase is not Phase.CANCELLED:
                return upload
        return None

    def picked_again(self, upload: Upload, now: float) -> list[Directive]:
        """The same file again: continue the upload we have instead of starting a second one."""
        out: list[Directive] = []
        if upload.phase is Phase.NEEDS_FILE:  # what it was waiting for: the same fingerprint, hence the same size
            m = upload.manifest
            return self.choose(m.local_id, m.file_name, m.size, m.fingerprint, now)
        lost = upload.error is not None and upload.error.kind is FailureKind.SOURCE_LOST
        if upload.phase in (Phase.PAUSED, Phase.FAILED) and not lost:
            out.append(Deliver(upload.manifest.local_id, Resume(now)))
        out.append(Say(f"{upload.manifest.file_name} is already in your uploads", upload.manifest.local_id))
        return out

    def choose(self, local_id: str, name: str, size: int, fingerprint: str, now: float) -> list[Directive]:
        """A file chosen for an upload that needs its file again (the card's button, or the same file picked). Only
        the same size and fingerprint is taken; the upload then checks the bytes S3 holds. Anything else is refused
        with the reason, and nothing changes."""
        upload = self.uploads.get(local_id)
        if upload is None or "choose" not in upload.view().actions:
            return []  # the card no longer asks for a file (cancelled meanwhile, or chosen in another tab)
        m = upload.manifest
        if size != m.size or fingerprint != m.fingerprint:
            return [Say(not_the_same_file(name, size, m.file_name, m.size), local_id)]
        return [Attach(local_id), Deliver(local_id, FileChosen(now))]

    @staticmethod
    def already_uploaded(file_name: str) -> list[Directive]:
        return [Say(f"{file_name} was already uploaded")]

    def add(self, manifest: Manifest, source_readable: bool) -> Upload:
        """Register a new upload (queued); its parts are sized from what earlier uploads measured of the link."""
        config = self.config
        if config.adaptive_part_size:
            config = dataclasses.replace(config, part_size=self.link.part_size(manifest.size, config.part_size))
        upload = Upload(manifest, config, random.Random(self._rng.random()), source_readable=source_readable)
        upload.keeps_running_for = self.keeps_running_for
        upload.background_fetch = self.background_fetch
        self.uploads[manifest.local_id] = upload
        return upload

    def outlives_pages(self, extended: bool) -> None:
        """A page said whether this engine outlives its last page (every page creates it with the same options, so
        all say the same). The cards' "you can close this tab" words follow; the next publish carries them."""
        grace = EXTENDED_LIFETIME_SECONDS if extended else None
        self.keeps_running_for = grace
        for upload in self.uploads.values():
            upload.keeps_running_for = grace

    def browser_takes_over(self, available: bool, running: Iterable[str] | None, now: float) -> list[Directive]:
        """A page said whether it can register Background Fetches and which registrations are running now (None:
        it does not know yet). Uploads may hand off when the deployment allows it too; one whose registration is
        listed as not running any more (and is not just being made) gets its parts back."""
        self.background_fetch = available and self.config.background_fetch
        for upload in self.uploads.values():
            upload.background_fetch = self.background_fetch
        if running is None:
            return []  # a browser restarted may still be resuming a registration: never guess it ended
        active = set(running)
        return [
            Deliver(local_id, BackgroundEnded(now, rid))
            for local_id, upload in self.uploads.items()
            if (rid := upload.manifest.background_id) is not None
            and rid not in active
            and not upload.awaiting_registration
        ]

    def hand_off_answered(self, registration_id: str, refused: str | None, now: float) -> list[Directive]:
        """The page asked to register a hand-off answered (several may: the upload heeds the first)."""
        return [
            Deliver(local_id, HandOffAnswered(now, registration_id, refused))
            for local_id in self._registered(registration_id)
        ]

    def background_ended(self, registration_id: str, now: float) -> list[Directive]:
        """The Service Worker saw the registration end (a page relays it)."""
        return [
            Deliver(local_id, BackgroundEnded(now, registration_id)) for local_id in self._registered(registration_id)
        ]

    def _registered(self, registration_id: str) -> list[str]:
        return [i for i, u in self.uploads.items() if u.manifest.background_id == registration_id]

    def refuse(self, local_id: str, reason: str, now: float) -> list[Directive]:
        """The file cannot be kept or read here (no space, an unreadable copy): "Action needed" with the reason."""
        return [Deliver(local_id, SourceLost(now, reason))]

    def recover(self, manifests: Iterable[Manifest], now: float) -> list[Directive]:
        """Register the uploads found at boot, oldest first: a complete copy waits for its turn in the queue (the
        next :meth:`admit` or :meth:`published` starts it); one whose copy never completed waits for its file,
        keeping what S3 holds."""
        out: list[Directive] = []
        for manifest in sorted(manifests, key=lambda m: m.created_at):
            self.add(manifest, source_readable=False)
            if not manifest.staged and not manifest.completed:
                out.append(Deliver(manifest.local_id, CopyIncomplete(now)))
        return out

    # ---------------------------------------------------------------- running

    def admit(self, now: float) -> list[Directive]:
        """Start queued uploads, oldest first, while fewer than ``parallel_uploads`` run; none while offline."""
        if not self.online:
            return []
        running = sum(1 for u in self.uploads.values() if u.phase in RUNNING)
        queued = sorted(
            (u for u in self.uploads.values() if u.phase is Phase.QUEUED), key=lambda u: u.manifest.created_at
        )
        free = max(0, self.config.parallel_uploads - running)
        return [Deliver(u.manifest.local_id, Start(now)) for u in queued[:free]]

    def set_online(self, online: bool, now: float) -> list[Directive]:
        """Only uploads that were sending hear of it; queued ones wait for their turn, which the queue gives."""
        if online == self.online:
            return []
        self.online = online
        out: list[Directive] = [
            Deliver(local_id, Connectivity(now, online))
            for local_id, upload in self.uploads.items()
            if upload.phase in RUNNING
        ]
        return out + self.admit(now)

    def action(self, local_id: str, action: str, now: float) -> list[Directive]:
        """A click on a card. Only what the card offers now is carried out: a click that raced a change is moot."""
        upload = self.uploads.get(local_id)
        if action == "dismiss":
            if upload is None or "dismiss" in upload.view().actions:
                self.views.pop(local_id, None)
                self.uploads.pop(local_id, None)
                return [Forget(local_id), *self._summary_changed()]
            return []
        if upload is None:
            return [Say(f"no upload {local_id}")]
        if action == "hide-banner":
            return [Deliver(local_id, HideLeaveHint(now))] if upload.view().banner else []
        event = _ACTION_EVENTS.get(action)
        if event is None:
            return [Say(f"unknown action {action!r}")]
        if action not in upload.view().actions:
            return []
        return [Deliver(local_id, event(now))]

    def published(self, view: UploadView, now: float) -> list[Directive]:
        """An upload's card changed: keep it, toast a completion once, update the indicator, fill free places."""
        before = self.views.get(view.local_id)
        self.views[view.local_id] = view
        out: list[Directive] = []
        changed = before is None or before.phase != view.phase
        if changed and view.phase == Phase.COMPLETED:
            out.append(Toast(view.local_id, completed_text(view.file_name), view.link))
        elif changed and view.phase == Phase.BLOCKED:
            out.append(Say(blocked_text(view.file_name, view.label), view.local_id))
        upload = self.uploads.get(view.local_id)
        if view.phase in _UPLOADED and (before is None or before.phase not in _UPLOADED) and upload is not None:
            out.extend(self._learn_link(upload))
        out.extend(self._summary_changed())
        return out + self.admit(now)

    def run_ended(self, local_id: str) -> None:
        """A driver's loop returned: a finished upload leaves the set (its card stays until dismissed)."""
        upload = self.uploads.get(local_id)
        if upload is not None and upload.phase in (Phase.COMPLETED, Phase.CANCELLED, Phase.BLOCKED):
            del self.uploads[local_id]

    def summary(self) -> Summary:
        active = [v for v in self.views.values() if not v.finished]
        size = sum(v.size for v in active)
        percent = 100.0 * sum(v.bytes_confirmed for v in active) / size if size else 0.0
        return Summary(len(active), round(percent, 1), summary_text(len(active), percent))

    def _summary_changed(self) -> list[Directive]:
        return [ShowSummary(self.summary())]

    def _learn_link(self, upload: Upload) -> list[Directive]:
        rate, error_rate = upload.link_measurement()
        self.link.remember(rate, error_rate)
        return [SaveLinkNote(self.link.to_json())]
