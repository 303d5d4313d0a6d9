"""The email channel: one multipart/alternative message (plain + HTML) per batch, over SMTP with aiosmtplib.

5xx answers (the address or the message refused for good) are not retried; connection problems, timeouts and 4xx
(greylisting, a full queue) are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib
from sqlalchemy.orm import Session

from server.db import Database
from server.links import FileLinks
from server.models import Channel, UserProfile
from server.notify.notifier import ChannelGone, PermanentSendError, SendError
from server.notify.policy import CompletedFile, email_content


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    #: ``none``: plain SMTP (a local relay); ``starttls``: upgrade on the submission port; ``tls``: implicit TLS.
    security: str = "none"
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0
    sender: str = "Smartcat uploads <uploads@localhost>"


def compose(sender: str, to: str, files: Sequence[CompletedFile], links: FileLinks) -> EmailMessage:
    content = email_content(files, [links.absolute(f.session_id) for f in files])
    message = EmailMessage()
    _headers(message, sender, to, content.subject)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def _headers(message: EmailMessage, sender: str, to: str, subject: str) -> None:
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"


def compose_confirmation(sender: str, to: str, link: str) -> EmailMessage:
    message = EmailMessage()
    _headers(message, sender, to, "Confirm your email for upload notifications")
    message.set_content(
        "Someone (hopefully you) asked Smartcat to email this address when their uploads finish.\n\n"
        f"To confirm, open this link:\n{link}\n\n"
        "If it was not you, ignore this message: nothing will be sent to you.\n"
    )
    return message


class EmailSender:
    channel = Channel.EMAIL

    def __init__(
        self, database: Database, config: SmtpConfig, links: FileLinks, *, confirmation_required: bool = True
    ) -> None:
        self.database = database
        self.config = config
        self.links = links
        self.confirmation_required = confirmation_required

    def available(self, db: Session, user_id: str) -> bool:
        return self._deliverable(db.get(UserProfile, user_id)) is not None

    def _deliverable(self, profile: UserProfile | None) -> str | None:
        """The address mail may go to: given, wanted, and (unless not required) confirmed by its owner."""
        if profile is None or not profile.email or not profile.email_notifications:
            return None
        if self.confirmation_required and profile.email != profile.confirmed_email:
            return None
        return profile.email

    def _address(self, user_id: str) -> str | None:
        with self.database.sessions() as db:
            return self._deliverable(db.get(UserProfile, user_id))

    async def send(self, user_id: str, files: Sequence[CompletedFile]) -> None:
        to = await asyncio.to_thread(self._address, user_id)
        if not to:
            raise ChannelGone("no confirmed email address, or email turned off")
        await self._deliver(compose(self.config.sender, to, files, self.links), to)

    async def send_confirmation(self, to: str, link: str) -> None:
        """The message asking ``to`` to confirm it wants completion emails: fixed wording, no user-chosen text."""
        await self._deliver(compose_confirmation(self.config.sender, to, link), to)

    async def _deliver(self, message: EmailMessage, to: str) -> None:
        config = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password or None,
                use_tls=config.security == "tls",
                # False, not None: with "none" a relay offering STARTTLS with a certificate we cannot check must
                # not turn every message into a failure.
                start_tls=config.security == "starttls",
                timeout=config.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            if codes and all(code >= 500 for code in codes):
                raise PermanentSendError(f"the mail server refused {to}: {codes}") from error
            raise SendError(f"the mail server deferred {to}: {codes}") from error
        except aiosmtplib.SMTPResponseException as error:
            if error.code >= 500:
                raise PermanentSendError(
                    f"the mail server refused the message: {error.code} {error.message}"
                ) from error
            raise SendError(f"the mail server answered {error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise SendError(f"{type(error).__name__}: {error}") from error
