"""Part plan: how a file of a given size is cut into S3 multipart parts.

S3 (and every compatible store we target) allows parts of 5 MiB to 5 GiB, the last one smaller, numbered 1 to 10,000,
for objects up to 5 TiB. R2 additionally wants all parts but the last to be of equal size, so every plan here is
"equal parts but the last". The server and the engine both call :func:`plan_parts`, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB
DEFAULT_PART_SIZE = 8 * MiB


class PlanError(ValueError):
    """The file cannot be uploaded as an S3 multipart object (negative or larger than the S3 maximum)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One byte range of the source: ``[offset, offset + length)``, sent as part ``number`` (1-based)."""

    number: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class PartPlan:
    """The cut of a ``size``-byte file into ``part_count`` parts of ``part_size`` bytes (the last may be shorter)."""

    size: int
    part_size: int
    part_count: int

    def __post_init__(self) -> None:
        expected = _count(self.size, self.part_size)
        if self.part_count != expected:
            raise PlanError(
                f"a {self.size}-byte file in {self.part_size}-byte parts has {expected} parts, not {self.part_count}"
            )

    def part(self, number: int) -> Part:
        if not 1 <= number <= self.part_count:
            raise PlanError(f"part {number} is outside 1..{self.part_count}")
        offset = (number - 1) * self.part_size
        return Part(number, offset, min(self.part_size, self.size - offset))

    def parts(self) -> list[Part]:
        return [self.part(n) for n in range(1, self.part_count + 1)]

    def length_of(self, number: int) -> int:
        return self.part(number).length


def _count(size: int, part_size: int) -> int:
    """A 0-byte file is still one (empty) part: S3 needs at least one part to complete."""
    return max(1, -(-size // part_size))


def plan_parts(size: int, preferred_part_size: int = DEFAULT_PART_SIZE) -> PartPlan:
    """Choose the part size closest to ``preferred_part_size`` that keeps the file within 10,000 parts.

    The part size is rounded up to a whole MiB so plans stay readable and aligned with storage blocks.
    """
    if size < 0:
        raise PlanError(f"file size must not be negative (got {size})")
    if size > MAX_OBJECT_SIZE:
        raise PlanError(f"file is {size} bytes; S3 objects are at most {MAX_OBJECT_SIZE} bytes (5 TiB)")
    if preferred_part_size <= 0:
        raise PlanError(f"part size must be positive (got {preferred_part_size})")
    needed = -(-size // MAX_PARTS)
    part_size = max(preferred_part_size, MIN_PART_SIZE, needed)
    part_size = -(-part_size // MiB) * MiB
    part_size = min(part_size, MAX_PART_SIZE)
    return PartPlan(size=size, part_size=part_size, part_count=_count(size, part_size))
