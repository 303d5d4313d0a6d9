"""The telemetry batch as the server accepts it: the shapes and closed vocabularies of :mod:`wire.telemetry`, with
every bound enforced (a batch outside them is refused whole with a 422 naming the field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from wire.telemetry import (
    BOOT_MODES,
    EVENT_KINDS,
    FAILURE_CLASSES,
    MAX_CLOCK_SKEW,
    MAX_EVENTS,
    MAX_SESSION_ID,
    MAX_UPLOADS,
    MAX_VALUE,
    RESUME_CAUSES,
)

#: The details each kind may carry (others: none).
DETAILS: dict[str, tuple[str, ...]] = {
    "retry": FAILURE_CLASSES,
    "failed": FAILURE_CLASSES,
    "resumed": RESUME_CAUSES,
}
#: How far after the batch's own ``sent_at`` an event may be dated (the same clock; rounding).
_FUTURE_SLACK = 5.0

Seconds = Annotated[float, Field(allow_inf_nan=False)]


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown {what}; one of {', '.join(allowed)}")
        return value

    return check


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventIn(_Strict):
    at: Seconds = Field(gt=0)
    kind: Annotated[str, AfterValidator(_one_of(EVENT_KINDS, "event kind"))]
    detail: str = Field(default="", max_length=16)
    value: float = Field(default=0.0, ge=0, le=MAX_VALUE, allow_inf_nan=False)

    @model_validator(mode="after")
    def _known_detail(self) -> EventIn:
        allowed = DETAILS.get(self.kind, ("",))
        if self.detail not in allowed:
            raise ValueError(f"detail of a {self.kind} event must be one of {', '.join(map(repr, allowed))}")
        return self


class UploadIn(_Strict):
    session_id: str = Field(min_length=1, max_length=MAX_SESSION_ID, pattern=r"^[A-Za-z0-9_-]+$")
    events: list[EventIn] = Field(max_length=MAX_EVENTS)


class BootIn(_Strict):
    mode: Annotated[str, AfterValidator(_one_of(BOOT_MODES, "boot mode"))]
    seconds: float = Field(ge=0, le=3600, allow_inf_nan=False)


class TelemetryIn(_Strict):
    uploads: list[UploadIn] = Field(default_factory=list, max_length=MAX_UPLOADS)
    boot: BootIn | None = None
    sent_at: Seconds = Field(gt=0)

    @model_validator(mode="after")
    def _events_within_the_batch(self) -> TelemetryIn:
        earliest = self.sent_at - MAX_CLOCK_SKEW
        for upload in self.uploads:
            for event in upload.events:
                if not earliest <= event.at <= self.sent_at + _FUTURE_SLACK:
                    raise ValueError("event times must fall within the week before the batch's sent_at")
        if len({u.session_id for u in self.uploads}) != len(self.uploads):
            raise ValueError("each session may appear once per batch")
        return self
