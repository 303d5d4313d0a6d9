"""The one owner of an upload session's lifecycle: it starts sessions, signs their part URLs, and alone moves a
session from ``uploading`` to a final state (completed, aborted, failed, expired) with the outbox event that
announces it, in one transaction.

Completing or aborting holds the session's finish lease (:mod:`server.lease`), so a concurrent request waits for
the first instead of racing it at S3. The janitor expires idle sessions through :meth:`UploadService.expire_idle`.

With scanning on, a completed session's object waits in quarantine (``scan_status`` pending, no event yet); the
scanner's verdict is recorded by :func:`record_scan`, which releases it with ``upload_completed`` or keeps it with
``upload_blocked``, so no event ever announces a file still in quarantine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from server import content_policy, metrics, timeline
from server.clock import utcnow
from server.lease import Claimant, Lease
from server.models import (
    EventType,
    PartChecksum,
    ScanStatus,
    UploadSession,
    UploadStatus,
    new_session_id,
    table_of,
)
from server.outbox import record_upload_event
from server.storage import InvalidParts, Storage, StoredPart, UploadNotFound
from server.uploads import reconcile
from server.uploads.problems import (
    Conflict,
    Gone,
    OverQuota,
    StorageMismatch,
    TooLarge,
    Unprocessable,
    ranges,
)
from server.upsert import upsert
from wire.plan import PlanError, plan_parts

#: A complete or abort that has held its lease this long is presumed dead, and another request may take over
#: (S3 may take minutes to complete a very large object).
LEASE_HOLD = timedelta(minutes=10)
#: How long a second complete/abort waits for the first one to finish before answering 409.
LEASE_WAIT_SECONDS = 30.0
#: The lease of one complete or abort on its session.
FINISH_LEASE = Lease(UploadSession, UploadSession.finish_lease, UploadSession.finish_lease_at)
EXPIRED_ON_STORAGE = "upload session expired on storage"
_BUSY = "another request is finishing this upload; retry later"
TOO_OLD = "this upload is older than the service keeps uploads; start a new one"


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """What one user may start and for how long a session lives (from the settings)."""

    require_checksums: bool = True
    max_file_size: int = 5 * 1024**4
    max_open_sessions: int = 1_000_000
    max_bytes_in_progress: int = 2**62
    max_age: timedelta = timedelta(days=7)
    #: Types a session may have (None: any).
    allowed_types: frozenset[str] | None = None
    #: At completion, the first bytes must be what the type says.
    sniff_content: bool = False
    #: Completed objects wait in quarantine for the malware scanner (``SCAN=clamd``).
    quarantine: bool = False


_finishers = Claimant()
#: A client asked for URLs: it is alive (Core on the session's connection: the ORM's UPDATE path costs more).
_TOUCH = (
    update(table_of(UploadSession))
    .where(table_of(UploadSession).c.id == bindparam("session_id"))
    .values(updated_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class SignedUrls:
    urls: list[tuple[int, str]]
    #: Epoch seconds, read before signing, so never later than the URLs' real expiry.
    expires_at: float
    #: The server's clock when it signed: a client judges the lifetime ``expires_at - signed_at`` on its own clock.
    signed_at: float


def end_session(
    db: Session,
    row: UploadSession,
    status: UploadStatus,
    *,
    etag: str | None = None,
    checksum: str | None = None,
    unless_leased: bool = False,
    quarantine: bool = False,
    reason: str = "",
) -> bool:
    """Move an uploading session to the final ``status`` and record its event, in one transaction (commits).

    The only place a session's status changes. Returns whether this call changed it: a second finisher changes no
    row and so records no second event. Not conditional on the caller's lease (even if it was presumed dead and
    taken over, S3 acted), unless ``unless_leased``: then a session someone is finishing is left to them.
    A completion with ``quarantine`` records no event: the object waits for its scan (:func:`record_scan`).
    ``reason`` (a fixed word, e.g. ``checksum_mismatch``) labels the ending in the metrics.
    """
    now = utcnow()
    where = [UploadSession.id == row.id, UploadSession.status == UploadStatus.UPLOADING.value]
    if unless_leased:
        where.append(FINISH_LEASE.token.is_(None))
    held = quarantine and status is UploadStatus.COMPLETED
    scan = {"scan_status": ScanStatus.PENDING.value, "scan_next_at": now} if held else {}
    values = {
        "status": status.value,
        "etag": etag,
        "checksum_sha256": checksum,
        "updated_at": now,
        "completed_at": now if status is UploadStatus.COMPLETED else None,
        **scan,
    }
    changed = FINISH_LEASE.release(db, *where, **values)
    if changed == 1:
        # ``row`` now holds what the UPDATE wrote, so callers answer from it without reading it back.
        for name, value in {FINISH_LEASE.token.key: None, FINISH_LEASE.until.key: None, **values}.items():
            set_committed_value(row, name, value)
        timeline.note(db, row.id, status.value, reason)
        if held:
            db.info[NEW_SCANS] = True
        else:
            record_upload_event(db, row, status, at=now, etag=etag, checksum_sha256=checksum)
    db.commit()
    if changed == 1:
        metrics.session_ended(status.value, reason, row.size, row.created_at, now)
    return changed == 1


#: Set on a SQLAlchemy session that put an object in quarantine, so its commit can wake the scanner at once.
NEW_SCANS = "scan.new"
#: The scanner's hold on a session while it streams its object.
SCAN_LEASE = Lease(UploadSession, UploadSession.scan_lease, UploadSession.scan_lease_at)


def record_scan(db: Session, row: UploadSession, token: str, verdict: ScanStatus, signature: str | None) -> bool:
    """Record the scan verdict of a quarantined session held under ``token``, with its event, in one transaction
    (commits): ``clean``/``unscanned`` release the object and announce ``upload_completed``; ``infected`` and
    ``too_large`` keep it and announce ``upload_blocked``. Returns whether this call recorded it (a scanner whose
    lease was taken over records nothing: the other one's verdict counts)."""
    now = utcnow()
    changed = SCAN_LEASE.release(
        db,
        UploadSession.id == row.id,
        UploadSession.scan_status == ScanStatus.PENDING.value,
        SCAN_LEASE.held_by(token),
        scan_status=verdict.value,
        scan_signature=signature,
        scan_error=None,
        scan_next_at=None,
        scanned_at=now,
        updated_at=now,
    )
    if changed == 1:
        timeline.note(db, row.id, "scanned", verdict.value)
        blocked = verdict in (ScanStatus.INFECTED, ScanStatus.TOO_LARGE)
        record_upload_event(
            db,
            row,
            UploadStatus.COMPLETED,
            at=now,
            etag=row.etag,
            checksum_sha256=row.checksum_sha256,
            event_type=EventType.UPLOAD_BLOCKED if blocked else None,
            scan=(verdict.value, signature),
        )
    db.commit()
    if changed == 1:
        metrics.scan_recorded(verdict.value, row.size, row.completed_at, now)
    return changed == 1


class UploadService:
    """Upload sessions on one database session and one storage."""

    def __init__(self, db: Session, storage: Storage, policy: UploadPolicy | None = None) -> None:
        self.db = db
        self.storage = storage
        self.policy = policy or UploadPolicy()

    # ---- starting and sending -----------------------------------------------------------------------------------

    def create(
        self,
        owner: str,
        *,
        file_name: str,
        size: int,
        content_type: str,
        fingerprint: str,
        part_size: int,
        checksum_algorithm: str | None,
        first_urls: int,
        ttl: int,
    ) -> tuple[UploadSession, SignedUrls]:
        """Plan the parts, start the S3 multipart upload, and sign up to ``first_urls`` part URLs (none for a
        checksummed upload: a URL needs its part's checksum)."""
        content_type = content_policy.resolve_type(file_name, content_type)
        if self.policy.allowed_types is not None:
            refused = content_policy.refusal(file_name, content_type, self.policy.allowed_types)
            if refused:
                raise Unprocessable(refused)
        self._admit(owner, size, checksum_algorithm)
        try:
            plan = plan_parts(size, part_size)
        except PlanError as error:
            raise Unprocessable(str(error)) from error
        session_id = new_session_id()
        object_key = f"uploads/{owner}/{session_id}"
        upload_id = self.storage.create_multipart(
            object_key, content_type, file_name=file_name, checksum_algorithm=checksum_algorithm
        )
        row = UploadSession(
            id=session_id,
            owner_id=owner,
            file_name=file_name,
            size=size,
            content_type=content_type,
            fingerprint=fingerprint,
            object_key=object_key,
            upload_id=upload_id,
            part_size=plan.part_size,
            part_count=plan.part_count,
            status=UploadStatus.UPLOADING.value,
            checksum_algorithm=checksum_algorithm,
        )
        try:
            self.db.add(row)
            self.db.flush()  # the row exists before its first timeline event refers to it
            timeline.note(self.db, session_id, "created", value=plan.part_count)
            self.db.commit()
        except Exception:
            self.db.rollback()
            self.storage.abort(object_key, upload_id)
            raise
        metrics.session_created(size)
        first = 0 if checksum_algorithm else min(plan.part_count, first_urls)
        metrics.URL_REQUESTS.labels("first").inc()
        return row, self._presign(row, range(1, first + 1), None, ttl)

    def _admit(self, owner: str, size: int, checksum_algorithm: str | None) -> None:
        """Refuse a session the policy does not allow: no checksums where required, a file over the size limit, or
        a user at their cap of uploads or bytes in progress."""
        policy = self.policy
        if policy.require_checksums and checksum_algorithm is None:
            raise Unprocessable("this service requires part checksums: give checksum_algorithm SHA256")
        if size > policy.max_file_size:
            raise TooLarge(f"the file is {size} bytes; the largest this service accepts is {policy.max_file_size}")
        count, in_progress = self.db.execute(
            select(func.count(), func.coalesce(func.sum(UploadSession.size), 0)).where(
                UploadSession.owner_id == owner, UploadSession.status == UploadStatus.UPLOADING.value
            )
        ).one()
        if count >= policy.max_open_sessions:
            raise OverQuota(
                f"you have {count} uploads in progress, the most allowed at once; finish or cancel one first"
            )
        if in_progress + size > policy.max_bytes_in_progress:
            raise OverQuota(
                f"uploads in progress would hold {in_progress + size} bytes, more than the "
                f"{policy.max_bytes_in_progress} allowed at once; finish or cancel some first"
            )

    def sign_parts(
        self, row: UploadSession, numbers: Sequence[int], checksums: Mapping[int, str] | None, ttl: int
    ) -> SignedUrls:
        """Sign more part URLs (or fresh ones for parts whose URLs expired); a checksummed upload needs
        ``checksums``, each signed into its URL and recorded as the part's expected checksum."""
        if row.status != UploadStatus.UPLOADING.value:
            raise Conflict(f"upload is {row.status}; no more parts can be sent")
        if self._age_left(row) <= 0:
            raise Gone(TOO_OLD)
        outside = sorted({n for n in numbers if not 1 <= n <= row.part_count})
        if outside:
            raise Unprocessable(f"part numbers {ranges(outside)} are outside 1..{row.part_count}")
        unique = list(dict.fromkeys(numbers))
        if row.checksum_algorithm:
            if checksums is None:
                raise Unprocessable("this upload is checksummed: give parts with checksum_sha256")
            self._record_checksums(row, checksums)
        else:
            checksums = None
        signed = self._presign(row, unique, checksums, ttl)
        metrics.URL_REQUESTS.labels("more").inc()
        timeline.note(self.db, row.id, "urls", value=len(signed.urls))
        # The client is alive: the janitor measures idleness from here.
        now = utcnow()
        self.db.connection().execute(_TOUCH, {"session_id": row.id, "now": now})
        set_committed_value(row, "updated_at", now)
        self.db.commit()
        return signed

    def _presign(
        self, row: UploadSession, numbers: Iterable[int], checksums: Mapping[int, str] | None, ttl: int
    ) -> SignedUrls:
        # No URL outlives the session's hard maximum age (the janitor aborts the upload then).
        ttl = max(1, min(ttl, int(self._age_left(row))))
        signed_at = time.time()
        expires_at = signed_at + ttl
        plan = reconcile.plan_of(row)
        urls = [
            (
                n,
                self.storage.presign_part(
                    row.object_key,
                    row.upload_id,
                    n,
                    ttl,
                    checksums[n] if checksums else None,
                    content_length=plan.length_of(n),
                ),
            )
            for n in numbers
        ]
        metrics.URLS_SIGNED.inc(len(urls))
        return SignedUrls(urls, expires_at, signed_at)

    def _age_left(self, row: UploadSession) -> float:
        """Seconds until ``row`` reaches the hard maximum age."""
        return (row.created_at + self.policy.max_age - utcnow()).total_seconds()

    def _record_checksums(self, row: UploadSession, checksums: Mapping[int, str]) -> None:
        """Keep the checksum signed into each part's latest URL: the one S3 verified if that PUT succeeds (committed
        with the request, before any URL is handed out)."""
        upsert(
            self.db,
            PartChecksum,
            [{"session_id": row.id, "part_number": n, "sha256": checksum} for n, checksum in checksums.items()],
            keys=("session_id", "part_number"),
            update=("sha256",),
        )

    # ---- what S3 holds ------------------------------------------------------------------------------------------

    def parts_held(self, row: UploadSession) -> list[StoredPart]:
        """The parts S3 holds for an uploading session (one copy each); none once it is finished.

        A session whose multipart upload S3 no longer has, and that nobody is finishing, has expired: it is ended
        so (with its event) and :class:`Gone` is raised.
        """
        if row.status != UploadStatus.UPLOADING.value:
            return []
        metrics.STATE_REQUESTS.inc()
        try:
            held = reconcile.best_copies(self.storage.list_parts(row.object_key, row.upload_id), reconcile.plan_of(row))
        except UploadNotFound as error:
            self.db.refresh(row)
            # A complete or abort may have just finished it; only an upload nobody finished has expired.
            if row.status == UploadStatus.UPLOADING.value and row.finish_lease is None:
                end_session(self.db, row, UploadStatus.EXPIRED, unless_leased=True, reason="storage_gone")
                raise Gone(EXPIRED_ON_STORAGE) from error
            return []
        timeline.note(self.db, row.id, "parts_listed", value=len(held))
        self.db.commit()
        return held

    # ---- finishing ----------------------------------------------------------------------------------------------

    def complete(self, row: UploadSession, parts: Sequence[tuple[int, str]]) -> UploadSession:
        """Assemble the object from ``(part number, etag)`` pairs. Idempotent: a completed session is returned as
        it is, whatever ``parts`` say."""
        if row.status == UploadStatus.COMPLETED.value:
            return row
        if row.status in (UploadStatus.FAILED.value, UploadStatus.EXPIRED.value):
            raise Gone(f"upload {row.status}; start a new one")
        if row.status == UploadStatus.ABORTED.value:
            raise Conflict("upload was aborted; start a new one")
        given = _listed_parts(row, parts)

        row, token = self._lease(row)
        if token is None:  # another request finished it meanwhile
            if row.status == UploadStatus.COMPLETED.value:
                return row
            raise Conflict(f"upload was {row.status}; start a new one")
        try:
            etag, composite = self._assemble(row, given)
        except InvalidParts as error:
            self.release_lease(row, token)
            raise Conflict({"message": f"storage refused the parts: {error.message}", "code": error.code}) from error
        except BaseException:
            self.release_lease(row, token)
            raise
        if self.policy.sniff_content:
            self._check_content(row)
        ended = end_session(
            self.db, row, UploadStatus.COMPLETED, etag=etag, checksum=composite, quarantine=self.policy.quarantine
        )
        if not ended:  # someone else ended it meanwhile: answer from what they wrote
            self.db.refresh(row)
        return row

    def complete_from_storage(self, row: UploadSession) -> UploadSession:
        """Assemble the object from the parts S3 lists: for a browser's Background Fetch, which sent the parts with no
        engine left to list them. Every planned part must be held whole; the ETags are S3's own, the checksums the
        ones signed into the URLs (S3 checks each part against its own, and the composite is verified as in
        :meth:`complete`). Idempotent, and with the engine's own complete: whichever comes first assembles."""
        if row.status == UploadStatus.UPLOADING.value:
            plan = reconcile.plan_of(row)
            held = {p.number: p.etag for p in self.parts_held(row) if p.size == plan.length_of(p.number)}
            missing = [n for n in range(1, row.part_count + 1) if n not in held]
            self.db.refresh(row)
            if missing and row.status == UploadStatus.UPLOADING.value:
                raise Conflict(
                    {"message": f"storage holds no whole part {ranges(missing)}", "missing": missing, "unexpected": []}
                )
            if row.status == UploadStatus.UPLOADING.value:
                return self.complete(row, sorted(held.items()))
        return self.complete(row, [])  # finished meanwhile: its answer, or why it cannot be completed

    def _check_content(self, row: UploadSession) -> None:
        """The assembled object's first bytes must be what its type says; if not, the object is deleted and the
        session fails (with its event) with the reason, which the client shows."""
        head = self.storage.read_head(row.object_key, content_policy.SNIFF_BYTES) if row.size else b""
        reason = content_policy.mismatch(row.content_type, head, complete=row.size <= len(head))
        if reason is None:
            return
        self.storage.delete_object(row.object_key)
        end_session(self.db, row, UploadStatus.FAILED, reason="content_mismatch")
        raise Unprocessable(reason)

    def _assemble(self, row: UploadSession, given: dict[int, str]) -> tuple[str, str | None]:
        """Have S3 assemble the object (we hold the lease); return its ETag and composite checksum."""
        try:
            reconcile.check_parts(reconcile.plan_of(row), self.storage.list_parts(row.object_key, row.upload_id), given)
            checksums = reconcile.signed_checksums(self.db, row)
            assembled = self.storage.complete(row.object_key, row.upload_id, list(given.items()), checksums)
        except UploadNotFound as error:
            # An earlier attempt may have completed it and lost its answer: the object is the proof.
            earlier = reconcile.assembled_earlier(self.storage, row)
            if earlier is None:
                end_session(self.db, row, UploadStatus.EXPIRED, reason="storage_gone")
                raise Gone(EXPIRED_ON_STORAGE) from error
            return earlier.etag, None
        reported = assembled.checksum_sha256
        if checksums is not None and reported is not None:
            self._verify_composite(row, checksums, reported)
        return assembled.etag, reported

    def _verify_composite(self, row: UploadSession, checksums: Mapping[int, str], reported: str) -> None:
        """End-to-end check: S3's composite checksum must be the one our recorded part checksums make.

        A mismatch means S3 assembled other bytes than were verified: the object is deleted rather than trusted, and
        the session fails (with its event) so the client starts over instead of retrying forever.
        """
        expected = reconcile.expected_composite(checksums)
        if reported == expected:
            return
        self.storage.delete_object(row.object_key)
        metrics.CHECKSUM_FAILURES.labels("composite").inc()
        end_session(self.db, row, UploadStatus.FAILED, checksum=reported, reason="checksum_mismatch")
        raise StorageMismatch(
            {
                "message": "storage assembled bytes that do not match the verified parts; the object was deleted",
                "expected": expected,
                "reported": reported,
            }
        )

    def abort(self, row: UploadSession) -> None:
        """Abort the multipart upload and drop its parts. Idempotent; a completed upload cannot be aborted."""
        if row.status == UploadStatus.ABORTED.value:
            return
        if row.status == UploadStatus.COMPLETED.value:
            raise Conflict("upload is completed; it cannot be aborted")
        row, token = self._lease(row)
        if token is None:  # another request finished it meanwhile
            if row.status == UploadStatus.COMPLETED.value:
                raise Conflict("upload is completed; it cannot be aborted")
            return  # aborted, expired or failed: its multipart upload is gone either way
        try:
            self.storage.abort(row.object_key, row.upload_id)
        except BaseException:
            self.release_lease(row, token)
            raise
        end_session(self.db, row, UploadStatus.ABORTED, reason="cancelled")

    def expire_idle(self, row: UploadSession) -> bool:
        """Abort an idle session's multipart upload on S3 and end it as expired, unless a complete or abort is
        under way. Returns whether it was expired by this call (raises :class:`StorageError` if S3 failed)."""
        self.storage.abort(row.object_key, row.upload_id)
        return end_session(self.db, row, UploadStatus.EXPIRED, unless_leased=True, reason="idle")

    # ---- the finish lease ---------------------------------------------------------------------------------------

    def take_lease(self, row: UploadSession) -> str | None:
        """Claim the right to finish an uploading session; None while someone else holds it (commits)."""
        token = _finishers.token()
        now = utcnow()
        claimed = FINISH_LEASE.claim(
            self.db,
            UploadSession.id == row.id,
            UploadSession.status == UploadStatus.UPLOADING.value,
            token=token,
            now=now,
            hold=LEASE_HOLD,
            updated_at=now,
        )
        self.db.commit()
        return token if claimed == 1 else None

    def release_lease(self, row: UploadSession, token: str) -> None:
        FINISH_LEASE.release(self.db, UploadSession.id == row.id, FINISH_LEASE.held_by(token))
        self.db.commit()

    def _lease(self, row: UploadSession) -> tuple[UploadSession, str | None]:
        """The lease to finish ``row``; while another request holds it, wait for it to let go. Returns the fresh
        row and the token, or no token when the other request finished the session (the caller answers from the
        row)."""
        token = self.take_lease(row)
        if token is not None:
            return row, token
        row = self._wait_for_other_finisher(row)
        if row.status != UploadStatus.UPLOADING.value:
            return row, None
        token = self.take_lease(row)
        if token is None:
            raise Conflict(_BUSY)
        return row, token

    def _wait_for_other_finisher(self, row: UploadSession) -> UploadSession:
        """Another request holds the lease: wait (bounded) until it lets go, then return the fresh row."""
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            self.db.refresh(row)
            if row.status != UploadStatus.UPLOADING.value or row.finish_lease is None:
                return row
            if time.monotonic() >= deadline:
                raise Conflict(_BUSY)
            time.sleep(0.05)


def _listed_parts(row: UploadSession, parts: Sequence[tuple[int, str]]) -> dict[int, str]:
    """The complete request's parts by number, refused unless they name every planned part exactly once."""
    counts = Counter(number for number, _ in parts)
    duplicates = sorted(n for n, count in counts.items() if count > 1)
    if duplicates:
        raise Unprocessable(f"part numbers {ranges(duplicates)} are listed more than once")
    expected = set(range(1, row.part_count + 1))
    missing, unexpected = sorted(expected - set(counts)), sorted(set(counts) - expected)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing parts {ranges(missing)}")
        if unexpected:
            problems.append(f"parts {ranges(unexpected)} are outside 1..{row.part_count}")
        raise Conflict({"message": "; ".join(problems), "missing": missing, "unexpected": unexpected})
    return dict(parts)
