"""Every table of the server, in one place: importing this package registers them all on :class:`Base`.

The models depend on nothing of the server but the clock, so any module (the migrations included) imports them
without a cycle.
"""

from server.models.base import Base, UTCDateTime, table_of
from server.models.notify import (
    Channel,
    ItemStatus,
    NotificationItem,
    NotificationMessage,
    PushSubscription,
    UserProfile,
)
from server.models.outbox import EVENT_FOR_STATUS, DeliveryStatus, EventType, OutboxEvent, OutboxReceipt
from server.models.timeline import SessionEvent, Source
from server.models.uploads import (
    RELEASED,
    LinkRevocation,
    PartChecksum,
    ScanStatus,
    UploadSession,
    UploadStatus,
    new_session_id,
)

__all__ = [
    "EVENT_FOR_STATUS",
    "RELEASED",
    "Base",
    "Channel",
    "DeliveryStatus",
    "EventType",
    "ItemStatus",
    "LinkRevocation",
    "NotificationItem",
    "NotificationMessage",
    "OutboxEvent",
    "OutboxReceipt",
    "PartChecksum",
    "PushSubscription",
    "ScanStatus",
    "SessionEvent",
    "Source",
    "UTCDateTime",
    "UploadSession",
    "UploadStatus",
    "UserProfile",
    "new_session_id",
    "table_of",
]
