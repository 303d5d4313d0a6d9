"""Handing the rest of an upload to the browser (Background Fetch): when, and what the hand-off carries. Sans-I/O.

The SharedWorker that runs the engine ends with its last page, or a few minutes later (``extendedLifetime``). A
Background Fetch registration keeps sending while the browser runs, with every page closed, and survives a browser
restart; but it can only be made from an open top-level page, and Chromium sends only same-origin requests from it
(no CORS preflight: part URLs must be on the app's origin, ``PART_URL_BASE``). So the hand-off is proactive: once the
file is safe in the browser and the pessimistic ETA passes what the worker can outlive its pages by, the engine hashes
every part left and gets their URLs while it sends; then it starts no new PUT and waits until each one in flight has
answered (an aborted PUT whose body already reached the store would still be stored, while the browser sent the same
part), and asks a page to register every part not confirmed by then, with URLs signed to outlive the browser's queue
(``BACKGROUND_PRESIGN_TTL_SECONDS``). From then on those parts are the browser's until a page says the registration
has ended: no part is ever sent by both at once. Then S3 is asked what it holds, as on any resume: the Service Worker
may have completed the upload already, or the engine sends what failed.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How much of the grace period the pessimistic ETA may use before the worker is no longer trusted to finish.
GRACE_SAFETY = 0.8
#: Registration ids start with this; the Service Worker (web/sw.js) reads the session and its token from the rest.
REGISTRATION_PREFIX = "smartcat-upload"
SEPARATOR = "|"


def finishes_within_grace(eta_high: float | None, grace: float | None) -> bool:
    """True when the worker, outliving its last page by ``grace`` seconds (None: not at all), will finish."""
    return grace is not None and eta_high is not None and eta_high <= grace * GRACE_SAFETY


@dataclass(frozen=True, slots=True)
class HandOffInputs:
    """What the decision depends on, all of it known to the upload machine."""

    enabled: bool  # the deployment's part URLs are same-origin (the server says) and a page has Background Fetch
    over: bool  # one was refused or has ended in this run: what is left is the engine's (no hand-off loop)
    staged: bool  # the whole file is in the browser (the registration reads it from there)
    parts_left: int
    eta_high: float | None  # the pessimistic end of the ETA range; None: not measured yet
    grace: float | None  # seconds the worker outlives its last page; None: it ends with it
    threshold: float  # the leave threshold: shorter waits are not worth a registration and its progress UI


def wants_hand_off(inputs: HandOffInputs) -> bool:
    """Hand off once the rest will not be finished by a worker that may lose its last page at any moment."""
    if not inputs.enabled or inputs.over or not inputs.staged or inputs.parts_left < 1:
        return False
    if inputs.eta_high is None or inputs.eta_high <= inputs.threshold:
        return False
    return not finishes_within_grace(inputs.eta_high, inputs.grace)


def registration_id(session_id: str, upload_token: str) -> str:
    """The registration's id: the Service Worker reports to ``/api/uploads/<session>/finish`` with this token."""
    return SEPARATOR.join((REGISTRATION_PREFIX, session_id, upload_token))
