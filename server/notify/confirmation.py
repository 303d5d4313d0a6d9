"""Email confirmation: an address receives nothing until its owner opened a signed link sent to it.

The link carries a token (the email-confirmation key of :mod:`server.tokens`, valid for
``EMAIL_CONFIRMATION_MAX_AGE_SECONDS``) naming the user and the address; opening it shows a page with a button, and
only that POST confirms, so a mail scanner that fetches links confirms nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote

from server.tokens import Purpose, TokenSigner

#: The page the link opens (GET: a confirm button; its form POSTs to ``CONFIRM_API``).
CONFIRM_PAGE = "/confirm-email"
CONFIRM_API = "/api/profile/email-confirmation"


@dataclass(frozen=True, slots=True)
class Confirmation:
    owner: str
    email: str


class EmailConfirmations:
    def __init__(self, secret_key: str, public_origin: str, max_age: int) -> None:
        self._signer = TokenSigner(secret_key, Purpose.EMAIL_CONFIRMATION, max_age)
        self.public_origin = public_origin.rstrip("/")

    def link(self, owner: str, email: str) -> str:
        payload = base64.urlsafe_b64encode(json.dumps([owner, email]).encode()).decode().rstrip("=")
        return f"{self.public_origin}{CONFIRM_PAGE}?token={quote(self._signer.sign(payload), safe='')}"

    def verify(self, token: str | None) -> Confirmation | None:
        verified = self._signer.verify(token)
        if verified is None:
            return None
        padded = verified.value + "=" * (-len(verified.value) % 4)
        try:
            owner, email = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, TypeError):
            return None
        if not isinstance(owner, str) or not isinstance(email, str):
            return None
        return Confirmation(owner, email)
