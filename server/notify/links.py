"""Links to a file's status page that work outside the browser that uploaded it (an email read on a phone).

Identity is an anonymous cookie, so ``/files/<id>`` alone answers only in the uploading browser. An email link
carries an HMAC of the session id: it shows that one file's status page to whoever holds the email, nothing more.
"""

from __future__ import annotations

from urllib.parse import quote

from itsdangerous import BadSignature, Signer

from server.notify.policy import file_path


class FileLinks:
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
        return f"{self.public_origin}{file_path(session_id)}?token={quote(self.token(session_id), safe='')}"
