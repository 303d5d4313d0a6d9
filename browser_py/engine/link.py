"""What earlier uploads in this browser learned about the link, kept between uploads to size the next one's parts.

A part size cannot change once a session exists, so it has to be chosen before anything of the new upload is
measured: from the rate one PUT moved and the share of PUTs that failed on earlier uploads (the
:class:`~browser_py.engine.tuning.ConcurrencyTuner` measures both). Newer uploads weigh more, because links change
(home, office, hotel). Serialised as a small JSON document; nothing here does I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .tuning import TuningConfig, choose_part_size

LINK_VERSION = 1


@dataclass(slots=True)
class LinkMemory:
    per_connection_rate: float | None = None  # bytes/s one PUT moved, smoothed over uploads
    error_rate: float = 0.0  # share of PUTs that failed, smoothed over uploads
    uploads: int = 0
    memory: float = 0.5  # weight of the newest upload

    def remember(self, per_connection_rate: float | None, error_rate: float) -> None:
        """An upload finished having measured these (a rate of None: too little was sent to tell)."""
        if per_connection_rate is None or not math.isfinite(per_connection_rate) or per_connection_rate <= 0:
            return
        error_rate = min(1.0, max(0.0, error_rate))
        if self.per_connection_rate is None:
            self.per_connection_rate, self.error_rate = per_connection_rate, error_rate
        else:
            w = self.memory
            self.per_connection_rate += w * (per_connection_rate - self.per_connection_rate)
            self.error_rate += w * (error_rate - self.error_rate)
        self.uploads += 1

    def part_size(self, file_size: int, default: int | None, config: TuningConfig | None = None) -> int | None:
        """The part size to ask for: from what was measured, else ``default`` (None: the server's own)."""
        if self.per_connection_rate is None:
            return default
        return choose_part_size(
            file_size, per_connection_rate=self.per_connection_rate, error_rate=self.error_rate, config=config
        )

    def to_json(self) -> str:
        return json.dumps({"version": LINK_VERSION, "per_connection_rate": self.per_connection_rate,
                           "error_rate": self.error_rate, "uploads": self.uploads})

    @classmethod
    def from_json(cls, text: str) -> LinkMemory:
        """Read a saved memory; anything unreadable or from another version starts afresh (it is only a hint)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != LINK_VERSION:
                return cls()
            rate = data.get("per_connection_rate")
            memory = cls(uploads=int(data.get("uploads", 0)))
            if rate is not None:
                memory.per_connection_rate = float(rate)
                memory.error_rate = float(data.get("error_rate", 0.0))
                if not math.isfinite(memory.per_connection_rate) or memory.per_connection_rate <= 0:
                    return cls()
                memory.error_rate = min(1.0, max(0.0, memory.error_rate))
            return memory
        except (ValueError, TypeError):
            return cls()
