"""Whose uploads the engine holds: one browser profile, several people signing in to the host in turn.

The engine is one worker per origin, and who is signed in can change under it (a tab signs out and someone else
signs in: the host's cookie switches). The server names the signed-in user's browser storage with an opaque key
(``GET /api/storage``: an HMAC of the owner, never the user id; "" where identities are anonymous cookies, one per
profile, so everything stays in the profile's shared storage as before; 401: nobody is signed in). The engine holds
the uploads of one key at a time, in that key's own folder, and asks again before it lets a page see or touch them
(each page hello and card action) and whenever the server refuses a call of theirs (a refusal may only mean that
someone else is signed in now). Sans-I/O: the adapter asks, this decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A key is what the server makes (hex); anything else is not used as a folder name.
_KEY = re.compile(r"[0-9a-f]{16,64}")
#: The folder of the profile's shared storage (anonymous identities; and where uploads were before keys).
SHARED_DIR = "uploads"
#: Where the engine asks (under the uploader's prefix).
STORAGE_PATH = "/api/storage"
#: The folder of files picked while nobody is signed in: the server refuses them ("sign in again"), and they are
#: nobody's to resume when someone signs in.
SIGNED_OUT_DIR = "uploads-signed-out"
#: Statuses of a refused call that may mean "not yours (any more)": the owner is asked again before they count.
OWNERSHIP_STATUSES = frozenset({401, 403, 404})
#: Seconds an answer stands in for the question a new session asks before it is created. A pick asks when it arrives
#: and its session is created a few hundred ms later: asking again cost the first byte a round trip and a wake-up
#: (100-240 ms warm on a loaded machine). Someone signing in elsewhere within it is the race that exists anyway while
#: the question is on the wire; later than that, the question is asked again.
ANSWER_STANDS_S = 1.0


class StorageKeyError(ValueError):
    """The server answered a storage key that is not one."""


@dataclass(frozen=True, slots=True)
class Nobody:
    """Nobody is signed in: nobody's uploads are shown or sent; a file picked now is told to sign in (by the server)."""

    @property
    def directory(self) -> str:
        return SIGNED_OUT_DIR


@dataclass(frozen=True, slots=True)
class Someone:
    key: str  # "" for the profile's shared storage

    @property
    def directory(self) -> str:
        """The OPFS folder of this owner's manifests and copies."""
        return SHARED_DIR if not self.key else f"{SHARED_DIR}-{self.key}"


Holder = Nobody | Someone


def holder_from_answer(status: int, answer: object) -> Holder | None:
    """Who the server says is signed in, from ``GET /api/storage``'s status and JSON; None when it cannot say now
    (a server error, a busy answer: keep what we hold)."""
    if status == 401:
        return Nobody()
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("key"), str):
        return None
    key = str(answer["key"])
    if key and not _KEY.fullmatch(key):
        raise StorageKeyError(f"the upload service named a browser storage that is not a key: {key[:40]!r}")
    return Someone(key)


class Owner:
    """The holder whose uploads the engine holds now, and whether a newly seen one means switching."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        self._answered_at: float | None = None  # when the server last named the holder (``seen`` with a time)

    def seen(self, holder: Holder | None, now: float | None = None) -> bool:
        """Take what the server said (at ``now``); True when the engine must put the current uploads away and take
        the new holder's (None, "cannot say now", never switches)."""
        if holder is None:
            return False
        self._answered_at = now
        if holder == self.holder:
            return False
        self.holder = holder
        return True

    def answered_lately(self, now: float) -> bool:
        """Whether the server named the holder within :data:`ANSWER_STANDS_S` (a clock set back does not count)."""
        at = self._answered_at
        return at is not None and 0 <= now - at <= ANSWER_STANDS_S

    @staticmethod
    def may_mean_someone_else(status: int) -> bool:
        """A refusal the server also gives when the caller is not the upload's owner: ask who is signed in first."""
        return status in OWNERSHIP_STATUSES
