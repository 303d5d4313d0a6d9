"""What S3 holds, set against what a session planned and signed: S3 is the truth about parts, we are the truth
about which bytes were meant (the plan, the checksums signed into part URLs)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.models import PartChecksum, UploadSession, table_of
from server.storage import ObjectInfo, ObjectNotFound, Storage, StoredPart
from server.uploads.problems import Conflict, ranges
from wire.plan import PartPlan


def plan_of(row: UploadSession) -> PartPlan:
    return PartPlan(size=row.size, part_size=row.part_size, part_count=row.part_count)


def _unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def best_copies(stored: Sequence[StoredPart], plan: PartPlan) -> list[StoredPart]:
    """One copy per planned part number.

    SeaweedFS lists every copy of a part sent more than once, with LastModified in whole seconds and copies of the
    same second in no particular order. Prefer a copy of the planned size (usable to complete), then the newest.
    """
    oldest = datetime.min.replace(tzinfo=UTC)

    def rank(part: StoredPart) -> tuple[bool, datetime]:
        return part.size == plan.length_of(part.number), part.last_modified or oldest

    best: dict[int, StoredPart] = {}
    for part in stored:
        if not 1 <= part.number <= plan.part_count:
            continue
        current = best.get(part.number)
        if current is None or rank(part) > rank(current):
            best[part.number] = part
    return [best[number] for number in sorted(best)]


def whole_bytes(stored: Sequence[StoredPart], plan: PartPlan) -> int:
    """The bytes of the planned parts S3 holds whole (a part of the wrong size counts for nothing)."""
    return sum(plan.length_of(p.number) for p in best_copies(stored, plan) if p.size == plan.length_of(p.number))


def check_parts(plan: PartPlan, stored: Sequence[StoredPart], given: Mapping[int, str]) -> None:
    """Refuse to assemble an object S3 cannot build or whose parts do not match the plan (wrong bytes sent).

    ETags S3 does not know for a part are left for S3 to refuse (InvalidPart), so its word stays the final one.
    """
    copies: dict[int, dict[str, StoredPart]] = {}
    for part in stored:
        copies.setdefault(part.number, {})[_unquoted(part.etag)] = part
    absent = [n for n in sorted(given) if n not in copies]
    if absent:
        raise Conflict({"message": f"storage holds no part {ranges(absent)}", "missing": absent, "unexpected": []})
    wrong: list[tuple[int, int]] = []
    for number, etag in sorted(given.items()):
        copy = copies[number].get(_unquoted(etag))
        if copy is not None and copy.size != plan.length_of(number):
            wrong.append((number, copy.size))
    if wrong:
        first, held = wrong[0]
        raise Conflict(
            {
                "message": (
                    f"part size does not match the plan for part {ranges(n for n, _ in wrong)} "
                    f"(part {first} holds {held} bytes, expected {plan.length_of(first)})"
                ),
                "wrong_size": [n for n, _ in wrong],
            }
        )


def signed_checksums(db: Session, row: UploadSession) -> dict[int, str] | None:
    """The checksum of every part, as signed into its latest URL; None for uploads without checksums."""
    if not row.checksum_algorithm:
        return None
    rows = db.connection().execute(_CHECKSUMS, {"session_id": row.id})  # Core: plain pairs, no ORM objects
    checksums = {number: sha256 for number, sha256 in rows}
    unsigned = [n for n in range(1, row.part_count + 1) if n not in checksums]
    if unsigned:
        raise Conflict(
            {
                "message": f"no checksummed URL was ever issued for part {ranges(unsigned)}",
                "missing": unsigned,
                "unexpected": [],
            }
        )
    return checksums


_PARTS = table_of(PartChecksum)
_CHECKSUMS = select(_PARTS.c.part_number, _PARTS.c.sha256).where(_PARTS.c.session_id == bindparam("session_id"))


def composite_sha256(checksums: Sequence[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the parts' raw SHA-256 digests, then ``-<count>``."""
    digest = hashlib.sha256(b"".join(base64.b64decode(c) for c in checksums)).digest()
    return f"{base64.b64encode(digest).decode()}-{len(checksums)}"


def expected_composite(checksums: Mapping[int, str]) -> str:
    return composite_sha256([checksums[n] for n in sorted(checksums)])


def assembled_earlier(storage: Storage, row: UploadSession) -> ObjectInfo | None:
    """The session's object, if an earlier attempt completed it and lost its answer (the key is this session's
    alone, and the size must be the planned one); None when S3 has no such object."""
    try:
        info = storage.head_object(row.object_key)
    except ObjectNotFound:
        return None
    return info if info.size == row.size else None
