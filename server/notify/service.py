"""What the app starts and stops for events and notifications: keys, HTTP clients, the dispatcher and the notifier.

Built in the lifespan (it needs the database and a running loop); routers reach it as ``app.state.notifications``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from server.db import Database
from server.links import FileLinks
from server.notify.confirmation import EmailConfirmations
from server.notify.keys import VapidKeys, load_vapid_keys, resolve_webhook_secret
from server.notify.mail import EmailSender, SmtpConfig
from server.notify.notifier import Notifier, NotifierConfig
from server.notify.webpush import PushSender
from server.outbox import Consumer, Dispatcher, DispatcherConfig
from server.retry import WorkPolicy
from server.settings import Settings, resolve_secret_key
from server.webhooks import WebhookConsumer


class NotificationService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.vapid: VapidKeys = load_vapid_keys(settings)
        self.webhook_secret: str | None = resolve_webhook_secret(settings) if settings.webhook_url else None
        self.links = FileLinks(resolve_secret_key(settings), settings.public_base, settings.link_token_max_age_seconds)
        self._aiohttp: aiohttp.ClientSession | None = None
        self.notifier: Notifier | None = None
        self.email: EmailSender | None = None
        self.confirmations = EmailConfirmations(
            resolve_secret_key(settings), settings.public_base, settings.email_confirmation_max_age_seconds
        )
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        s = self.settings
        # No cookie jar: nothing a receiver or push service sets is kept or sent on to another request.
        self._aiohttp = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        push = PushSender(
            self.database,
            self.vapid,
            subject=s.vapid_subject,
            ttl_seconds=s.push_ttl_seconds,
            session=self._aiohttp,
            timeout_seconds=s.push_timeout_seconds,
            allowed_hosts=s.push_allowed_hosts,
            path_prefix=s.public_path,
        )
        email = EmailSender(
            self.database,
            SmtpConfig(
                host=s.smtp_host,
                port=s.smtp_port,
                security=s.smtp_security,
                username=s.smtp_username,
                password=s.smtp_password,
                timeout_seconds=s.smtp_timeout_seconds,
                sender=s.mail_from,
            ),
            self.links,
            confirmation_required=s.email_confirmation_required,
        )
        self.email = email
        work = WorkPolicy.from_settings(s)
        self.notifier = Notifier(
            self.database,
            [push, email],
            NotifierConfig(
                batch_seconds=s.notify_batch_seconds,
                rate_limit=s.notify_rate_limit,
                rate_window_seconds=s.notify_rate_window_seconds,
                work=work,
            ),
        )
        consumers: list[Consumer] = [self.notifier]
        if s.webhook_url and self.webhook_secret:
            consumers.append(
                WebhookConsumer(s.webhook_url, self.webhook_secret, self._aiohttp, s.webhook_timeout_seconds)
            )
        self.dispatcher = Dispatcher(
            self.database,
            consumers,
            DispatcherConfig(work=work),
        )
        if s.outbox_dispatcher:
            self.notifier.start()
            self.dispatcher.start()

    async def stop(self) -> None:
        """Both loops drain at once (deliveries and sends in flight finish within the policy's bound, receipts
        written), so a graceful stop repeats nothing; then the HTTP clients close."""
        drain = WorkPolicy.from_settings(self.settings).drain_seconds
        await asyncio.gather(*(loop.stop(drain) for loop in (self.dispatcher, self.notifier) if loop is not None))
        if self._aiohttp is not None:
            await self._aiohttp.close()


def get_notifications(request: Request) -> NotificationService:
    service: NotificationService = request.app.state.notifications
    return service


NotificationsDep = Annotated[NotificationService, Depends(get_notifications)]
