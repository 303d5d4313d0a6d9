"""Signed links to a file's status page (whose path is :func:`wire.view.status_page_path`, shared with the engine).

``/files/<id>`` alone answers only to the file's owner. A link that must work elsewhere (an email read on a phone)
carries a token: a timestamped signature of the session id, with the file-link key (:mod:`server.tokens`). It shows
that one file's status page to whoever holds it, nothing more, for ``LINK_TOKEN_MAX_AGE_SECONDS``, and not at all
once the owner revoked the file's links (every link issued until then; a ``link_revocations`` row).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from server.clock import utcnow
from server.models import LinkRevocation
from server.tokens import Purpose, TokenSigner
from wire.view import status_page_path


class FileLinks:
    """Signed absolute links to status pages, their check, and their revocation."""

    def __init__(self, secret_key: str, public_origin: str, max_age: int) -> None:
        self._signer = TokenSigner(secret_key, Purpose.FILE_LINK, max_age)
        self.public_origin = public_origin.rstrip("/")

    def token(self, session_id: str) -> str:
        """The token of a link (``<timestamp>.<signature>``; the session id is in the link's path)."""
        return self._signer.sign(session_id).removeprefix(f"{session_id}.")

    def allows(self, db: Session, session_id: str, token: str | None) -> bool:
        if not token:
            return False
        verified = self._signer.verify(f"{session_id}.{token}")
        if verified is None or verified.value != session_id:
            return False
        revocation = db.get(LinkRevocation, session_id)
        return revocation is None or verified.issued_at > revocation.revoked_before

    def revoke_all(self, db: Session, session_id: str, now: datetime | None = None) -> None:
        """Every link to this file issued until now stops working (links are signed to the second: one issued in
        the same second as the revocation is revoked too). Commits."""
        db.merge(LinkRevocation(session_id=session_id, revoked_before=(now or utcnow()).replace(microsecond=0)))
        db.commit()

    def absolute(self, session_id: str) -> str:
        """The link an email carries."""
        return f"{self.public_origin}{status_page_path(session_id)}?token={quote(self.token(session_id), safe='')}"
