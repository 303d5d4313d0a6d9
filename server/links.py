"""Signed links to a file's status page (whose path is :func:`wire.view.status_page_path`, shared with the engine).

Identity is an anonymous cookie, so ``/files/<id>`` alone answers only in the uploading browser. A link that must
work elsewhere (an email read on a phone) carries an HMAC of the session id: it shows that one file's status page
to whoever holds it, nothing more.
"""

from __future__ import annotations

from urllib.parse import quote

from itsdangerous import BadSignature, Signer

from wire.view import status_page_path


class FileLinks:
    """Signed absolute links to status pages, and their check."""

    def __init__(self, secret_key: str, public_origin: str) -> None:
        self._signer = Signer(secret_key, salt="smartcat.file-link")
        self.public_origin = public_origin.rstrip("/")

    def token(self, session_id: str) -> str:
        signed = self._signer.sign(session_id).decode("ascii")
        return signed.rsplit(".", 1)[1]

    def allows(self, session_id: str, token: str | None) -> bool:
        if not token:
            return False
        try:
            self._signer.unsign(f"{session_id}.{token}")
        except BadSignature:
            return False
        return True

    def absolute(self, session_id: str) -> str:
        """The link an email carries."""
        return f"{self.public_origin}{status_page_path(session_id)}?token={quote(self.token(session_id), safe='')}"
