"""The phases of one upload and the machine's one transition table (like h11's): which phase may follow which, and
what each event means in each phase.

An event is either *handled* in a phase, *stale* there (it may legitimately arrive late: a PUT that answers after a
pause, a session created after a cancel, a tick after the wakeup stopped mattering, a Staged that finished after the
upload failed), or *illegal*: then :class:`IllegalEvent` is raised, because something outside the machine got its
state wrong. Card actions are turned into events only when the view offers them (``engine/uploads.py``), so a page
cannot feed an illegal one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .events import (
    BackgroundEnded,
    Cancel,
    Connectivity,
    CopyIncomplete,
    Event,
    FileChosen,
    HandOffAnswered,
    HideLeaveHint,
    PartFailed,
    PartHashed,
    PartSent,
    Pause,
    RequestFailed,
    Resume,
    SessionCreated,
    SourceLost,
    Staged,
    Start,
    StateFetched,
    Tick,
    UploadCompleted,
    UrlsReceived,
)


class Phase(StrEnum):
    QUEUED = "queued"  # registered, waiting for its turn (its copy may be saved meanwhile)
    SAVING = "saving"  # admitted, but waiting for the browser's copy before any byte can be read
    CREATING = "creating"  # asking the server for a session
    RESUMING = "resuming"  # asking the server which parts S3 already has
    UPLOADING = "uploading"
    COMPLETING = "completing"
    COMPLETED = "completed"
    PAUSED = "paused"
    OFFLINE = "offline"  # waiting for the network; continues by itself when it is back
    FAILED = "failed"  # "Action needed": the user decides (retry, cancel)
    CANCELLED = "cancelled"
    # The browser died before its copy of the file was complete: S3 keeps the parts it holds, and the upload waits
    # for the user to choose the same file again ("Action needed", with the progress S3 holds).
    NEEDS_FILE = "needs_file"
    CHECKING = "checking"  # the file chosen again is hashed where S3 holds parts: the same bytes, or refused
    # Uploaded, and held in quarantine by the server until its malware scan decides: the verdict is polled.
    SCANNING = "scanning"
    BLOCKED = "blocked"  # the scan found malware (or the file is too large to scan): never handed out
    # The rest of the parts are the browser's (Background Fetch, engine/handoff.py) until a page says it has ended.
    BACKGROUND = "background"


Q, SV, CR, RS, UP, CG, CD, PA, OF, FA, CA, NF, CK, SC, BL, BG = (
    Phase.QUEUED,
    Phase.SAVING,
    Phase.CREATING,
    Phase.RESUMING,
    Phase.UPLOADING,
    Phase.COMPLETING,
    Phase.COMPLETED,
    Phase.PAUSED,
    Phase.OFFLINE,
    Phase.FAILED,
    Phase.CANCELLED,
    Phase.NEEDS_FILE,
    Phase.CHECKING,
    Phase.SCANNING,
    Phase.BLOCKED,
    Phase.BACKGROUND,
)
ALL = frozenset(Phase)
FINISHED = frozenset({CD, CA, BL})
#: Nothing happens until the user acts, the queue admits it, a page says so, or it is finished.
IDLE = frozenset({Q, CD, PA, FA, CA, NF, BL, BG})
#: Phases that use bandwidth (or will in a moment): they hold one of the queue's places.
RUNNING = frozenset({SV, CR, RS, UP, CG, OF})
#: Phases whose requests are on the wire (an outage stops them).
SENDING = frozenset({CR, RS, UP})

#: Which phase may follow which. Entering any other is a bug: ``Upload`` raises :class:`IllegalTransition`.
#: Wherever the server may say "completed", it may say the object waits for its scan, or was blocked by it.
DONE = frozenset({CD, SC, BL})
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Q: frozenset({SV, CR, RS, FA, CA, NF, BG}) | DONE,
    SV: frozenset({CR, UP, PA, FA, CA}),
    CR: frozenset({UP, SV, PA, OF, FA, CA}),
    RS: frozenset({UP, PA, OF, FA, CA}) | DONE,
    UP: frozenset({CG, PA, OF, FA, CA, BG}),
    CG: frozenset({FA, CA}) | DONE,
    CD: frozenset(),
    PA: frozenset({SV, CR, RS, FA, CA}) | DONE,
    OF: frozenset({SV, CR, RS, PA, FA, CA}) | DONE,
    FA: frozenset({SV, CR, RS, CA}) | DONE,
    CA: frozenset(),
    NF: frozenset({CK, FA, CA}) | DONE,
    CK: frozenset({NF, Q, FA, CA}),  # refused: back to waiting for the file; the same: queued, then resumed
    SC: frozenset({CD, BL}),  # the verdict: released, or blocked for good
    BL: frozenset(),
    BG: frozenset({RS, CA}),  # ended: ask S3 what the browser stored, as on any resume
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Where an event type is handled, and where it is a harmless late arrival."""

    handled: frozenset[Phase]
    stale: frozenset[Phase] = frozenset()


#: What each event means in each phase. A phase in neither set makes the event illegal there.
#: The bytes are on S3 for good: nothing about the local file or its parts matters any more.
UPLOADED = FINISHED | {SC}
EVENTS: Mapping[type[Event], Rule] = {
    Start: Rule(handled=frozenset({Q})),
    Staged: Rule(handled=frozenset({Q, SV, CR, RS, UP, CG, PA, OF}), stale=frozenset({FA, NF, CK, BG}) | UPLOADED),
    # The browser holds its own copy of what it sends: a lost local copy matters once the parts are ours again.
    SourceLost: Rule(handled=ALL - UPLOADED - {BG}, stale=UPLOADED | {BG}),
    CopyIncomplete: Rule(handled=frozenset({Q})),
    FileChosen: Rule(handled=frozenset({NF})),
    SessionCreated: Rule(handled=frozenset({SV, CR, PA, OF, FA, CA})),
    StateFetched: Rule(
        handled=frozenset({RS, PA, OF, FA, NF, SC}), stale=frozenset({Q, SV, CR, UP, CG, CD, CA, CK, BL, BG})
    ),
    UrlsReceived: Rule(handled=frozenset({UP}), stale=ALL - {UP}),
    PartHashed: Rule(handled=ALL - UPLOADED, stale=UPLOADED),
    PartSent: Rule(handled=frozenset({UP, PA, OF, FA, BG}), stale=frozenset({Q, SV, CR, RS, CG}) | UPLOADED),
    PartFailed: Rule(handled=ALL - UPLOADED, stale=UPLOADED),
    RequestFailed: Rule(handled=ALL),
    UploadCompleted: Rule(handled=frozenset({CG}), stale=ALL - {CG}),
    HandOffAnswered: Rule(handled=frozenset({BG}), stale=ALL - {BG}),
    # Found at boot in the queue, the registration may end before the upload's turn: it then starts from S3's parts.
    BackgroundEnded: Rule(handled=frozenset({BG, Q}), stale=ALL - {BG, Q}),
    Tick: Rule(handled=ALL),
    Connectivity: Rule(handled=ALL),
    Pause: Rule(handled=frozenset({CR, RS, UP, OF}), stale=frozenset({PA})),
    Resume: Rule(handled=frozenset({PA, FA})),
    Cancel: Rule(handled=ALL - UPLOADED, stale=frozenset({CA, SC})),  # a click that raced the completion
    HideLeaveHint: Rule(handled=ALL),
}


class IllegalTransition(RuntimeError):
    """The machine tried to enter a phase the table does not allow from the current one."""


class IllegalEvent(RuntimeError):
    """An event arrived in a phase where it cannot happen: the caller's idea of the state is wrong."""


def check_transition(current: Phase, new: Phase) -> None:
    if new is not current and new not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current.value} -> {new.value} is not a transition of an upload")


def disposition(event: Event, phase: Phase) -> bool:
    """True when ``event`` is to be handled in ``phase``, False when it is stale there; raise when illegal."""
    rule = EVENTS[type(event)]
    if phase in rule.handled:
        return True
    if phase in rule.stale:
        return False
    raise IllegalEvent(f"{type(event).__name__} cannot happen while an upload is {phase.value}")
