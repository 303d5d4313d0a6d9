"""The ``session`` load model's arithmetic: when one simulated browser makes each request of one file.

A browser running our engine sends a file in parts of ``part_bytes`` (8 MiB) at its user's upload rate; the engine's
four lanes share that link, so each part spends ``lanes`` x ``part_seconds`` on its lane and one part is stored every
``part_seconds`` = part_bytes x 8 / (user_mbps x 10⁶) (3.36 s at 20 Mbit/s). Around the parts it makes one create, a
URL request per ``url_batch`` parts, a status (ListParts) only when it resumes after the tab was closed, and one
complete. This module says when each of those happens; ``load/locustfile.py`` makes them (with small bodies: see
there). Pure standard library, so its arithmetic is tested without Locust (``tests/load/test_model.py``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024

Kind = Literal["create", "urls", "put", "status", "complete"]


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a file: ``kind``, the part it concerns (-1: none), ``at`` seconds after the file's create."""

    kind: Kind
    part: int
    at: float


@dataclass(frozen=True, slots=True)
class SessionModel:
    parts: int = 48  # three URL batches
    part_bytes: int = 8 * MiB  # the part each paced PUT stands for (PART_SIZE_BYTES)
    user_mbps: float = 20.0  # the user's upload link, shared by the lanes
    url_batch: int = 16  # the engine's EngineConfig.url_batch
    resume_rate: float = 0.1  # share of files resumed once (tab closed and opened again): one status each
    lanes: int = 4  # the engine's parts in flight (EngineConfig.concurrency); they share the link

    def __post_init__(self) -> None:
        if self.parts < 1 or self.part_bytes < 1 or self.url_batch < 1 or self.lanes < 1:
            raise ValueError("LOAD_PARTS, the part size, the URL batch and the lanes must be at least 1")
        if not self.user_mbps > 0:
            raise ValueError(f"LOAD_USER_MBPS must be above 0 (got {self.user_mbps})")
        if not 0.0 <= self.resume_rate <= 1.0:
            raise ValueError(f"LOAD_RESUME_RATE must be between 0 and 1 (got {self.resume_rate})")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SessionModel:
        """The model ``python -m load`` passes to Locust in ``LOAD_*`` variables (the defaults when unset)."""
        d = cls()
        try:
            return cls(
                parts=int(environ.get("LOAD_PARTS", d.parts)),
                part_bytes=int(environ.get("LOAD_PART_BYTES", d.part_bytes)),
                user_mbps=float(environ.get("LOAD_USER_MBPS", d.user_mbps)),
                resume_rate=float(environ.get("LOAD_RESUME_RATE", d.resume_rate)),
            )
        except ValueError as error:
            raise ValueError(f"load session model: {error}") from None

    @property
    def part_seconds(self) -> float:
        """Seconds between two stored parts of one user: a part's bits over the link."""
        return self.part_bytes * 8 / (self.user_mbps * 1e6)

    @property
    def file_seconds(self) -> float:
        return self.parts * self.part_seconds

    @property
    def url_requests(self) -> int:
        return math.ceil(self.parts / self.url_batch)

    @property
    def server_requests_per_file(self) -> float:
        """create + URL batches + the expected status + complete (part PUTs go to the store, not the server)."""
        return 1 + self.url_requests + self.resume_rate + 1

    @property
    def server_requests_per_user_second(self) -> float:
        return self.server_requests_per_file / self.file_seconds

    @property
    def puts_per_user_second(self) -> float:
        return 1 / self.part_seconds

    def steps(self, first_part: int = 0, resume_before: int | None = None) -> list[Step]:
        """The requests of one file whose parts ``first_part`` … ``parts - 1`` are left to send, in order.

        Part ``i`` is stored (its PUT) when its bits are through: ``(i - first_part + 1)`` x ``part_seconds`` after
        the create; its batch's URLs are asked for when the batch's first part starts; ``resume_before``: a status
        (ListParts, what a resuming engine asks) right before that part's PUT; the complete follows the last PUT.
        """
        if not 0 <= first_part < self.parts:
            raise ValueError(f"first_part must be in 0…{self.parts - 1} (got {first_part})")
        steps = [Step("create", -1, 0.0)]
        for part in range(first_part, self.parts):
            starts = (part - first_part) * self.part_seconds
            if part == first_part or part % self.url_batch == 0:
                steps.append(Step("urls", part, starts))
            if part == resume_before:
                steps.append(Step("status", part, starts + self.part_seconds))
            steps.append(Step("put", part, starts + self.part_seconds))
        steps.append(Step("complete", -1, steps[-1].at))
        return steps

    def draw(self, rng: random.Random, *, first_file: bool) -> list[Step]:
        """A file's requests: whether it resumes (``resume_rate``) and before which part are drawn; a user's first
        file starts at a random part, as if the user had been uploading before the measurement began, so N users
        are spread over their files from the start instead of all creating at once."""
        first = rng.randrange(self.parts) if first_file else 0
        resumes = first + 1 < self.parts and rng.random() < self.resume_rate
        return self.steps(first, rng.randrange(first + 1, self.parts) if resumes else None)
