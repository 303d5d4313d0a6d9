"""The telemetry batch as the server accepts it: the shapes and closed vocabularies of :mod:`wire.telemetry`, with
every bound enforced (a batch outside them is refused whole with a 422 naming the field)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventIn(_Strict):
    at: Seconds = Field(gt=0)
    kind: str = Field(max_length=16)
    detail: str = Field(default="", max_length=16)
    value: float = Field(default=0.0, ge=0, le=MAX_VALUE, allow_inf_nan=False)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind; one of {', '.join(EVENT_KINDS)}")
        return kind

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
    mode: str
    seconds: float = Field(ge=0, le=3600, allow_inf_nan=False)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        if mode not in BOOT_MODES:
            raise ValueError(f"unknown boot mode; one of {', '.join(BOOT_MODES)}")
        return mode


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
