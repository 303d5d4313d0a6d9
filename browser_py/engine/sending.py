"""Which part is hashed, signed and sent next: the scheduler of one upload, sans-I/O.

A part goes through three gates before its PUT: its bytes are hashed (the checksum is signed into its URL), a fresh
URL is at hand, and no retry back-off holds it. This module keeps ``concurrency`` PUTs in flight, lowest part numbers
first, hashes ahead just enough that no slot waits for a checksum, and asks for URLs just in time and in batches.
Part 1 may be hashed before the session exists (``hash_first_part_early``), so its URL can be asked for the moment
the server answers. The upload machine (``engine/upload.py``) decides *whether* to send; this decides *what*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.plan import PartPlan, PlanError, plan_parts

from .commands import CancelParts, Command, HashPart, RequestUrls, SendPart
from .config import EngineConfig
from .manifest import Manifest


@dataclass(slots=True)
class _Url:
    url: str
    expires_at: float  # on this device's clock: when it arrived plus the lifetime the server gave it
    received_at: float
    background: bool = False  # signed for a hand-off: it outlives Background Fetch's queue

    def usable(self, now: float, margin: float) -> bool:
        """Fresh enough to start a PUT: the margin shrinks for short-lived URLs, or they would never qualify."""
        lifetime = max(0.0, self.expires_at - self.received_at)
        return self.expires_at - now > min(margin, lifetime / 4)


@dataclass(slots=True)
class PartScheduler:
    manifest: Manifest
    config: EngineConfig
    urls: dict[int, _Url] = field(default_factory=dict)
    in_flight: dict[int, float] = field(default_factory=dict)  # part number -> when its PUT started
    hashing: set[int] = field(default_factory=set)
    retry_at: dict[int, float] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    expired: dict[int, int] = field(default_factory=dict)  # part -> fresh URLs in a row the storage called expired
    urls_requested: bool = False
    _early_length: int | None = None  # part 1 being hashed before the session (and its plan) exists
    _early_checksum: tuple[int, str] | None = None  # (length, checksum) of that part 1

    # ------------------------------------------------------------------------------------------ hashing

    def hash_first_part_early(self, readable: bool, out: list[Command]) -> None:
        """Hash part 1 while the session is created: its URL can be asked for the moment the session exists."""
        part_size = self.config.part_size
        if part_size is None or not readable or 1 in self.hashing or self._early_checksum is not None:
            return
        try:
            length = plan_parts(self.manifest.size, part_size).length_of(1)
        except PlanError:
            return  # the server will say what is wrong with this file
        self._early_length = length
        self.hashing.add(1)
        out.append(HashPart(1, 0, length))

    def part_hashed(self, number: int, sha256: str) -> None:
        self.hashing.discard(number)
        plan = self.manifest.plan
        if number == 1 and self._early_length is not None:
            length, self._early_length = self._early_length, None
            if plan is None:
                self._early_checksum = (length, sha256)
                return
            if plan.length_of(1) != length:
                return  # the server cut other parts than asked: part 1 is hashed again
        if plan is not None and number not in self.manifest.parts:
            self.manifest.checksums[number] = sha256

    def hash_failed(self, number: int) -> bool:
        """The bytes of a part being hashed could not be read; True if it was being hashed."""
        if number not in self.hashing:
            return False
        self.hashing.discard(number)
        if number == 1:
            self._early_length = None
        return True

    def session_created(
        self, plan: PartPlan, urls: dict[int, str], expires_at: float, now: float, server_now: float | None = None
    ) -> int:
        """Adopt part 1's early checksum if the server cut part 1 as asked, and the URLs that came with the session;
        return how many of those URLs can be used now."""
        early, self._early_checksum = self._early_checksum, None
        if early is not None and early[0] == plan.length_of(1):
            self.manifest.checksums[1] = early[1]
        return self.urls_received(urls, expires_at, now, server_now)

    # ------------------------------------------------------------------------------------------ URLs and PUTs

    def urls_received(
        self,
        urls: dict[int, str],
        expires_at: float,
        now: float,
        server_now: float | None = None,
        background: bool = False,
    ) -> int:
        """Keep fresh URLs; return how many can start a PUT now.

        Freshness is judged on the server's clock: the lifetime it gave (``expires_at - server_now``, both its own)
        counts from the moment the answer arrived here, so a device clock hours off changes nothing. Without
        ``server_now`` (an older server) ``expires_at`` is taken as this device's time.
        """
        self.urls_requested = False
        local_expiry = expires_at if server_now is None else now + (expires_at - server_now)
        margin = self.config.url_refresh_margin
        usable = 0
        for number, url in urls.items():
            fresh = _Url(url, local_expiry, now, background)
            self.urls[number] = fresh
            usable += fresh.usable(now, margin)
        return usable

    def url_expired(self, number: int) -> int:
        """The storage said the URL of ``number`` had expired: forget it; return how many times in a row."""
        self.urls.pop(number, None)
        streak = self.expired.get(number, 0) + 1
        self.expired[number] = streak
        return streak

    def hold(self, number: int, until: float) -> None:
        """Keep ``number`` from starting before ``until`` without counting an attempt against its budget."""
        self.retry_at[number] = until

    def forget_url(self, number: int) -> None:
        self.urls.pop(number, None)

    def part_sent(self, number: int) -> float | None:
        """The PUT answered 200: when it started (None if it was no longer in flight)."""
        self.retry_at.pop(number, None)
        self.attempts.pop(number, None)
        self.expired.pop(number, None)
        return self.in_flight.pop(number, None)

    def retry_later(self, number: int, at: float) -> int:
        """Count a failed attempt and hold the part until ``at``; return the attempt number."""
        attempt = self.attempts.get(number, 0) + 1
        self.attempts[number] = attempt
        self.retry_at[number] = at
        return attempt

    def stop(self, out: list[Command]) -> None:
        """Abort every PUT in flight and forget pending retries (pause, outage, failure, cancel)."""
        if self.in_flight:
            out.append(CancelParts(tuple(sorted(self.in_flight))))
            self.in_flight.clear()
        self.retry_at.clear()
        self.urls_requested = False

    def pending(self) -> list[int]:
        plan = self.manifest.plan
        if plan is None:
            return []
        done = self.manifest.parts
        return [n for n in range(1, plan.part_count + 1) if n not in done and n not in self.in_flight]

    def pump(self, now: float, concurrency: int, urls_gate: float, out: list[Command]) -> bool:
        """Keep ``concurrency`` parts in flight; return True when every part is confirmed and none is in flight."""
        plan = self.manifest.plan
        session_id = self.manifest.session_id
        assert plan is not None and session_id is not None
        pending = self.pending()
        if not pending and not self.in_flight:
            return True
        margin = self.config.url_refresh_margin
        checksums = self.manifest.checksums
        self._hash_ahead(pending, concurrency, out)
        need_urls = False
        for number in pending:
            if len(self.in_flight) >= concurrency:
                break
            if self.retry_at.get(number, 0.0) > now or number not in checksums:
                continue
            url = self.urls.get(number)
            if url is None or not url.usable(now, margin):
                need_urls = True
                continue
            part = plan.part(number)
            self.in_flight[number] = now
            self.retry_at.pop(number, None)
            out.append(SendPart(number, part.offset, part.length, url.url, checksums[number]))
        if self.urls_requested or urls_gate > now:
            return False
        wanted = [
            (n, checksums[n])
            for n in pending
            if n not in self.in_flight
            and n in checksums
            and (n not in self.urls or not self.urls[n].usable(now, margin))
        ][: self.config.url_batch]
        # Ask at once when a free slot waits for a URL (first byte as early as possible); otherwise wait until
        # half a batch is hashed, so URLs come in few round trips.
        if wanted and (need_urls or len(wanted) >= max(1, self.config.url_batch // 2)):
            self.urls_requested = True
            out.append(RequestUrls(session_id, tuple(wanted), self.manifest.upload_token))
        return False

    def prepare_hand_off(self, now: float, urls_gate: float, out: list[Command]) -> tuple[SendPart, ...] | None:
        """Every part not confirmed yet (those in flight too), hashed and with a fresh URL signed for the hand-off (it
        outlives the browser's queue), for a hand-off to the browser (engine/handoff.py); None while some are not
        ready: their hashes and URLs are asked for meanwhile, a few at a time, beside the sending that goes on."""
        plan = self.manifest.plan
        session_id = self.manifest.session_id
        assert plan is not None and session_id is not None
        checksums = self.manifest.checksums
        margin = self.config.url_refresh_margin
        left = [n for n in range(1, plan.part_count + 1) if n not in self.manifest.parts]
        for number in left:
            if len(self.hashing) >= self.config.hash_concurrency:
                break
            if number not in checksums and number not in self.hashing:
                part = plan.part(number)
                self.hashing.add(number)
                out.append(HashPart(number, part.offset, part.length))
        unsigned = [(n, checksums[n]) for n in left if n in checksums and not self._lasting_url(n, now, margin)]
        if unsigned and not self.urls_requested and urls_gate <= now:
            self.urls_requested = True
            batch = tuple(unsigned[: self.config.url_batch])
            out.append(RequestUrls(session_id, batch, self.manifest.upload_token, background=True))
        if unsigned or any(n not in checksums for n in left):
            return None
        return tuple(
            SendPart(n, plan.part(n).offset, plan.part(n).length, self.urls[n].url, checksums[n]) for n in left
        )

    def _lasting_url(self, number: int, now: float, margin: float) -> bool:
        url = self.urls.get(number)
        return url is not None and url.background and url.usable(now, margin)

    def _hash_ahead(self, pending: list[int], concurrency: int, out: list[Command]) -> None:
        """Hash the next parts before their turn, at most ``concurrency + url_batch`` ahead, so a pause loses little
        work. Until the first PUT goes, the first part is hashed alone: it gets the whole CPU, so the first byte is
        early. While the browser's copy is made, one part is hashed at a time and only enough for the PUT slots: the
        copy reads the same file and must not be starved."""
        plan = self.manifest.plan
        assert plan is not None
        checksums = self.manifest.checksums
        ready = sum(1 for n in pending if n in checksums)
        saving = not self.manifest.staged
        window = concurrency + (1 if saving else self.config.url_batch)
        limit = self.config.hash_concurrency if (self.in_flight or ready) and not saving else 1
        for number in pending:
            if len(self.hashing) >= limit or ready + len(self.hashing) >= window:
                return
            if number in checksums or number in self.hashing:
                continue
            part = plan.part(number)
            self.hashing.add(number)
            out.append(HashPart(number, part.offset, part.length))
