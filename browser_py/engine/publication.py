"""When an upload's card is published to the pages: at once when what the user can do or is told changes, at most
every ``interval`` seconds while only its numbers move.

Every publication is a message to every open page, an indicator update and a redraw there; at a fast link's one part
every few tens of milliseconds those cost the engine more than the bytes. Time is an input (sans-I/O): a card held
back is published by the first event at or after its due time, which the machine asks for with a ``Wakeup``, so no
change is ever lost or late by more than ``interval``.
"""

from __future__ import annotations

from dataclasses import replace

from wire.view import UploadView

#: Never shown on a card: these change on almost every event and ride along with the next real change.
_RIDE_ALONG: dict[str, object] = {
    "speed_bps": None,
    "eta_seconds": None,
    "in_flight": 0,
    "concurrency": 0,
    "bytes_sent_this_run": 0,
}
#: What moves on its own while bytes go out: these alone never make a card urgent.
_NUMBERS: dict[str, object] = {
    **_RIDE_ALONG,
    "label": "",  # "Resuming upload… NN% complete" counts its percent; a new phase's label comes with the phase
    "bytes_confirmed": 0,
    "percent": 0.0,
    "parts_done": 0,
    "eta_text": "",
    "speed_text": "",
    "bytes_text": "",
    "long_wait": False,
}


def _without(view: UploadView, fields: dict[str, object]) -> UploadView:
    return replace(view, **fields)  # type: ignore[arg-type]  # each default has its field's type (above)


def same_card(a: UploadView, b: UploadView) -> bool:
    """Nothing a page shows differs."""
    return _without(a, _RIDE_ALONG) == _without(b, _RIDE_ALONG)


def numbers_only(a: UploadView, b: UploadView) -> bool:
    """Only progress moved between two cards (same phase, buttons, banner, error, offer, link ...)."""
    return _without(a, _NUMBERS) == _without(b, _NUMBERS)


class Publisher:
    """The publication cadence of one upload's card."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: UploadView | None = None
        self._last_at = float("-inf")
        #: When a card held back is due (None: nothing held back).
        self.due: float | None = None

    def offer(self, view: UploadView, now: float, hold: bool = True) -> UploadView | None:
        """The card to publish now, or None (the same card, or numbers only and too soon: then :attr:`due` says
        when to offer again). ``hold=False`` where no tick would come (an idle upload's driver has stopped)."""
        last = self.last
        if last is not None and same_card(last, view):
            self.due = None
            return None
        if hold and last is not None and numbers_only(last, view) and now < self._last_at + self.interval:
            self.due = self._last_at + self.interval
            return None
        self.last, self._last_at, self.due = view, now, None
        return view
