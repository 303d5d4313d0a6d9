"""How many parts in flight, and how big a part, from what the upload measures; sans-I/O like the rest of the core.

Why adapt at all: the right concurrency depends on the link, not on the code. On a fat, low-latency path a few
connections fill the pipe and more only add contention (the bench on loopback peaks at 4 and loses past 6); on a
long-latency path each connection is window-limited and more of them add throughput; on a flaky path more
connections mean more parts lost mid-flight. So :class:`ConcurrencyTuner` hill-climbs: it measures goodput (bytes S3
confirmed per second) over epochs of several parts, adds a connection while that pays (by ``gain_to_grow``), steps
back when it does not, re-probes now and then because links change, and halves at once when too many PUTs fail
(AIMD, as TCP does). Browsers open at most six HTTP/1.1 connections per host, and presigned URLs all name one host,
so more than six in flight would only queue inside the browser.

The part size cannot change during an upload (the plan is fixed when the session is created), so
:func:`choose_part_size` picks it up front from the rate measured on earlier uploads: big enough that per-request
costs (a URL, a CORS preflight, a TLS/TCP ramp) are small next to the transfer, small enough that a part takes a
couple of seconds per connection, so progress moves, a failed part costs little, and closing the tab re-sends at
most ``concurrency`` short parts.

Nothing here reads a clock or does I/O: callers pass ``now`` and what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.plan import MAX_PARTS, MIN_PART_SIZE, MiB, plan_parts

__all__ = ["ConcurrencyTuner", "TuningConfig", "choose_part_size"]


@dataclass(frozen=True, slots=True)
class TuningConfig:
    initial_concurrency: int = 4  # where the bench's sweep peaks on a fast path; the tuner moves from there
    min_concurrency: int = 1
    max_concurrency: int = 6  # a browser's HTTP/1.1 connections per host
    epoch_min_parts: int = 4  # an epoch holds at least this many confirmed parts (and at least `concurrency`)
    epoch_min_seconds: float = 2.0
    gain_to_grow: float = 0.05  # one more connection must add 5% goodput to be kept
    keep_fewer_within: float = 0.03  # one fewer connection is kept if it loses less than 3%
    loss_to_recheck: float = 0.15  # a level 15% under what it gave before: the link changed, probe again
    error_rate_to_back_off: float = 0.2  # a fifth of an epoch's PUTs failed (two at least): halve
    settle_epochs: int = 4  # epochs to hold a level before the next probe
    memory: float = 0.5  # weight of the newest epoch in a level's remembered goodput
    # Part size: about `target_part_seconds` per part per connection, within [min, max] (whole MiB).
    target_part_seconds: float = 2.0
    min_part_size: int = 8 * MiB
    max_part_size: int = 64 * MiB
    flaky_part_size: int = MIN_PART_SIZE  # floor instead of min_part_size when many PUTs fail
    flaky_error_rate: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.min_concurrency <= self.initial_concurrency <= self.max_concurrency:
            raise ValueError("need 1 <= min_concurrency <= initial_concurrency <= max_concurrency")
        if not MIN_PART_SIZE <= self.flaky_part_size <= self.min_part_size <= self.max_part_size:
            raise ValueError("need 5 MiB <= flaky_part_size <= min_part_size <= max_part_size")
        if self.epoch_min_parts < 1 or self.epoch_min_seconds <= 0 or self.target_part_seconds <= 0:
            raise ValueError("epochs and part durations must be positive")


@dataclass(slots=True)
class _Epoch:
    """Goodput of one level, measured after the parts started under the previous level have landed."""

    started: float
    concurrency: int
    warmup: int  # confirmations still to skip (parts of the previous level); the clock starts at the last one
    bytes: int = 0
    parts: int = 0
    failures: int = 0


@dataclass(slots=True)
class ConcurrencyTuner:
    """Parts in flight for one upload (or one link): feed it every confirmed and failed PUT, read ``concurrency``.

    ``part_sent(now, nbytes, seconds)`` for each part S3 confirmed (``seconds``: how long its PUT took);
    ``part_failed(now)`` for each PUT lost to the network or the store (timeouts, resets, 5xx, stalls; not
    expired URLs or cancellations, which say nothing about the link); ``pause(now)`` when sending stops for a
    while (pause, offline, tab closed), so idle time is not mistaken for a slow link. Both return the concurrency
    to use from now on; parts already in flight finish, only new ones follow it.
    """

    config: TuningConfig = field(default_factory=TuningConfig)
    concurrency: int = 0
    _epoch: _Epoch | None = None
    _rates: dict[int, float] = field(default_factory=dict)  # goodput remembered per level, bytes/s
    _probe: tuple[int, int] | None = None  # (level probed from, direction) while a probe is judged
    _direction: int = 1  # where the next probe goes
    _settled: int = 0  # epochs held at this level since the last move
    _ceiling: int = 0  # after a back-off, no probing above the level that failed...
    _ceiling_epochs: int = 0  # ...for this many more epochs without failures
    _sent: int = 0
    _failed: int = 0
    _busy: float = 0.0
    _bytes: int = 0

    def __post_init__(self) -> None:
        if self.concurrency == 0:
            self.concurrency = self.config.initial_concurrency
        self.concurrency = self._clamp(self.concurrency)
        self._ceiling = self.config.max_concurrency

    # ------------------------------------------------------------------------------------------------- reports

    @property
    def rate(self) -> float | None:
        """Goodput remembered for the current level (bytes/s), or None before a whole epoch at it."""
        return self._rates.get(self.concurrency)

    @property
    def per_connection_rate(self) -> float | None:
        """Bytes/s one PUT moves on average (all parts so far): what sizes the next upload's parts."""
        return self._bytes / self._busy if self._busy > 0 else None

    @property
    def error_rate(self) -> float:
        """Share of PUTs that failed so far."""
        attempts = self._sent + self._failed
        return self._failed / attempts if attempts else 0.0

    # ------------------------------------------------------------------------------------------------- events

    def part_sent(self, now: float, nbytes: int, seconds: float) -> int:
        self._sent += 1
        self._bytes += nbytes
        self._busy += max(0.0, seconds)
        epoch = self._current(now)
        if epoch.warmup > 0:
            epoch.warmup -= 1
            epoch.started = now
            return self.concurrency
        epoch.bytes += nbytes
        epoch.parts += 1
        cfg = self.config
        if epoch.parts >= max(cfg.epoch_min_parts, epoch.concurrency) and now - epoch.started >= cfg.epoch_min_seconds:
            self._end_epoch(now, epoch)
        return self.concurrency

    def part_failed(self, now: float) -> int:
        self._failed += 1
        epoch = self._current(now)
        epoch.failures += 1
        if self._too_many_failures(epoch):
            self._back_off(now)  # no need to wait for the epoch's end: every lost part is sent again
        return self.concurrency

    def pause(self, now: float) -> None:
        """Sending stopped: the epoch in progress is dropped (its idle time would read as a slow link)."""
        self._epoch = None
        if self._probe is not None:
            self.concurrency = self._probe[0]
            self._probe = None

    def conditions_changed(self, now: float) -> None:
        """Something besides the link changed how fast parts go (the browser finished writing its copy of the file,
        which competed for CPU and disk): rates measured before say nothing about levels measured after, and
        comparing them would credit whichever level came later. Forget them; keep the level, measure afresh."""
        self.pause(now)
        self._rates = {}
        self._settled = 0

    # ------------------------------------------------------------------------------------------------- decisions

    def _too_many_failures(self, epoch: _Epoch) -> bool:
        attempts = epoch.parts + epoch.failures
        return (
            epoch.failures >= 2
            and attempts >= self.config.epoch_min_parts
            and epoch.failures / attempts >= self.config.error_rate_to_back_off
        )

    def _clamp(self, level: int) -> int:
        return max(self.config.min_concurrency, min(self.config.max_concurrency, level))

    def _current(self, now: float) -> _Epoch:
        if self._epoch is None:  # (re)starting: the first confirmation only starts the clock
            self._epoch = _Epoch(now, self.concurrency, warmup=1)
        return self._epoch

    def _move(self, now: float, level: int, in_flight: int) -> None:
        self.concurrency = level
        self._settled = 0
        self._epoch = _Epoch(now, level, warmup=in_flight)

    def _end_epoch(self, now: float, epoch: _Epoch) -> None:
        cfg = self.config
        if self._too_many_failures(epoch):
            self._back_off(now)
            return
        if epoch.failures == 0 and self._ceiling_epochs > 0:
            self._ceiling_epochs -= 1
            if self._ceiling_epochs == 0:
                self._ceiling = cfg.max_concurrency  # long enough without failures: the cap goes
        level = epoch.concurrency
        goodput = epoch.bytes / max(now - epoch.started, 1e-9)
        previous = self._rates.get(level)
        if previous is not None and self._probe is None and goodput < previous * (1 - cfg.loss_to_recheck):
            self._rates = {}  # the link changed: what other levels gave before no longer says anything
            self._settled = cfg.settle_epochs
        old = self._rates.get(level)
        self._rates[level] = goodput if old is None else cfg.memory * goodput + (1 - cfg.memory) * old
        self._epoch = _Epoch(now, level, warmup=0)
        if self._probe is not None:
            self._judge_probe(now, goodput)
            return
        self._settled += 1
        if self._settled >= cfg.settle_epochs or len(self._rates) == 1:
            self._try(now, self._direction)

    def _judge_probe(self, now: float, goodput: float) -> None:
        assert self._probe is not None
        base_level, direction = self._probe
        self._probe = None
        base = self._rates.get(base_level)
        if base is None:
            return  # nothing to compare with (forgotten after a change of link): keep this level
        cfg = self.config
        if direction > 0:
            paid = goodput >= base * (1 + cfg.gain_to_grow)
        else:
            paid = goodput >= base * (1 - cfg.keep_fewer_within)
        if paid:
            self._direction = direction
            self._try(now, direction)  # it helped (or fewer did as well): go on the same way
        else:
            self._direction = -direction  # go back; the next probe tries the other way
            self._move(now, base_level, self.concurrency)

    def _try(self, now: float, direction: int) -> None:
        target = self._clamp(self.concurrency + direction)
        if direction > 0 and target > self._ceiling:
            self._settled = 0  # capped since the last back-off: hold
            return
        if target == self.concurrency:
            self._direction = -direction  # at a bound: the next probe goes the other way
            self._settled = 0
            return
        self._probe = (self.concurrency, direction)
        self._move(now, target, self.concurrency)

    def _back_off(self, now: float) -> None:
        in_flight = self.concurrency
        level = self._clamp(self.concurrency // 2)
        self._ceiling = max(level, in_flight - 1)  # climb back, but not to the level that failed, for a while
        self._ceiling_epochs = 2 * self.config.settle_epochs
        self._probe = None
        self._direction = 1
        self._move(now, level, in_flight)


def choose_part_size(
    file_size: int,
    *,
    per_connection_rate: float | None,
    error_rate: float = 0.0,
    config: TuningConfig | None = None,
) -> int:
    """The part size to ask the server for (it may round up to keep within 10,000 parts).

    ``per_connection_rate`` is bytes/s per PUT measured on earlier uploads (:attr:`ConcurrencyTuner.
    per_connection_rate`), or None when nothing was measured yet (then the floor: never worse than the default).
    """
    cfg = config or TuningConfig()
    floor = cfg.flaky_part_size if error_rate >= cfg.flaky_error_rate else cfg.min_part_size
    wanted = floor if per_connection_rate is None else int(per_connection_rate * cfg.target_part_seconds)
    if error_rate >= cfg.flaky_error_rate:
        wanted = min(wanted, cfg.min_part_size)  # a lost part costs its whole length again
    wanted = max(floor, min(cfg.max_part_size, wanted))
    wanted = -(-wanted // MiB) * MiB
    # Never more than the file needs, and always within S3's 10,000 parts (plan_parts rounds up past that).
    if file_size > 0:
        wanted = min(wanted, max(floor, -(-file_size // MiB) * MiB))
    return plan_parts(file_size, max(wanted, -(-file_size // MAX_PARTS))).part_size
