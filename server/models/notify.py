"""Tables for notifications: who wants what, where their browsers receive pushes, and what was sent.

``notification_items`` is the ledger that makes "at most one completion notification per upload per channel" hold:
one row per (session, channel), unique, created when the completion event is consumed and marked sent when a message
that names it went out. Several pending items of one user and channel go out together as one message (batching).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import utcnow
from server.models.base import OWNER_KEY_LENGTH, Base, UTCDateTime


class Channel(StrEnum):
    PUSH = "push"
    EMAIL = "email"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    #: The channel turned out to be unusable for this user (no subscription left, no address): nothing to retry.
    SKIPPED = "skipped"
    #: Refused for good (e.g. the mail server rejected the address) or out of attempts.
    FAILED = "failed"


class UserProfile(Base):
    """What an (anonymous) user told us: an address for email, and which channels they want."""

    __tablename__ = "user_profiles"

    user_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    #: The address the user proved is theirs (a signed link sent to it): mail goes out only while ``email`` is it.
    confirmed_email: Mapped[str | None] = mapped_column(String(254), default=None)
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    push_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PushSubscription(Base):
    """A browser's PushSubscription (``subscription.toJSON()``); an endpoint belongs to one user at a time."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class NotificationItem(Base):
    """One upload to be announced on one channel."""

    __tablename__ = "notification_items"
    __table_args__ = (
        UniqueConstraint("session_id", "channel", name="uq_notification_session_channel"),
        Index("ix_notification_items_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PENDING.value)
    #: Not sent before this: the batching window, a rate-limit pause, or a retry's backoff.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The notifier's lease (server/lease.py) while it sends the item.
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    message_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class NotificationMessage(Base):
    """One message that went out (one push to a user's browsers, or one email): the rate limit counts these."""

    __tablename__ = "notification_messages"
    __table_args__ = (Index("ix_notification_messages_user", "user_id", "channel", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(OWNER_KEY_LENGTH))
    channel: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    item_count: Mapped[int] = mapped_column(Integer, default=1)
